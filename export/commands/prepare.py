"""``edgeface prepare``: detect and align every photo once into an aligned-crop cache."""

from __future__ import annotations

NAME = "prepare"
HELP = "detect + align a folder-per-identity photo set once into a crop cache (crops.npy + manifest.json)"


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="folder of photos: DIR/<identity>/*.jpg")
    parser.add_argument("--out", required=True, help="cache directory to write")
    parser.add_argument("--detector", default="yunet", choices=("yunet", "haar"))
    parser.add_argument("--detector-model", default=None,
                        help="YuNet ONNX file (default: EDGEFACE_YUNET, then the model registry)")
    align = parser.add_mutually_exclusive_group()
    align.add_argument("--bundle", default=None, help="align as this bundle's model expects (default: ArcFace 112)")
    align.add_argument("--pretrained", choices=("dlib-resnet-v1",), default=None,
                       help="align for a pretrained model (dlib's 150x150 chips from its 5-point landmarks)")
    parser.add_argument("--no-progress", action="store_true")


def source_from_args(args, work_dir):
    """(photo detector, alignment) for the cache: a bundle's model object (``--bundle``), a pretrained model's
    alignment (``--pretrained``; its landmark model is written into ``work_dir``), or ArcFace 112 (None)."""
    from pathlib import Path

    from edgeface.alignment import Aligner
    from edgeface.config import DetectorConfig
    from edgeface.recognizer import Recognizer, build_detector

    det = DetectorConfig(kind=args.detector, model_path=args.detector_model)
    if getattr(args, "bundle", None):
        rec = Recognizer.from_bundle(args.bundle, detector=det)
        return rec.photo_detector, rec.aligner
    detector = build_detector(det, frames=False)
    if getattr(args, "pretrained", None):
        from edgeface.export.dlib.pretrained import LANDMARK_FILE, load_pretrained

        pre = load_pretrained(args.pretrained)
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        pre.write_landmarks(work_dir)
        return detector, Aligner(pre.align, Path(work_dir) / LANDMARK_FILE)
    return detector, None


def run(args) -> int:
    from edgeface.cropcache import build_cache

    detector, aligner = source_from_args(args, args.out)
    cache = build_cache(args.data, args.out, detector, progress=not args.no_progress, aligner=aligner)
    c = cache.manifest["counts"]
    print(f"{args.out}: {c['crops']} crops of {c['images']} images, {c['identities']} identities; "
          f"no face: {c['no_face']}, unreadable: {c['unreadable']} (listed in {cache.root / 'manifest.json'})")
    return 0
