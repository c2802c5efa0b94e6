"""``edgeface demo``: prepare -> train -> export --int8 -> calibrate -> enroll -> gate --simulate on real faces;
``edgeface demo --photos DIR``: the same door on your own people."""

from __future__ import annotations

from pathlib import Path

NAME = "demo"
HELP = "run the whole product on real faces in a few minutes, or the door on your own people's photos (--photos)"
DESCRIPTION = """Run the whole product on real faces in a few minutes, printing every step's command.

  edgeface demo [--data FACES]                    # a public set: fine-tune, export, calibrate, enroll, a door clip
  edgeface demo --photos STAFF [--data FACES]     # your people: STAFF/Name.jpg or STAFF/Name/*.jpg

Without --photos, the people of one folder-per-person set (--data, $EDGEFACE_DATA or ../shared/data/faces) are
split into training, calibration, employees and strangers. With --photos, each of your people is enrolled from
one photo (Name.jpg, or the first of Name/), and the door clip shows them with their other photos (or, for a
person with one photo, with that photo under the camera's light and noise) among strangers from the public set,
which also gives the faces for the int8 and threshold calibration. dlib's ResNet is exported as published (ONNX
only: the door runs onnx_int8), or --bundle reuses a bundle (copied; the copy is calibrated). The summary says
who the door let in.

With no face set at all, it says which public set to download and how (LFW, through scikit-learn)."""


def add_arguments(p) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="folder-per-identity photos, or a folder of such sets (default: $EDGEFACE_DATA, ../shared/data/faces)")
    p.add_argument("--photos", type=Path, default=None, metavar="DIR",
                   help="your own people: DIR/Name.jpg or DIR/Name/*.jpg (the first photo is enrolled, the others "
                        "are what the door camera sees)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="with --photos: use this bundle (copied into --workdir and calibrated there) instead of exporting")
    p.add_argument("--strangers", type=int, default=None, metavar="N",
                   help="with --photos: strangers on the clip (default: as many as your people, 5 to 20)")
    p.add_argument("--hard", action="store_true",
                   help="with --photos: the hard door scene (light, noise, JPEG, blur, walk-ins) instead of a plain wall")
    p.add_argument("--workdir", type=Path, default=Path("edgeface-demo"), help="where every artefact goes")
    p.add_argument("--steps", type=int, default=60, help="fine-tuning steps of dlib's ResNet (default 60)...")
    p.add_argument("--minutes", type=float, default=3.0, help="...or this time budget, whichever ends first (default 3)")
    p.add_argument("--people", type=int, default=5, help="employees to enroll (as many strangers walk by)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-tflite", action="store_true", help="skip the TFLite exports (faster; --photos never makes them)")
    p.add_argument("--detector-model", type=Path, default=None, help="YuNet ONNX (default: $EDGEFACE_YUNET, ../shared/models/yunet, the registry)")


def run(args) -> int:
    from edgeface.errors import EdgefaceError

    from ..quiet import quiet_libraries

    quiet_libraries(verbose=getattr(args, "verbose", False))
    if args.photos is None:
        for flag in ("bundle", "strangers", "hard"):
            if getattr(args, flag) not in (None, False):
                raise EdgefaceError(f"--{flag} goes with --photos DIR")
        from ..demo import run_demo

        run_demo(args.data, args.workdir, args.minutes, args.steps, args.seed, args.people, args.detector_model,
                 args.threads, tflite=not args.no_tflite)
        return 0  # a wrong unlock is a finding about the model, printed loudly and kept in demo.json
    for path in (args.photos, args.bundle):
        if path is not None and not path.exists():
            raise EdgefaceError(f"not found: {path}")
    if args.strangers is not None and args.strangers < 1:
        raise EdgefaceError("--strangers must be at least 1")
    from ..demo import run_photos_demo

    run_photos_demo(args.photos, args.data, args.workdir, args.seed, args.strangers, args.detector_model,
                    args.threads, bundle_in=args.bundle, hard=args.hard)
    return 0
