"""What the device adapters cost and how exact they are, measured on this machine (not a test: numbers).

    .venv/bin/python bench/device_adapters.py --out bench/results/device_adapters.json

* relay pulse accuracy: N pulses on gpiozero MockFactory pins; the on-time is read from the pin's recorded
  state changes and compared with the requested length (error in ms: median, p95, max);
* camera read cost at 640x480: a real MJPG video decoded directly (VideoFileCamera) and through the
  WatchedCamera reader thread, frames per second and the per-frame overhead of the watchdog;
* audit log write rate: events per second into SQLite (WAL, synchronous=NORMAL), with and without face crops.

Writes JSON and a PNG histogram of the pulse errors next to it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeface.config import RelayConfig
from edgeface.device.audit import AuditLog
from edgeface.device.camera import EndOfStream
from edgeface.device.camera_opencv import VideoFileCamera
from edgeface.device.camera_watch import WatchedCamera
from edgeface.device.events import Event
from edgeface.device.relay import open_relay


def pulse_errors(n: int, length: float) -> list[float]:
    errors = []
    for _ in tqdm(range(n), desc="relay pulses"):
        relay = open_relay(RelayConfig(backend="mock", pin=17))
        relay.pulse(length)
        while relay.is_active:
            time.sleep(0.002)
        states = relay.pin.states
        on = [b.timestamp for a, b in zip(states[1:], states[2:]) if a.state and not b.state]
        errors.append((on[0] - length) * 1000.0)
        relay.close()
    return errors


def write_video(path: Path, frames: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        writer.write(np.roll(base, 4 * i, axis=1))
    writer.release()


def camera_rates(path: Path) -> dict:
    cam = VideoFileCamera(path, realtime=False)
    cam.open()
    n, t0 = 0, time.perf_counter()
    while cam.read() is not None:
        n += 1
    direct = time.perf_counter() - t0
    cam.close()
    watched = WatchedCamera(lambda: VideoFileCamera(path, realtime=False), 2.0, 0.5, 5.0, lambda k, d: None)
    m, t0 = 0, time.perf_counter()
    try:
        while True:
            if watched.read() is not None:
                m += 1
    except EndOfStream:
        pass
    through = time.perf_counter() - t0
    watched.close()
    return {"frames": n, "direct_fps": n / direct, "watched_fps": m / through,
            "watchdog_overhead_ms_per_frame": (through / m - direct / n) * 1000.0}


def audit_rate(folder: Path, n: int, faces: bool) -> float:
    log = AuditLog(folder / f"audit_{faces}.db", save_faces=faces)
    crop = np.random.default_rng(1).integers(0, 255, (112, 112, 3), dtype=np.uint8) if faces else None
    t0 = time.perf_counter()
    for i in range(n):
        log.record(Event("denied", t=i * 0.1, person="x", score=0.3, margin=0.01, latency_ms=40.0), crop)
    rate = n / (time.perf_counter() - t0)
    assert log.write_errors == 0
    log.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pulses", type=int, default=40)
    ap.add_argument("--pulse-s", type=float, default=0.25)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/device_adapters.json"))
    args = ap.parse_args()

    errors = pulse_errors(args.pulses, args.pulse_s)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_video(tmp / "clip.avi", args.frames)
        cams = camera_rates(tmp / "clip.avi")
        audit = {"events_per_s": audit_rate(tmp, args.events, False),
                 "events_per_s_with_faces": audit_rate(tmp, args.events // 4, True)}
    e = np.asarray(errors)
    result = {
        "relay_pulse": {"n": len(e), "requested_s": args.pulse_s, "error_ms_median": float(np.median(e)),
                        "error_ms_p95": float(np.percentile(np.abs(e), 95)), "error_ms_max": float(np.abs(e).max())},
        "camera_640x480_mjpg": cams,
        "audit": audit,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(e, bins=20)
        ax.set_xlabel(f"pulse length error (ms), requested {args.pulse_s} s")
        ax.set_ylabel("pulses")
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"), dpi=100)
    except ImportError:
        pass
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
