"""The gate's sd_notify protocol, received on a real unix datagram socket as systemd would:
READY only after the camera delivered and a warm-up inference ran; WATCHDOG only while frames are processed
(a stalled camera stops it); RELOADING then READY on SIGHUP; STOPPING on SIGTERM (a real subprocess)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import pytest
from gatekit import Appearance, FaultyCamera, background, compose_video, enroll, make_bundle, wait_for
from gpiozero.pins.mock import MockFactory

from edgeface.config import CameraConfig
from edgeface.device.camera import open_camera
from edgeface.device.daemon import build_daemon
from edgeface.device.notify import Notifier

WATCHDOG_USEC = 400_000  # 0.4 s: the gate pings every 0.2 s while healthy


class Listener:
    """A bound AF_UNIX/SOCK_DGRAM socket and a thread that stamps every datagram with its arrival time."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def kinds(self) -> list[str]:
        """The first line of each message (READY=1, WATCHDOG=1, STATUS=..., RELOADING=1, STOPPING=1)."""
        return [m.splitlines()[0].split("=")[0] + ("=1" if m.splitlines()[0].endswith("=1") else "")
                for _, m in self.messages]

    def times(self, first_line: str) -> list[float]:
        return [t for t, m in self.messages if m.splitlines()[0] == first_line]

    def wait(self, first_line: str, count: int = 1, timeout_s: float = 60.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if len(self.times(first_line)) >= count:
                return True
            time.sleep(0.02)
        return False

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify.sock"
    short = None
    if len(os.fsencode(path)) > 100:  # unix socket paths are limited to 108 bytes
        short = tempfile.mkdtemp(prefix="efg")
        path = Path(short) / "n.sock"
    lis = Listener(str(path))
    yield lis
    lis.close()
    path.unlink(missing_ok=True)
    if short:
        os.rmdir(short)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, orl_dir, reference_onnx, detector):
    tmp = tmp_path_factory.mktemp("gate_notify")
    bundle = make_bundle(tmp / "bundle", reference_onnx, 0.40)
    gallery = tmp / "people.gallery"
    enroll(gallery, bundle, detector, {"s1": sorted((orl_dir / "s1").iterdir())[0]})
    video = tmp / "door.avi"
    compose_video(video, [Appearance("s1", sorted((orl_dir / "s1").iterdir())[2], 1.5, 260, (0.2, 0.3), (0.5, 0.4))],
                  fps=10.0, gap_s=1.0)
    wall = tmp / "wall.avi"  # 12 s of an empty wall: a long, cheap input for the subprocess
    writer = cv2.VideoWriter(str(wall), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    bg = background(2)
    for _ in range(120):
        writer.write(bg)
    writer.release()
    return dict(tmp=tmp, bundle=bundle, gallery=gallery, video=video, wall=wall, yunet=detector.model_path)


def write_config(scene, path: Path, source: Path, camera: str = "", max_fps: float = 5.0) -> Path:
    path.write_text(f"""
[model]
bundle = "{scene['bundle']}"
gallery = "{scene['gallery']}"
threads = 1

[camera]
source = "{source}"
{camera}

[detector]
model_path = "{scene['yunet']}"

[policy]
max_fps = {max_fps}
face_gap_s = 0.8

[relay]
backend = "mock"
pulse_s = 0.3

[audit]
path = "{path.parent / 'audit.db'}"
""")
    return path


def test_ready_only_after_the_first_frame_and_the_warm_up(scene, tmp_path, listener):
    cfg = write_config(scene, tmp_path / "gate.toml", scene["video"])
    notifier = Notifier(listener.path, WATCHDOG_USEC)
    source = str(scene["video"])
    gate = build_daemon(cfg, pin_factory=MockFactory(), notifier=notifier, log_out=None,
                        camera_factory=lambda: open_camera(source, CameraConfig(source=source), realtime=True))
    warmed = []
    real_warm_up = gate.runtime.recognizer.warm_up

    def slow_warm_up(image=None):
        time.sleep(0.3)  # a READY sent before the warm-up ends would arrive inside this window
        ms = real_warm_up(image)
        warmed.append(time.monotonic())
        return ms

    gate.runtime.recognizer.warm_up = slow_warm_up
    assert gate.run() == 0
    assert listener.wait("STOPPING=1", timeout_s=5)
    ready = listener.times("READY=1")
    assert len(ready) == 1 and warmed and ready[0] >= warmed[0]
    first = listener.kinds()
    assert first.index("READY=1") < first.index("WATCHDOG=1")  # no keep-alive before the service is up
    assert all(t >= ready[0] for t in listener.times("WATCHDOG=1"))
    statuses = [m for _, m in listener.messages if "STATUS=" in m]
    assert any("fps" in m and "1 enrolled" in m for m in statuses)
    assert any("granted s1" in m for m in statuses)


def test_no_ready_and_no_watchdog_while_the_camera_never_delivers(scene, tmp_path, listener):
    cfg = write_config(scene, tmp_path / "gate.toml", scene["video"], camera="read_timeout_s = 0.3\nretry_initial_s = 0.2")
    release, stalled = threading.Event(), []
    source = str(scene["video"])

    def dead_camera():
        return FaultyCamera(open_camera(source, CameraConfig(source=source), realtime=True), 0, "hang", release, stalled)

    gate = build_daemon(cfg, pin_factory=MockFactory(), notifier=Notifier(listener.path, WATCHDOG_USEC),
                        camera_factory=dead_camera, log_out=None)
    gate.camera.open_timeout_s = 0.5
    threading.Timer(2.0, gate.request_stop, args=("test over",)).start()
    try:
        assert gate.run() == 0
    finally:
        release.set()
    assert listener.wait("STOPPING=1", timeout_s=5)
    assert "READY=1" not in listener.kinds() and "WATCHDOG=1" not in listener.kinds()
    assert "camera_lost" in [e.kind for e in gate.events]


def test_watchdog_stops_when_the_camera_stalls(scene, tmp_path, listener):
    cfg = write_config(scene, tmp_path / "gate.toml", scene["wall"],
                       camera="read_timeout_s = 0.5\nretry_initial_s = 20.0\nretry_max_s = 30.0", max_fps=10.0)
    release, stalled = threading.Event(), []
    source = str(scene["wall"])
    gate = build_daemon(cfg, pin_factory=MockFactory(), notifier=Notifier(listener.path, WATCHDOG_USEC), log_out=None,
                        camera_factory=lambda: FaultyCamera(open_camera(source, CameraConfig(source=source),
                                                                        realtime=True), 20, "hang", release, stalled))

    def stop_later(g):
        assert wait_for(lambda: stalled, 30)
        time.sleep(3.0)  # many watchdog timeouts of silence
        g.request_stop("test over")

    helper = threading.Thread(target=stop_later, args=(gate,), daemon=True)
    helper.start()
    try:
        assert gate.run() == 0
    finally:
        release.set()
        helper.join(5)
    assert listener.wait("STOPPING=1", timeout_s=5)
    pings = listener.times("WATCHDOG=1")
    stall = stalled[0]
    before = [t for t in pings if t < stall]
    after = [t for t in pings if t >= stall]
    assert len(before) >= 3, f"only {len(before)} keep-alives while frames arrived"
    # the inference that completed just before the stall may still be reported once the read times out
    # (0.5 s); after that, silence: far longer than WATCHDOG_USEC, so systemd's watchdog would fire
    assert all(t < stall + 0.5 + 1.0 for t in after), (stall, after)
    stopping = listener.times("STOPPING=1") or [time.monotonic()]
    assert stopping[0] - max(pings) > 3 * WATCHDOG_USEC / 1e6
    assert "camera_lost" in [e.kind for e in gate.events]
    assert any("camera lost" in m for _, m in listener.messages if m.startswith("STATUS="))


def test_subprocess_reload_and_stop_protocol(scene, tmp_path, listener):
    """`edgeface gate --config` as a real process: READY, then SIGHUP -> RELOADING=1 then READY=1, then
    SIGTERM -> STOPPING=1 and a clean exit; WATCHDOG=1 keeps coming while frames are processed."""
    cfg = write_config(scene, tmp_path / "gate.toml", scene["wall"], max_fps=2.0)
    env = dict(os.environ, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=str(WATCHDOG_USEC), OMP_NUM_THREADS="1")
    env.pop("WATCHDOG_PID", None)
    err = open(tmp_path / "stderr.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "edgeface.cli", "gate", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        assert listener.wait("READY=1", timeout_s=60), _tail(err)
        assert listener.wait("WATCHDOG=1", 2, timeout_s=10), _tail(err)
        proc.send_signal(signal.SIGHUP)
        assert listener.wait("RELOADING=1", timeout_s=20), _tail(err)
        assert listener.wait("READY=1", 2, timeout_s=30), _tail(err)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, _tail(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert listener.wait("STOPPING=1", timeout_s=5)
    k = [x for x in listener.kinds() if x != "STATUS"]
    assert k.index("READY=1") < k.index("RELOADING=1") < len(k) - 1 - k[::-1].index("READY=1") < k.index("STOPPING=1")
    reloading = next(m for _, m in listener.messages if m.startswith("RELOADING=1"))
    assert "MONOTONIC_USEC=" in reloading
    log = _tail(err)
    assert "event=reloaded" in log and "event=stopping" in log and 'detail="signal SIGTERM"' in log


def _tail(f) -> str:
    f.flush()
    f.seek(0)
    return f.read()[-3000:]
