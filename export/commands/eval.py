"""``edgeface eval``: verification and one-shot open-set accuracy of a checkpoint, bundle, .onnx or .tflite."""

from __future__ import annotations

NAME = "eval"
HELP = "evaluate an embedder (checkpoint.pt, bundle dir, model.onnx, model.tflite) on photos or a crop cache"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint .pt, bundle directory, .onnx or .tflite")
    parser.add_argument("--model-key", default=None, help="bundle model key (onnx_int8, tflite_fp32, ...)")
    parser.add_argument("--data", required=True, help="photo folder DIR/<id>/* or a prepared crop cache")
    parser.add_argument("--json", required=True, help="write the report here")
    parser.add_argument("--plot", default=None, help="write a ROC/DET PNG here")
    parser.add_argument("--val-split", default=None, metavar="RUN_DIR",
                        help="only the identities of this training run's validation split (unseen in training)")
    parser.add_argument("--detector-model", default=None, help="YuNet file, when --data is a photo folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-impostors", type=int, default=2_000_000,
                        help="impostor pairs beyond this are uniformly sampled (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scorer", choices=("bundle", "cosine"), default="bundle",
                        help="score pairs with the bundle's scorer (its logistic unit, when it has one) or cosine")
    parser.add_argument("--no-progress", action="store_true")


def recognizer_of(path: str, key: str | None, threads: int, detector_model=None):
    """The model object of a bundle, .onnx or .tflite (:meth:`Recognizer.from_bundle`), or around a .pt checkpoint
    (torch, desktop only: :meth:`Recognizer.from_embedder`)."""
    from edgeface.config import DetectorConfig
    from edgeface.recognizer import Recognizer

    det = DetectorConfig(model_path=detector_model) if detector_model else None
    if path.endswith(".pt"):
        from edgeface.export.torch_embedder import TorchEmbedder

        return Recognizer.from_embedder(TorchEmbedder(path, threads=threads), det)
    return Recognizer.from_bundle(path, key, detector=det, threads=threads)


def run(args) -> int:
    from pathlib import Path

    from edgeface.evaluate import evaluate, plot_roc_det, split_identities_of, write_report

    from ..quiet import quiet_libraries

    quiet_libraries(verbose=getattr(args, "verbose", False))  # torch's and LiteRT's chatter (-v shows it)
    rec = recognizer_of(args.model, args.model_key, args.threads, args.detector_model)
    if args.scorer == "cosine":
        from edgeface.scorer import COSINE

        rec.scorer = rec.embedder.scorer = COSINE
    ids = split_identities_of(args.val_split) if args.val_split else None
    faces = rec.load_faces(args.data, ids, progress=not args.no_progress)
    report, genuine, impostor = evaluate(rec, faces, args.max_impostors, args.seed, progress=not args.no_progress)
    if args.val_split:
        report["split"] = {"run": str(Path(args.val_split)), "part": "val"}
    write_report(report, args.json)
    if args.plot:
        t = report["tar_at_far"]
        plot_roc_det(genuine, impostor, args.plot,
                     f"{Path(args.model).name} on {Path(args.data).name}: TAR@1e-2 {t['1e-2']:.3f}, EER {report['eer']:.3f}")
    t, f = report["tar_at_far"], report["fnir_at_fpir"]
    def r(x):  # None: too few pairs to measure at that rate
        return "n/a" if x is None else f"{x:.4f}"

    print(f"TAR@FAR 1e-2 {r(t['1e-2'])}  1e-3 {r(t['1e-3'])}  1e-4 {r(t['1e-4'])}  EER {report['eer']:.4f}  "
          f"rank1 {report['rank1']:.4f}  FNIR@FPIR 1e-2 {r(f['1e-2'])}  1e-3 {r(f['1e-3'])}  "
          f"images {report['images']} identities {report['identities']} no_face {report['no_face']}")
    return 0
