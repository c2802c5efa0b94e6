"""From photos to embeddings the way the door sees a face: detect, the largest face, align, quality gate, embed.

Enrollment, calibration and the one-shot benchmark all go through :func:`check_photo` and
:func:`embed_photos`, the same steps (and the same :mod:`edgeface.quality` gates) as the door's pipeline, so an
enrolled embedding and a live one are made alike. A photo that fails is returned with its reasons, never
silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .align import align_face
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


def check_photo(detector, image: np.ndarray | None, cfg: QualityConfig, size: int = 112) -> FaceCheck:
    """Detect, pick the largest face, align it and run the quality gates."""
    if image is None or image.size == 0:
        return FaceCheck(QualityReport(False, ["cannot read the image"], {}, [UNREADABLE]))
    dets = detector.detect(image)
    face = largest_face(dets)
    crop = None
    if face is not None:
        try:
            crop = align_face(image, face.landmarks, size)
        except AlignmentError as exc:
            return FaceCheck(QualityReport(False, [f"cannot align the face: {exc}"], {"faces": len(dets)},
                                           [ALIGNMENT_FAILED]), face, None, dets)
    report = assess(image, face, crop, cfg, dets)
    return FaceCheck(report, face, crop if report.ok else None, dets)


@dataclass
class EmbeddedPhotos:
    """Embeddings (n, D) of the accepted photos, in order, and the rejected photos with their reports."""

    embeddings: np.ndarray
    accepted: list[Photo] = field(default_factory=list)
    rejected: list[tuple[Photo, QualityReport]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([p.identity for p in self.accepted])


def embed_photos(photos: list[Photo], detector, embedder, cfg: QualityConfig, desc: str = "photos",
                 progress: bool = True, batch: int = 32, on_reject=None) -> EmbeddedPhotos:
    """Check and embed each photo (tqdm progress on stderr). Rejected photos are listed, not dropped (and
    passed to ``on_reject(photo, report)`` as they happen). Photos are decoded strictly
    (:func:`edgeface.enroll_photos.read_photo_strict`): a truncated or damaged file is rejected as ``corrupt``."""
    from tqdm import tqdm

    from .enroll_photos import CorruptImageError, read_photo_strict

    size = int(embedder.spec.size[0])
    out = EmbeddedPhotos(np.zeros((0, embedder.embedding_size), np.float32))
    crops: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    for photo in tqdm(photos, desc=desc, unit="photo", disable=not progress, leave=False):
        try:
            image = read_photo_strict(Path(photo.path))
        except CorruptImageError as exc:
            check = FaceCheck(QualityReport(False, [str(exc)], {}, [CORRUPT]))
        else:
            check = check_photo(detector, image, cfg, size)
        if not check.ok:
            out.rejected.append((photo, check.report))
            if on_reject is not None:
                on_reject(photo, check.report)
            continue
        out.accepted.append(photo)
        crops.append(check.crop)
        if len(crops) >= batch:
            parts.append(embedder.embed(np.stack(crops)))
            crops = []
    if crops:
        parts.append(embedder.embed(np.stack(crops)))
    if parts:
        out.embeddings = np.concatenate(parts)
    return out
