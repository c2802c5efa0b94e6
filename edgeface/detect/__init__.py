"""Face detection: one interface, one file per backend.

``create_detector("yunet", model_path=...)`` is the accurate default (OpenCV ``FaceDetectorYN``);
``create_detector("haar")`` is the zero-download fallback (OpenCV's bundled Haar cascades, lower accuracy,
landmarks partly estimated from face geometry).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DetectorError
from .base import Detector

DETECTORS = ("yunet", "haar")


def create_detector(kind: str = "yunet", model_path: str | Path | None = None, **options) -> Detector:
    """Build a detector. For YuNet without ``model_path`` the model registry resolves the file
    (``EDGEFACE_YUNET`` environment variable, then the verified cache, then a checked download)."""
    if kind == "yunet":
        from .yunet import YuNetDetector

        if model_path is None:
            from ..registry import resolve_model

            model_path = resolve_model("yunet")
        return YuNetDetector(model_path, **options)
    if kind == "haar":
        from .haar import HaarDetector

        return HaarDetector(**options)
    raise DetectorError(f"unknown detector {kind!r}; choose one of {', '.join(DETECTORS)}")


__all__ = ["Detector", "create_detector", "DETECTORS"]
