"""One photo's check for enrollment: detect, the largest face, align, quality gate (:func:`check_photo`), and the
records it yields. The model's own parts are supplied by :class:`edgeface.recognizer.Recognizer`, through which
enrollment (CLI and admin page), calibration and the benches embed photos, with the same :mod:`edgeface.quality`
gates as the door, so an enrolled embedding and a live one are made alike. A photo that fails is returned with
its reasons, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import QualityConfig
from .errors import AlignmentError
from .faces import Detections, Face, largest_face
from .faceset import Photo
from .quality import QualityReport, assess

UNREADABLE = "unreadable"
CORRUPT = "corrupt"
ALIGNMENT_FAILED = "alignment_failed"


@dataclass
class FaceCheck:
    """One photo's largest face, its aligned crop and the quality verdict (``crop`` is None when unusable)."""

    report: QualityReport
    face: Face | None = None
    crop: np.ndarray | None = None
    detections: Detections | None = None

    @property
    def ok(self) -> bool:
        return self.report.ok and self.crop is not None


def check_photo(detector, image: np.ndarray | None, cfg: QualityConfig, aligner) -> FaceCheck:
    """Detect, pick the largest face, align it with the model's ``aligner`` (:class:`edgeface.alignment.Aligner`)
    and run the quality gates. Photos go through :meth:`edgeface.recognizer.Recognizer.check_photo`, which
    supplies the model's detector, gates and alignment."""
    if image is None or image.size == 0:
        return FaceCheck(QualityReport(False, ["cannot read the image"], {}, [UNREADABLE]))
    dets = detector.detect(image)
    face = largest_face(dets)
    crop = None
    if face is not None:
        try:
            crop = aligner.crop(image, face)
        except AlignmentError as exc:
            return FaceCheck(QualityReport(False, [f"cannot align the face: {exc}"], {"faces": len(dets)},
                                           [ALIGNMENT_FAILED]), face, None, dets)
    report = assess(image, face, crop, cfg, dets)
    return FaceCheck(report, face, crop if report.ok else None, dets)


@dataclass
class EmbeddedPhotos:
    """Embeddings (n, D) of the accepted photos, in order, and the rejected photos with their reports
    (:meth:`edgeface.recognizer.Recognizer.embed_photos`)."""

    embeddings: np.ndarray
    accepted: list[Photo] = field(default_factory=list)
    rejected: list[tuple[Photo, QualityReport]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([p.identity for p in self.accepted])
