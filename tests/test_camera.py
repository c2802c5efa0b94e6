"""Camera sources on real decoding (a video written with cv2.VideoWriter, real face photos in a folder),
the picamera2 adapter on the fake picamera2 module, and the watchdog on real failures: a camera that
raises mid-stream, one whose read hangs, one that cannot be opened for a while."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface.config import CameraConfig
from edgeface.device.camera import Camera, CameraError, EndOfStream, Frame, open_camera, source_kind
from edgeface.device.camera_opencv import OpenCVCamera, VideoFileCamera
from edgeface.device.camera_picamera2 import Picamera2Camera
from edgeface.device.camera_replay import ImageFolderCamera
from edgeface.device.camera_watch import WatchedCamera

FAKES = Path(__file__).parent / "fakes"
FPS = 20.0
N_FRAMES = 40


def level(i: int) -> int:
    return 20 + 5 * i


@pytest.fixture
def video(tmp_path) -> Path:
    """A real MJPG .avi: frame i is a flat grey of level(i) with a white square moving along."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (160, 120))
    assert writer.isOpened(), "OpenCV cannot write MJPG"
    for i in range(N_FRAMES):
        img = np.full((120, 160, 3), level(i), np.uint8)
        img[10:30, 2 * i + 10:2 * i + 30] = 255
        writer.write(img)
    writer.release()
    return path


def frame_level(frame: Frame) -> float:
    return float(np.median(frame.image))


# --- dispatch ------------------------------------------------------------------------------------------------

def test_source_kinds(tmp_path, video):
    assert source_kind("picamera2") == "picamera2"
    assert source_kind("0") == "v4l2"
    assert source_kind("/dev/video2") == "v4l2"
    assert source_kind("nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink") == "gstreamer"
    assert source_kind("rtsp://cam.local:554/stream1") == "stream"
    assert source_kind("http://cam.local/mjpg") == "stream"
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind(str(video)) == "video"
    with pytest.raises(CameraError, match="not 'picamera2'"):
        source_kind(str(tmp_path / "missing.avi"))


def test_open_camera_builds_without_opening(tmp_path, video):
    cfg = CameraConfig(source="x", width=320, height=240, fps=12, read_timeout_s=1.5)
    cam = open_camera("picamera2", cfg)
    assert isinstance(cam, Picamera2Camera) and (cam.width, cam.height, cam.fps, cam.timeout_s) == (320, 240, 12, 1.5)
    assert "picamera2" not in sys.modules  # lazy: nothing imported until open()
    v4l2 = open_camera("0", cfg)
    assert isinstance(v4l2, OpenCVCamera) and v4l2.kind == "v4l2" and v4l2._target() == 0
    assert open_camera("rtsp://h/s", cfg).kind == "stream"
    assert open_camera("a ! appsink", cfg).kind == "gstreamer"
    assert isinstance(open_camera(str(tmp_path), cfg), ImageFolderCamera)
    assert isinstance(open_camera(str(video), cfg), VideoFileCamera)


@pytest.mark.parametrize("source", ["/dev/video99", "rtsp://127.0.0.1:9/nothing"])
def test_unreachable_live_sources_fail_to_open(source):
    cam = open_camera(source, CameraConfig(source=source, read_timeout_s=2))
    with pytest.raises(CameraError, match="cannot open"):
        cam.open()
    cam.close()
    cam.close()


# --- replay ------------------------------------------------------------------------------------------------

def test_video_replay_decodes_every_frame_in_simulated_time(video):
    cam = open_camera(str(video), realtime=False)
    with cam:
        assert cam.fps == FPS and cam.finite
        frames = []
        while (f := cam.read()) is not None:
            frames.append(f)
        assert cam.read() is None  # stays at the end
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [f.t for f in frames] == pytest.approx([i / FPS for i in range(N_FRAMES)])
    assert all(f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 for f in frames)
    levels = [frame_level(f) for f in frames]
    assert levels == pytest.approx([level(i) for i in range(N_FRAMES)], abs=4)  # JPEG, but the real content
    cam.close()


def test_video_replay_in_real_time_is_paced_at_the_clip_rate(video):
    cam = open_camera(str(video), realtime=True)
    with cam:
        start = time.monotonic()
        ts = [cam.read().t for _ in range(8)]
    assert ts == sorted(ts) and ts[0] >= start
    assert ts[-1] - ts[0] >= 7 / FPS * 0.9  # never faster than the clip (an upper bound would be a timing test)


def test_video_that_is_not_a_video(tmp_path):
    bad = tmp_path / "noise.avi"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(CameraError, match="cannot decode"):
        open_camera(str(bad)).open()


def test_image_folder_replay_on_real_faces(tmp_path, orl_dir):
    photos = sorted(p for p in orl_dir.rglob("*") if p.is_file())[:5]
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, p in enumerate(photos):
        shutil.copy(p, folder / f"{i:03d}{p.suffix}")
    (folder / "002b.jpg").write_bytes(b"not a jpeg at all")  # undecodable: skipped, not fatal
    (folder / "notes.txt").write_text("ignored")
    cam = open_camera(str(folder), CameraConfig(source=str(folder), fps=10), realtime=False)
    with cam:
        frames = []
        while (f := cam.read()) is not None:
            frames.append(f)
    assert len(frames) == len(photos)
    assert [f.t for f in frames] == pytest.approx([i / 10 for i in range(len(photos))])
    for f, p in zip(frames, photos):
        expected = cv2.imread(str(p), cv2.IMREAD_COLOR)
        assert np.array_equal(f.image, expected)
    assert [p.name for p in cam.skipped] == ["002b.jpg"]


def test_empty_image_folder(tmp_path):
    with pytest.raises(CameraError, match="no images"):
        open_camera(str(tmp_path)).open()


# --- picamera2 on the fake module ----------------------------------------------------------------------------

@pytest.fixture
def fake_picamera2(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    module = importlib.import_module("picamera2")
    module.bench.reset()
    yield module
    module.bench.stalled.clear()
    for cam in module.bench.instances:
        cam.close()
    module.bench.reset()
    sys.modules.pop("picamera2", None)  # the fake must not outlive the test


def scene_with_marker(number, size):
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = 200  # blue
    img[0, 0] = (1, 2, 3)
    return img


def test_picamera2_small_bgr_stream_with_timeout(fake_picamera2):
    fake_picamera2.bench.scene = scene_with_marker
    cam = open_camera("picamera2", CameraConfig(source="picamera2", width=320, height=240, fps=30, read_timeout_s=0.5))
    cam.open()
    try:
        pc = fake_picamera2.bench.instances[0]
        config = pc.camera_config
        assert config["main"] == {"format": "RGB888", "size": (320, 240)}
        assert config["controls"]["FrameRate"] == 30 and config["queue"] is False
        frames = [cam.read() for _ in range(3)]
        assert [f.index for f in frames] == [0, 1, 2]
        assert frames[0].image.shape == (240, 320, 3)
        assert tuple(frames[0].image[0, 0]) == (1, 2, 3) and frames[0].image[5, 5, 0] == 200  # BGR as OpenCV wants
        fake_picamera2.bench.stalled.set()
        t0 = time.monotonic()
        with pytest.raises(CameraError, match="no frame within 0.5 s"):
            cam.read()
        assert time.monotonic() - t0 < 0.5 + 1.0
    finally:
        cam.close()
        cam.close()
    assert pc.calls[-2:] == ["stop", "close"] and not fake_picamera2.bench.held


def test_the_fake_behaves_like_picamera2(fake_picamera2):
    """The double's rules that the adapter depends on, so a test passing on it means something."""
    pc = fake_picamera2.Picamera2()
    with pytest.raises(RuntimeError, match="did not complete"):
        fake_picamera2.Picamera2()  # the camera is held
    with pytest.raises(RuntimeError, match="lores"):
        pc.create_preview_configuration(main={"size": (320, 240)}, lores={"size": (640, 480)})
    with pytest.raises(RuntimeError, match="lores stream must be YUV"):
        pc.create_video_configuration(main={"size": (320, 240)}, lores={"size": (160, 120), "format": "RGB888"})
    with pytest.raises(RuntimeError, match="even"):
        pc.create_video_configuration(main={"size": (321, 240), "format": "RGB888"})
    config = pc.create_preview_configuration(main={"size": (320, 240), "format": "XRGB8888"},
                                             lores={"size": (160, 120)})
    pc.configure(config)
    job = pc.capture_array("main", wait=False)
    with pytest.raises(TimeoutError):
        pc.wait(job, timeout=0.2)  # not started: no frames
    pc.start()
    with pytest.raises(RuntimeError, match="stopped"):
        pc.configure(config)
    assert pc.wait(job, timeout=1).shape == (240, 320, 4)
    assert pc.capture_array("lores").shape == (180, 160)  # YUV420: 1.5 rows per row
    request = pc.capture_request()
    assert request.make_array("main").shape == (240, 320, 4)
    request.release()
    with pytest.raises(RuntimeError, match="released"):
        request.make_array("main")
    pc.close()
    fake_picamera2.Picamera2().close()  # free again


def test_picamera2_missing_camera_and_failed_start(fake_picamera2):
    fake_picamera2.bench.cameras = 0
    with pytest.raises(CameraError, match="cannot start the Pi camera #0: Camera __init__"):
        Picamera2Camera().open()
    fake_picamera2.bench.cameras = 1
    fake_picamera2.bench.fail_start = RuntimeError("Failed to start camera: Device or resource busy")
    with pytest.raises(CameraError, match="busy"):
        Picamera2Camera().open()
    assert not fake_picamera2.bench.held  # the half-started camera was closed
    fake_picamera2.bench.fail_start = None
    cam = Picamera2Camera(width=65, height=49)  # odd sizes are rounded down to what libcamera accepts
    cam.open()
    assert cam.read().image.shape == (48, 64, 3)
    cam.close()


def test_picamera2_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        Picamera2Camera().open()


# --- the watchdog --------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def __call__(self, kind, detail):
        self.events.append((kind, detail))

    def kinds(self):
        return [k for k, _ in self.events]


class Wrapped(Camera):
    """A real video camera with a fault injected at frame ``at``: raise, or block on ``gate``."""

    def __init__(self, inner: Camera, at: int | None = None, fault: str = "raise", gate: threading.Event | None = None):
        self.inner, self.at, self.fault, self.gate = inner, at, fault, gate
        self.fps, self.finite, self.description = inner.fps, inner.finite, f"wrapped {inner.description}"
        self.reads = 0
        self.closed = False

    def open(self):
        self.inner.open()
        self.fps = self.inner.fps

    def read(self):
        if self.at is not None and self.reads == self.at:
            if self.fault == "raise":
                raise CameraError("USB camera unplugged")
            self.gate.wait()  # a driver that never returns (until the test lets it go)
        self.reads += 1
        return self.inner.read()

    def close(self):
        self.closed = True
        self.inner.close()


def timed_reads(cam: WatchedCamera, n: int, durations: list[float]):
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        out.append(cam.read())
        durations.append(time.monotonic() - t0)
    return out


def test_watched_video_replays_then_ends(video):
    rec = Recorder()
    cam = WatchedCamera(lambda: open_camera(str(video), realtime=False), 1.0, 0.05, 0.4, rec)
    frames = []
    with pytest.raises(EndOfStream):
        while True:
            f = cam.read()
            assert f is not None
            frames.append(f)
    assert len(frames) == N_FRAMES and cam.finished and cam.fps == FPS and cam.finite
    with pytest.raises(EndOfStream):
        cam.read()
    assert rec.events == []
    cam.close()
    cam.close()


def test_camera_raising_mid_stream_is_lost_once_then_reacquired(video):
    rec = Recorder()
    made: list[Wrapped] = []

    def factory():
        made.append(Wrapped(open_camera(str(video), realtime=False), at=5 if not made else None))
        return made[-1]

    cam = WatchedCamera(factory, read_timeout_s=1.0, retry_initial_s=0.05, retry_max_s=0.4, on_event=rec)
    durations: list[float] = []
    results = timed_reads(cam, 5, durations)
    assert all(r is not None for r in results)
    assert cam.read() is None and rec.kinds() == ["camera_lost"] and "unplugged" in rec.events[0][1]
    assert made[0].closed  # the failed camera was released
    got = [cam.read() for _ in range(20)]
    frames = [f for f in got if f is not None]
    assert rec.kinds() == ["camera_lost", "camera_reacquired"]
    assert frames and frames[0].index == 0 and frame_level(frames[0]) == pytest.approx(level(0), abs=4)
    assert len(made) == 2 and not cam.lost
    cam.close()


def test_hung_read_is_lost_once_with_growing_backoff_and_bounded_reads(video):
    rec = Recorder()
    gate = threading.Event()
    attempts: list[float] = []
    timeout = 0.3

    def factory():
        attempts.append(time.monotonic())
        n = len(attempts)
        if n == 1:
            return Wrapped(open_camera(str(video), realtime=False), at=3, fault="hang", gate=gate)
        if n in (2, 3):
            raise CameraError("device busy")  # the hung driver still holds it
        return open_camera(str(video), realtime=False)

    cam = WatchedCamera(factory, read_timeout_s=timeout, retry_initial_s=0.05, retry_max_s=0.15, on_event=rec)
    durations: list[float] = []
    try:
        frames = timed_reads(cam, 3, durations)
        assert all(f is not None for f in frames)
        deadline = time.monotonic() + 10
        got = None
        while got is None and time.monotonic() < deadline:
            got = timed_reads(cam, 1, durations)[0]
        assert got is not None, "never reacquired"
        assert rec.kinds() == ["camera_lost", "camera_reacquired"]
        assert "no frame within 0.3 s" in rec.events[0][1]
        assert list(cam.retry_delays) == pytest.approx([0.05, 0.1, 0.15])  # doubling, capped at retry_max_s
        gaps = np.diff(attempts)
        assert gaps[1] >= 0.1 * 0.9 and gaps[2] >= 0.15 * 0.9  # waited at least the backoff
        assert cam.abandoned == 1
        assert max(durations) < timeout + 0.5, durations  # no read blocked much past the timeout
    finally:
        gate.set()
        cam.close()


def test_camera_absent_at_start_is_reported_once_then_found(video):
    rec = Recorder()
    tries = []

    def factory():
        tries.append(1)
        if len(tries) <= 3:
            return open_camera("/dev/video99")  # real OpenCV failure
        return open_camera(str(video), realtime=False)

    cam = WatchedCamera(factory, read_timeout_s=0.5, retry_initial_s=0.02, retry_max_s=0.08, on_event=rec)
    deadline = time.monotonic() + 10
    frame = None
    while frame is None and time.monotonic() < deadline:
        frame = cam.read()
    assert frame is not None and frame.index == 0
    assert rec.kinds() == ["camera_lost", "camera_reacquired"] and "cannot open" in rec.events[0][1]
    cam.close()


def test_hung_open_counts_against_the_open_timeout(video):
    rec = Recorder()
    gate = threading.Event()

    class HangsOnOpen(Wrapped):
        def open(self):
            gate.wait()

    made = []

    def factory():
        made.append(1)
        if len(made) == 1:
            return HangsOnOpen(open_camera(str(video), realtime=False))
        return open_camera(str(video), realtime=False)

    cam = WatchedCamera(factory, read_timeout_s=0.2, retry_initial_s=0.02, retry_max_s=0.1, on_event=rec,
                        open_timeout_s=0.5)
    try:
        t0 = time.monotonic()
        results = [cam.read() for _ in range(3)]  # 0.2 + 0.2 + (0.1 to the open deadline): lost on the third
        assert results == [None, None, None]
        assert rec.kinds() == ["camera_lost"] and "of opening" in rec.events[0][1]
        assert time.monotonic() - t0 >= 0.5 * 0.9
        deadline = time.monotonic() + 5
        while cam.read() is None and time.monotonic() < deadline:
            pass
        assert rec.kinds() == ["camera_lost", "camera_reacquired"]
    finally:
        gate.set()
        cam.close()


def test_live_camera_is_read_free_running_and_survives_a_stall(fake_picamera2):
    """The fake Pi camera at 30 fps under the watchdog: a slow gate gets the newest frame (older ones are
    dropped, not queued); a stalled sensor is lost once, retried, and reacquired when it delivers again."""
    rec = Recorder()
    cfg = CameraConfig(source="picamera2", width=64, height=48, fps=30, read_timeout_s=0.3)
    cam = WatchedCamera(lambda: open_camera("picamera2", cfg), read_timeout_s=0.6, retry_initial_s=0.05,
                        retry_max_s=0.2, on_event=rec)
    try:
        first = cam.read()
        assert first is not None and not cam.finite
        time.sleep(0.3)  # the gate is busy for ~9 frame periods
        second = cam.read()
        assert second.index - first.index >= 3 and cam.dropped >= 2
        assert time.monotonic() - second.t < 0.3  # the newest frame, not one queued while we were busy
        fake_picamera2.bench.stalled.set()
        deadline = time.monotonic() + 10
        while len(cam.retry_delays) < 3 and time.monotonic() < deadline:
            assert cam.read() is None or not cam.lost
        assert rec.kinds() == ["camera_lost"] and "no frame within 0.3 s" in rec.events[0][1]
        assert list(cam.retry_delays)[:3] == pytest.approx([0.05, 0.1, 0.2])
        fake_picamera2.bench.stalled.clear()
        frame = None
        while frame is None and time.monotonic() < deadline:
            frame = cam.read()
        assert frame is not None and rec.kinds() == ["camera_lost", "camera_reacquired"]
    finally:
        cam.close()
    assert not fake_picamera2.bench.held  # every Picamera2 that was opened was closed


def test_duck_typed_camera_is_read_on_request_and_loses_no_frame(video):
    class Plain:  # not a Camera, no ``finite``: the watchdog must not assume it is live
        def __init__(self):
            self.inner = VideoFileCamera(video, realtime=True)  # paced at 20 fps, like a live feed

        def open(self):
            self.inner.open()

        def read(self):
            return self.inner.read()

        def close(self):
            self.inner.close()

    cam = WatchedCamera(Plain, 1.0, 0.05, 0.4, Recorder())
    indices = []
    for _ in range(6):
        indices.append(cam.read().index)
        time.sleep(0.1)  # slower than the feed: a free-running reader would drop frames
    assert indices == list(range(6)) and cam.dropped == 0
    cam.close()


def test_closed_watched_camera_refuses_reads(video):
    cam = WatchedCamera(lambda: open_camera(str(video), realtime=False), 1.0, 0.05, 0.4, Recorder())
    assert cam.read() is not None
    cam.close()
    with pytest.raises(CameraError, match="closed"):
        cam.read()


# --- what the device side imports ----------------------------------------------------------------------------

def test_device_modules_import_no_torch_and_no_hardware_libraries():
    modules = ["edgeface.device", "edgeface.device.events", "edgeface.device.camera", "edgeface.device.camera_opencv",
               "edgeface.device.camera_replay", "edgeface.device.camera_picamera2", "edgeface.device.camera_watch",
               "edgeface.device.relay", "edgeface.device.relay_gpiozero", "edgeface.device.relay_jetson",
               "edgeface.device.audit"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'gpiozero', 'picamera2', 'Jetson', 'libcamera'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_folder_plays_in_natural_order(tmp_path):
    for i in (1, 2, 10, 9):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((8, 8, 3), i * 10, np.uint8))
    cam = ImageFolderCamera(tmp_path, fps=5, realtime=False)
    with cam:
        levels = []
        while (f := cam.read()) is not None:
            levels.append(int(f.image[0, 0, 0]))
    assert levels == [10, 20, 90, 100]
