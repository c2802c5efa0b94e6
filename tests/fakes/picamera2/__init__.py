"""Fake ``picamera2`` (see ../README.md). Mirrors picamera2 0.3's public behaviour that edgeface relies on:

* ``Picamera2(camera_num)`` raises ``RuntimeError("Camera __init__ sequence did not complete.")`` when there
  is no such camera or it is already held by another ``Picamera2``;
* ``configure`` refuses while started; ``start`` without ``configure`` uses the preview configuration;
* ``capture_array(name, wait=None)`` blocks; with ``wait=False`` it returns a job, ``wait(job, timeout)``
  raises ``TimeoutError`` when no frame comes (``TimeoutError`` is ``concurrent.futures.TimeoutError``);
* frames come from a thread at the configured ``FrameRate``; a capture is served by the next frame;
* "RGB888"/"BGR888" arrays are (H, W, 3), "XRGB8888"/"XBGR8888" (H, W, 4), "YUV420" (H*3/2, W).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np

__all__ = ["Picamera2", "bench"]

_FORMATS = {"RGB888", "BGR888", "XRGB8888", "XBGR8888", "YUV420", "YUYV", "MJPEG"}


def _default_scene(number: int, size: tuple[int, int]) -> np.ndarray:
    """A BGR test card that changes with every frame (so tests can tell frames apart)."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[..., 2] = number % 256
    return img


class _Bench:
    """What the test controls: which cameras are attached and what they see."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.cameras = 1
        self.scene = _default_scene  # (frame_number, (w, h)) -> BGR uint8 image of that size
        self.stalled = threading.Event()  # set: the sensor stops delivering frames (a hung camera)
        self.fail_start: Exception | None = None
        self.instances: list[Picamera2] = []
        self.held: set[int] = set()


bench = _Bench()


class Job:
    def __init__(self):
        self._future: Future = Future()

    def get_result(self, timeout=None):
        return self._future.result(timeout=timeout)


class CompletedRequest:
    def __init__(self, arrays: dict, metadata: dict):
        self._arrays = arrays
        self._metadata = metadata
        self.released = False

    def make_array(self, name: str = "main") -> np.ndarray:
        if self.released:
            raise RuntimeError("request has been released")
        return self._arrays[name].copy()

    def get_metadata(self) -> dict:
        return dict(self._metadata)

    def release(self) -> None:
        self.released = True


class Picamera2:
    def __init__(self, camera_num: int = 0, verbose_console=None, tuning=None):
        if camera_num >= bench.cameras or camera_num in bench.held:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        bench.held.add(camera_num)
        bench.instances.append(self)
        self.camera_idx = camera_num
        self.sensor_resolution = (3280, 2464)
        self.camera_config: dict | None = None
        self.started = False
        self.is_open = True
        self.frames = 0
        self.calls: list[str] = []
        self._jobs: list[tuple[Job, str, str]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- configurations ---------------------------------------------------------------------------------
    def _make_config(self, use_case, main, lores, raw, buffer_count, controls, queue, default_size, default_fps):
        main = {"format": "XBGR8888", "size": default_size, **(main or {})}
        streams = {"main": main}
        if lores is not None:
            lores = {"format": "YUV420", "size": (320, 240), **lores}
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            streams["lores"] = lores
        for name, stream in streams.items():
            size = stream["size"]
            if not (isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
                raise RuntimeError(f"{name} stream size must be a tuple of two positive ints, got {size!r}")
            if size[0] % 2 or size[1] % 2:
                raise RuntimeError("width and height should be even")
            if stream["format"] not in _FORMATS:
                raise RuntimeError(f"Bad format {stream['format']} in stream {name}")
        if lores is not None and lores["format"] not in ("YUV420", "YVU420"):
            raise RuntimeError("lores stream must be YUV")
        all_controls = {"FrameDurationLimits": (int(1e6 / default_fps),) * 2, **(controls or {})}
        return {"use_case": use_case, "main": main, "lores": lores, "raw": raw, "buffer_count": buffer_count,
                "controls": all_controls, "queue": queue, "transform": None, "colour_space": None,
                "display": "main", "encode": "main" if use_case == "video" else None, "sensor": {}}

    def create_preview_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                     buffer_count=4, controls={}, display="main", encode="main", queue=True,
                                     sensor={}, use_case="preview"):
        return self._make_config("preview", main, lores, raw, buffer_count, controls, queue, (640, 480), 30.0)

    def create_video_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,
                                   sensor={}, use_case="video"):
        return self._make_config("video", main, lores, raw, buffer_count, controls, queue, (1280, 720), 30.0)

    def configure(self, camera_config="preview") -> None:
        self._check_open()
        self.calls.append("configure")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if isinstance(camera_config, str):
            camera_config = {"preview": self.create_preview_configuration,
                             "video": self.create_video_configuration}[camera_config]()
        self.camera_config = camera_config

    def camera_configuration(self) -> dict | None:
        return self.camera_config

    # --- running ----------------------------------------------------------------------------------------
    def start(self, config=None, show_preview=False) -> None:
        self._check_open()
        self.calls.append("start")
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            self.configure("preview")
        if bench.fail_start is not None:
            raise bench.fail_start
        if self.started:
            return
        self.started = True
        self._thread = threading.Thread(target=self._frames, name="fake-libcamera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(2.0)

    def close(self) -> None:
        if not self.is_open:
            return
        self.stop()
        self.calls.append("close")
        self.is_open = False
        bench.held.discard(self.camera_idx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- capturing --------------------------------------------------------------------------------------
    def capture_array(self, name: str = "main", wait=None, signal_function=None):
        return self._dispatch(name, "array", wait, signal_function)

    def capture_request(self, wait=None, signal_function=None, flush=None):
        return self._dispatch(None, "request", wait, signal_function)

    def wait(self, job: Job, timeout=None):
        return job.get_result(timeout=timeout)

    def _dispatch(self, name, what, wait, signal_function):
        self._check_open()
        if name is not None and (self.camera_config is None or not self.camera_config.get(name)):
            raise RuntimeError(f"Stream {name!r} is not configured")
        job = Job()
        if signal_function is not None:
            job._future.add_done_callback(lambda _f: signal_function(job))
        with self._lock:
            self._jobs.append((job, name, what))
        if wait is None:
            wait = signal_function is None
        return self.wait(job) if wait else job

    def _frames(self) -> None:
        limits = self.camera_config["controls"].get("FrameDurationLimits", (33333, 33333))
        fps = float(self.camera_config["controls"].get("FrameRate", 1e6 / limits[0]))
        period = 1.0 / fps
        while self.started:
            time.sleep(period)
            if bench.stalled.is_set() or not self.started:
                continue
            arrays = {n: self._render(self.camera_config[n]) for n in ("main", "lores") if self.camera_config.get(n)}
            self.frames += 1
            metadata = {"SensorTimestamp": time.monotonic_ns(), "FrameDuration": int(period * 1e6)}
            with self._lock:
                jobs, self._jobs = self._jobs, []
            for job, name, what in jobs:
                if what == "array":
                    job._future.set_result(arrays[name].copy())
                else:
                    job._future.set_result(CompletedRequest(arrays, metadata))

    def _render(self, stream: dict) -> np.ndarray:
        w, h = stream["size"]
        bgr = np.asarray(bench.scene(self.frames, (w, h)), dtype=np.uint8)
        assert bgr.shape == (h, w, 3), f"scene gave {bgr.shape}, expected {(h, w, 3)}"
        fmt = stream["format"]
        if fmt == "RGB888":  # libcamera's RGB888 is B, G, R in memory
            return bgr.copy()
        if fmt == "BGR888":
            return bgr[..., ::-1].copy()
        if fmt in ("XRGB8888", "XBGR8888"):
            px = bgr if fmt == "XRGB8888" else bgr[..., ::-1]
            return np.concatenate([px, np.full((h, w, 1), 255, np.uint8)], axis=2)
        if fmt == "YUV420":
            import cv2

            return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
        raise RuntimeError(f"the fake cannot render {fmt}")

    def _check_open(self):
        if not self.is_open:
            raise RuntimeError("Camera is not open")
