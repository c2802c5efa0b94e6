"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", choices=("yunet", "haar"), default=None,
                   help="yunet (default, accurate) or haar (zero-download fallback, LOWER ACCURACY); default: the "
                        "--config's [detector] kind, else yunet")
    p.add_argument("--detector-model", type=Path, default=None,
                   help="YuNet ONNX file (default: the --config's, else $EDGEFACE_YUNET, else the verified registry cache)")
    p.add_argument("--score-threshold", type=float, default=None,
                   help="minimum detector score (default: the --config's [detector] score_threshold, else 0.7)")


def detector_config(args: argparse.Namespace, gate_cfg=None):
    """The ``[detector]`` section these options describe: the config's (``--config``) or the defaults, with the
    options given on the command line on top; the same section the gate and the admin page build theirs from."""
    from pydantic import ValidationError

    from ..config import DetectorConfig
    from ..errors import ConfigError

    det = gate_cfg.detector if gate_cfg is not None else DetectorConfig()
    update = {k: v for k, v in (("kind", args.detector), ("model_path", args.detector_model),
                                ("score_threshold", args.score_threshold)) if v is not None}
    try:
        return DetectorConfig.model_validate({**det.model_dump(), **update}) if update else det
    except ValidationError as exc:
        raise ConfigError("detector options: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                           for e in exc.errors())) from None


def detector_from_args(args: argparse.Namespace):
    """A photo detector (:func:`edgeface.recognizer.build_detector`) for the standalone detect / align commands."""
    from ..recognizer import build_detector

    return build_detector(detector_config(args), frames=False)


def read_image_or_fail(path: Path):
    """The one photo reader (:func:`edgeface.enroll_photos.read_photo_strict`)."""
    from ..enroll_photos import read_photo_strict

    return read_photo_strict(path)
