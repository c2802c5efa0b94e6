"""``edgeface camera check --config FILE [--snapshot out.jpg]``: is the configured camera delivering faces?
``edgeface camera record --config FILE --out door.avi [--seconds 20]``: a clip of it, for ``gate --simulate``.

Opens ``[camera] source`` as the gate does (behind the same watchdog), reads for ``--seconds``, runs the gate's
own model object on every frame (:meth:`edgeface.recognizer.Recognizer.observe`, built from the config as the gate
builds it: the same downscaled detector, alignment, quality gates and embedder) and reports resolution, measured
frame rate, frames with a face, frames the door could use, and the median detector and whole-frame latencies. Exits 1 if no frame arrives within ``read_timeout_s`` (plus the open time). A
snapshot is written only when asked (privacy: the gate itself never stores images unless configured to).
"""

from __future__ import annotations

from pathlib import Path

NAME = "camera"
HELP = "check the configured camera (resolution, frame rate, faces seen, detector latency), or record a clip"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="open the camera of --config and report what it delivers")
    c.add_argument("--config", type=Path, required=True, help="gate config (TOML)")
    c.add_argument("--seconds", type=float, default=3.0, help="how long to read frames (default 3)")
    c.add_argument("--snapshot", type=Path, default=None, help="write the last frame here (JPEG/PNG)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    r = sub.add_parser("record", help="record a clip from the camera of --config, for gate --simulate")
    r.add_argument("--config", type=Path, required=True, help="gate config (TOML)")
    r.add_argument("--out", type=Path, required=True, help="the clip to write (.avi, MJPG)")
    r.add_argument("--seconds", type=float, default=20.0, help="how long to record (default 20)")


def record(args) -> int:
    """Frames of the configured camera (opened as the gate opens it, behind the same watchdog) into an MJPG .avi
    at the camera's requested frame rate, so that ``gate --simulate`` replays it on the same clock. Nothing but
    what the camera sees is written; the file is the user's (privacy: record only people who agreed)."""
    import time

    import cv2

    from edgeface.config import load_config
    from edgeface.errors import EdgefaceError

    from ..camera import EndOfStream, open_camera
    from ..camera_watch import WatchedCamera

    if args.out.suffix.lower() != ".avi":
        raise EdgefaceError(f"--out {args.out}: the clip is an MJPG .avi (name it door.avi)")
    if args.seconds <= 0:
        raise EdgefaceError("--seconds must be positive")
    cfg = load_config(args.config)
    c = cfg.camera
    events: list[str] = []
    cam = WatchedCamera(lambda: open_camera(c.source, c, realtime=True), c.read_timeout_s, c.retry_initial_s,
                        c.retry_max_s, on_event=lambda kind, detail: events.append(f"{kind}: {detail}"))
    writer, frames, start = None, 0, None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        cam.open()
        deadline = time.monotonic() + cam.open_timeout_s + c.read_timeout_s
        print(f"recording {args.seconds:g} s from {c.source!r} into {args.out} (Ctrl-C stops early)", flush=True)
        while True:
            now = time.monotonic()
            if start is None and now > deadline:
                raise EdgefaceError(f"camera {c.source!r}: no frame within {cam.open_timeout_s + c.read_timeout_s:g} s"
                                    + (f" ({events[-1]})" if events else ""))
            if start is not None and now - start >= args.seconds:
                break
            try:
                frame = cam.read()
            except EndOfStream:
                break
            except KeyboardInterrupt:
                break
            if frame is None:
                continue
            image = frame.image if frame.image.ndim == 3 else cv2.cvtColor(frame.image, cv2.COLOR_GRAY2BGR)
            if writer is None:
                start = time.monotonic()
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"MJPG"), c.fps, (w, h))
                if not writer.isOpened():
                    raise EdgefaceError(f"OpenCV cannot write an MJPG video at {args.out}")
            writer.write(image)
            frames += 1
    finally:
        cam.close()
        if writer is not None:
            writer.release()
    if not frames:
        raise EdgefaceError(f"camera {c.source!r}: no frame arrived" + (f" ({events[-1]})" if events else ""))
    took = max(1e-6, time.monotonic() - start)
    measured = frames / took
    print(f"wrote {args.out}: {frames} frames in {took:.1f} s ({measured:.1f} fps measured; the clip plays at the "
          f"camera's {c.fps:g} fps). Next: edgeface gate --simulate {args.out} --config {args.config}")
    if abs(measured - c.fps) > 0.15 * c.fps:
        print(f"WARNING: the camera delivered {measured:.1f} fps, not the {c.fps:g} fps of [camera] fps: the clip "
              f"replays {c.fps / measured:.2f}x faster than it happened; set [camera] fps = {measured:.0f}")
    return 0


def run(args) -> int:
    if args.action == "record":
        return record(args)
    import json
    import statistics
    import time

    import cv2

    from edgeface.config import load_config
    from edgeface.errors import EdgefaceError
    from edgeface.recognizer import Recognizer

    from ..camera import EndOfStream, open_camera
    from ..camera_watch import WatchedCamera

    cfg = load_config(args.config)
    c = cfg.camera
    det = cfg.detector
    try:  # the gate's own model object, so the figures are the gate's
        recognizer = Recognizer.from_config(cfg)
        recognizer.warm_up()
        detector, note = None, ""
    except EdgefaceError as exc:  # no model yet (a camera checked before the bundle is installed): the detector
        from edgeface.recognizer import build_detector

        recognizer, detector = None, build_detector(cfg.detector, cfg.quality, frames=True)
        note = f" (the model could not be loaded, so only the gate's detector ran: {exc})"
    events: list[str] = []
    cam = WatchedCamera(lambda: open_camera(c.source, c, realtime=True), c.read_timeout_s, c.retry_initial_s,
                        c.retry_max_s, on_event=lambda kind, detail: events.append(f"{kind}: {detail}"))
    frames, faces, usable, lat, whole, times, last = 0, 0, 0, [], [], [], None
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
            if recognizer is not None:
                obs = recognizer.observe(frame.image)
                lat.append(obs.stages["detect"])
                whole.append(obs.latency_ms)
                faces += obs.face is not None
                usable += obs.usable
            else:
                from edgeface.faces import largest_face

                t0 = time.perf_counter()
                found = largest_face(detector.detect(frame.image), cfg.quality.min_face_px) is not None
                lat.append((time.perf_counter() - t0) * 1000.0)
                faces += found
            last = frame.image
    finally:
        cam.close()
    if frames == 0:
        raise EdgefaceError(f"camera {c.source!r}: no frame arrived" + (f" ({events[-1]})" if events else ""))
    h, w = last.shape[:2]
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    report = {"source": c.source, "width": w, "height": h, "frames": frames, "fps": round(fps, 2),
              "frames_with_face": faces, "frames_usable": usable if recognizer is not None else None,
              "detector": det.kind, "detector_ms_median": round(statistics.median(lat), 2),
              "frame_ms_median": round(statistics.median(whole), 2) if whole else None, "events": events}
    if note:
        report["note"] = note.strip(" ()")
    if args.snapshot:
        args.snapshot.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.snapshot), last):
            raise EdgefaceError(f"cannot write the snapshot {args.snapshot}")
        report["snapshot"] = str(args.snapshot)
    if args.json:
        print(json.dumps(report))
    else:
        line = (f"camera {c.source!r}: {w}x{h}, {fps:.1f} fps measured over {frames} frames; faces in {faces} of "
                f"{frames} frames")
        if recognizer is not None:
            line += (f", usable by the door in {usable}; {det.kind} detector median {report['detector_ms_median']:.1f}"
                     f" ms, whole frame (the gate's model) median {report['frame_ms_median']:.1f} ms")
        else:
            line += f"; {det.kind} detector median {report['detector_ms_median']:.1f} ms{note}"
        print(line)
        if args.snapshot:
            print(f"snapshot written to {args.snapshot}")
    return 0
