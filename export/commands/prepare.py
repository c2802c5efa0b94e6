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
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from edgeface.cropcache import build_cache
    from edgeface.detect import create_detector

    detector = create_detector(args.detector, args.detector_model) if args.detector == "yunet" \
        else create_detector("haar")
    cache = build_cache(args.data, args.out, detector, progress=not args.no_progress)
    c = cache.manifest["counts"]
    print(f"{args.out}: {c['crops']} crops of {c['images']} images, {c['identities']} identities; "
          f"no face: {c['no_face']}, unreadable: {c['unreadable']} (listed in {cache.root / 'manifest.json'})")
    return 0
