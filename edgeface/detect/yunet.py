"""YuNet (OpenCV model zoo, MIT) through ``cv2.FaceDetectorYN``: boxes, 5 landmarks and a score."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DetectorError
from ..faces import Detections


class YuNetDetector:
    name = "yunet"
    approximate = False

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        max_side: int = 640,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise DetectorError(f"YuNet model not found: {path}")
        self.model_path = path
        self.max_side = int(max_side)
        try:
            self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, top_k)
        except cv2.error as exc:
            raise DetectorError(f"cannot load YuNet model {path}: {exc}") from exc
        self._size: tuple[int, int] | None = None

    def detect(self, image_bgr: np.ndarray) -> Detections:
        if image_bgr is None or image_bgr.size == 0:
            return Detections.empty()
        img = image_bgr
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        size = (img.shape[1], img.shape[0])
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, out = self._det.detect(img)
        if out is None or len(out) == 0:
            return Detections.empty()
        out = np.asarray(out, np.float32) / np.float32(scale)
        out[:, 14] *= scale  # the score column is not a coordinate
        return Detections(out[:, 0:4], out[:, 4:14].reshape(-1, 5, 2), out[:, 14])
