"""``edgeface camera check --config FILE [--snapshot out.jpg]``: is the configured camera delivering faces?

Opens ``[camera] source`` as the gate does (behind the same watchdog), reads for ``--seconds``, runs the
configured detector on every frame and reports resolution, measured frame rate, frames with a face and the
detector's median latency. Exits 1 if no frame arrives within ``read_timeout_s`` (plus the open time). A
snapshot is written only when asked (privacy: the gate itself never stores images unless configured to).
"""

from __future__ import annotations

from pathlib import Path

NAME = "camera"
HELP = "check the configured camera: resolution, frame rate, faces seen, detector latency"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="open the camera of --config and report what it delivers")
    c.add_argument("--config", type=Path, required=True, help="gate config (TOML)")
    c.add_argument("--seconds", type=float, default=3.0, help="how long to read frames (default 3)")
    c.add_argument("--snapshot", type=Path, default=None, help="write the last frame here (JPEG/PNG)")
    c.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    import json
    import statistics
    import time

    import cv2

    from edgeface.config import load_config
    from edgeface.detect import create_detector
    from edgeface.errors import EdgefaceError
    from edgeface.faces import largest_face

    from ..camera import EndOfStream, open_camera
    from ..camera_watch import WatchedCamera

    cfg = load_config(args.config)
    c = cfg.camera
    det = cfg.detector
    detector = create_detector(det.kind, det.model_path,
                               **({"score_threshold": det.score_threshold} if det.kind == "yunet" else {}))
    events: list[str] = []
    cam = WatchedCamera(lambda: open_camera(c.source, c, realtime=True), c.read_timeout_s, c.retry_initial_s,
                        c.retry_max_s, on_event=lambda kind, detail: events.append(f"{kind}: {detail}"))
    frames, faces, lat, times, last = 0, 0, [], [], None
    try:
        cam.open()
        start = time.monotonic()
        first_deadline = start + cam.open_timeout_s + c.read_timeout_s
        while True:
            now = time.monotonic()
            if frames == 0 and now > first_deadline:
                raise EdgefaceError(f"camera {c.source!r}: no frame within {cam.open_timeout_s + c.read_timeout_s:g} s"
                                    + (f" ({events[-1]})" if events else ""))
            if frames and now - start > args.seconds:
                break
            try:
                frame = cam.read()
            except EndOfStream:
                break
            if frame is None:
                continue
            if frames == 0:
                start = time.monotonic()
            frames += 1
            times.append(time.monotonic())
            t0 = time.perf_counter()
            dets = detector.detect(frame.image)
            lat.append((time.perf_counter() - t0) * 1000.0)
            faces += largest_face(dets, cfg.quality.min_face_px) is not None
            last = frame.image
    finally:
        cam.close()
    if frames == 0:
        raise EdgefaceError(f"camera {c.source!r}: no frame arrived" + (f" ({events[-1]})" if events else ""))
    h, w = last.shape[:2]
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    report = {"source": c.source, "width": w, "height": h, "frames": frames, "fps": round(fps, 2),
              "frames_with_face": faces, "detector": det.kind,
              "detector_ms_median": round(statistics.median(lat), 2), "events": events}
    if args.snapshot:
        args.snapshot.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.snapshot), last):
            raise EdgefaceError(f"cannot write the snapshot {args.snapshot}")
        report["snapshot"] = str(args.snapshot)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"camera {c.source!r}: {w}x{h}, {fps:.1f} fps measured over {frames} frames; faces in {faces} of "
              f"{frames} frames; {det.kind} detector median {report['detector_ms_median']:.1f} ms")
        if args.snapshot:
            print(f"snapshot written to {args.snapshot}")
    return 0
