"""Raspberry Pi camera through picamera2 (libcamera).

picamera2 only exists on Raspberry Pi OS (``apt install python3-picamera2``), so it is imported inside
``open()``: this module imports anywhere. The camera is configured with a single small stream: the main
stream at the configured size (640x480 by default), so the ISP downscales in hardware and Python never
touches a full-sensor frame. Format "RGB888" is, despite its name, stored B, G, R per pixel: exactly OpenCV's
BGR, no conversion. ``queue=False`` makes every capture wait for a frame that starts after the request
(fresh, never a stale queued one).

Every capture is asynchronous (``capture_array(wait=False)``) and collected with ``Picamera2.wait(job,
timeout)``, so a stalled camera raises after ``timeout_s`` instead of blocking forever (an old picamera2
without that timeout blocks, and :class:`~edgeface.device.camera_watch.WatchedCamera`'s timeout applies).
"""

from __future__ import annotations

import logging
import time

from .camera import Camera, CameraError, Frame

log = logging.getLogger(__name__)


class Picamera2Camera(Camera):
    finite = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0, timeout_s: float = 2.0,
                 camera_num: int = 0):
        # libcamera wants even sizes: round an odd configured size down rather than fail at start
        self.width, self.height, self.fps = int(width) // 2 * 2, int(height) // 2 * 2, float(fps)
        self.timeout_s = float(timeout_s)
        self.camera_num = camera_num
        self.description = f"picamera2 #{camera_num} {self.width}x{self.height}@{self.fps:g}"
        self._cam = None
        self._index = 0
        self._timed = True

    def open(self) -> None:
        if self._cam is not None:
            return
        try:
            from picamera2 import Picamera2
        except Exception as exc:  # ImportError off a Pi; libcamera import errors surface as others
            raise CameraError(
                f"picamera2 is not available ({exc}); on Raspberry Pi OS: sudo apt install python3-picamera2, "
                "and create the virtualenv with --system-site-packages"
            ) from None
        cam = None
        try:
            cam = Picamera2(self.camera_num)
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},
                controls={"FrameRate": self.fps},
                buffer_count=4,
                queue=False,
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            if cam is not None:
                _quietly(cam.close)
            raise CameraError(f"cannot start the Pi camera #{self.camera_num}: {exc}") from None
        self._cam = cam
        self._index = 0
        self._timed = _accepts_timeout(cam.wait)
        if not self._timed:
            log.warning("this picamera2 has no Picamera2.wait(job, timeout): reads rely on the watchdog's timeout "
                        "alone; upgrade python3-picamera2")

    def read(self) -> Frame:
        cam = self._cam
        if cam is None:
            raise CameraError(f"{self.description} is not open")
        try:
            if self._timed:
                image = cam.wait(cam.capture_array("main", wait=False), timeout=self.timeout_s)
            else:
                image = cam.capture_array("main")
        except TimeoutError:
            raise CameraError(f"{self.description}: no frame within {self.timeout_s:g} s") from None
        except Exception as exc:
            raise CameraError(f"{self.description}: capture failed: {exc}") from None
        return self._frame(image, time.monotonic())

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            _quietly(cam.stop)
            _quietly(cam.close)


def _accepts_timeout(wait) -> bool:
    """picamera2 added ``wait(job, timeout=None)`` in 0.3.x; older builds only block."""
    import inspect

    try:
        return "timeout" in inspect.signature(wait).parameters
    except (TypeError, ValueError):
        return False


def _quietly(fn) -> None:
    """Release paths must not raise over the error that caused them; log instead."""
    try:
        fn()
    except Exception as exc:
        log.warning("picamera2 %s failed: %s", getattr(fn, "__name__", fn), exc)
