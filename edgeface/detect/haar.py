"""Zero-download fallback: OpenCV's bundled Haar cascades (opencv-python-headless 4.x).

LOWER ACCURACY than YuNet: frontal faces only, more misses and false positives, and the landmarks are
partly estimated: eyes come from an eye cascade when it finds both (else from face-box proportions), the
nose tip and mouth corners always from proportions. Use it only where no model file can be had.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import DetectorError
from ..faces import Detections

# landmark positions as fractions of a Haar face box (x, y), measured on aligned faces
_BOX_LANDMARKS = np.array([[0.31, 0.40], [0.69, 0.40], [0.50, 0.58], [0.35, 0.76], [0.65, 0.76]], np.float32)


def _cascade(name: str):
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise DetectorError(
            "this OpenCV build has no Haar cascades (opencv-python-headless 5.x dropped them); "
            "install 'opencv-python-headless<5' or use the YuNet detector"
        )
    clf = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if clf.empty():
        raise DetectorError(f"cannot load OpenCV cascade {name}")
    return clf


class HaarDetector:
    name = "haar"
    approximate = True

    def __init__(self, min_size: int = 40, scale_factor: float = 1.1, min_neighbors: int = 5) -> None:
        self._face = _cascade("haarcascade_frontalface_default.xml")
        self._eye = _cascade("haarcascade_eye.xml")
        self.min_size = int(min_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        if image_bgr is None or image_bgr.size == 0:
            return Detections.empty()
        grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        grey = cv2.equalizeHist(grey)
        rects, _, weights = self._face.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True,
        )
        if len(rects) == 0:
            return Detections.empty()
        boxes = np.asarray(rects, np.float32).reshape(-1, 4)
        landmarks = np.stack([self._landmarks(grey, b) for b in boxes])
        # levelWeights are unbounded confidences; squash to (0, 1) so thresholds look like YuNet's
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        return Detections(boxes, landmarks, scores)

    def _landmarks(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        x, y, w, h = box
        pts = _BOX_LANDMARKS * np.array([w, h], np.float32) + np.array([x, y], np.float32)
        top = grey[int(y): int(y + h * 0.55), int(x): int(x + w)]
        eyes = self._eye.detectMultiScale(top, scaleFactor=1.1, minNeighbors=5, minSize=(max(8, int(w / 8)),) * 2)
        if len(eyes) >= 2:
            centres = np.array([[ex + ew / 2.0, ey + eh / 2.0] for ex, ey, ew, eh in eyes], np.float32)
            left = centres[centres[:, 0] < w / 2]
            right = centres[centres[:, 0] >= w / 2]
            if len(left) and len(right):
                pts[0] = left[np.argmin(np.abs(left[:, 0] - 0.31 * w))] + np.array([x, y], np.float32)
                pts[1] = right[np.argmin(np.abs(right[:, 0] - 0.69 * w))] + np.array([x, y], np.float32)
        return pts
