"""Folders of face photos: scanning (folder-per-identity or flat) and the detect -> align step for a photo.

Every photo on every side goes through :func:`aligned_crop`: the core detector, the largest face, the one
alignment. Photos without a face are reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .align import align_face
from .detect.base import Detector
from .faces import Face, largest_face

if TYPE_CHECKING:
    from .alignment import Aligner

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp", ".ppm"}


@dataclass(frozen=True)
class Photo:
    identity: str
    path: Path


def scan_identities(root: str | Path) -> list[Photo]:
    """Photos under ``root``: ``root/<identity>/*.jpg`` (folder per identity) or ``root/<identity>.jpg`` (flat,
    the file stem is the identity). Sorted, so splits by seed are reproducible."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder of photos: {root}")
    photos: list[Photo] = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            photos.extend(Photo(entry.name, f) for f in sorted(entry.iterdir())
                          if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            photos.append(Photo(entry.stem, entry))
    return photos


def read_image(path: str | Path) -> np.ndarray | None:
    """BGR uint8 image (grey files are expanded to 3 channels), or None if it cannot be decoded: the one photo
    reader (:func:`edgeface.enroll_photos.read_photo_strict`), for callers that count unreadable photos."""
    from .enroll_photos import CorruptImageError, read_photo_strict

    try:
        return read_photo_strict(path)
    except CorruptImageError:
        return None


def aligned_crop(detector: Detector, image_bgr: np.ndarray, size: int = 112,
                 aligner: "Aligner | None" = None) -> tuple[np.ndarray | None, Face | None]:
    """The aligned crop of the largest face in the image, or (None, None) when there is no face.

    ``aligner`` is the model's alignment (:meth:`edgeface.alignment.Aligner.for_bundle`); without one, the
    ArcFace template at ``size``."""
    face = largest_face(detector.detect(image_bgr))
    if face is None:
        return None, None
    if aligner is None:
        return align_face(image_bgr, face.landmarks, size), face
    return aligner.crop(image_bgr, face), face
