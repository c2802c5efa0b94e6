"""``edgeface demo``: prepare -> train -> export --int8 -> calibrate -> enroll -> gate --simulate on real faces."""

from __future__ import annotations

from pathlib import Path

NAME = "demo"
HELP = "run the whole product on real faces in a few minutes (EDGEFACE_DATA or ../shared/data/faces)"


def add_arguments(p) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="folder-per-identity photos, or a folder of such sets (default: $EDGEFACE_DATA, ../shared/data/faces)")
    p.add_argument("--workdir", type=Path, default=Path("edgeface-demo"), help="where every artefact goes")
    p.add_argument("--steps", type=int, default=60, help="fine-tuning steps of dlib's ResNet (default 60)...")
    p.add_argument("--minutes", type=float, default=3.0, help="...or this time budget, whichever ends first (default 3)")
    p.add_argument("--people", type=int, default=5, help="employees to enroll (as many strangers walk by)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-tflite", action="store_true", help="skip the TFLite exports (faster)")
    p.add_argument("--detector-model", type=Path, default=None, help="YuNet ONNX (default: $EDGEFACE_YUNET, ../shared/models/yunet, the registry)")


def run(args) -> int:
    from ..demo import run_demo

    run_demo(args.data, args.workdir, args.minutes, args.steps, args.seed, args.people, args.detector_model,
             args.threads, tflite=not args.no_tflite)
    return 0  # a wrong unlock is a finding about the model, printed loudly and kept in demo.json
