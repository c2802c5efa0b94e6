"""The detector interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..faces import Detections


@runtime_checkable
class Detector(Protocol):
    #: short name recorded in manifests and audit events
    name: str
    #: True for backends whose landmarks are partly guessed (the Haar fallback)
    approximate: bool

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """All faces in a BGR (or grey) uint8 image; ``len(result) == 0`` when there is none."""
        ...
