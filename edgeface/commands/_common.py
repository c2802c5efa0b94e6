"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", choices=("yunet", "haar"), default="yunet",
                   help="yunet (default, accurate) or haar (zero-download fallback, LOWER ACCURACY)")
    p.add_argument("--detector-model", type=Path, default=None,
                   help="YuNet ONNX file (default: $EDGEFACE_YUNET, else the verified registry cache/download)")
    p.add_argument("--score-threshold", type=float, default=0.6, help="minimum detector score (default 0.6)")


def detector_from_args(args: argparse.Namespace):
    from ..detect import create_detector

    if args.detector == "yunet":
        return create_detector("yunet", args.detector_model, score_threshold=args.score_threshold)
    return create_detector("haar")


def read_image_or_fail(path: Path):
    from ..errors import EdgefaceError
    from ..faceset import read_image

    img = read_image(path)
    if img is None:
        raise EdgefaceError(f"cannot read an image from {path}")
    return img
