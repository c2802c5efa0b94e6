"""YuNet (OpenCV model zoo, MIT) through ``cv2.FaceDetectorYN``: boxes, 5 landmarks and a score.

At the door it runs on a downscaled copy of the frame (``detect_width``, or chosen from ``min_face_px``: see
:mod:`edgeface.detect.scale`); the copy is resized into one buffer reused from frame to frame, and the boxes and
landmarks are mapped back to full-frame pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DetectorError
from ..faces import Detections


class YuNetDetector:
    name = "yunet"
    approximate = False
    #: how the downscaled copy is made: bilinear down to half size (measured: the same faces and landmarks as
    #: INTER_AREA at 448 px, 0.27 instead of 1.57 ms per 640x480 frame; at exactly half both are the 2x2 mean),
    #: area averaging below half and for photos (enrollment: the max_side rule, unchanged)
    interpolation = cv2.INTER_LINEAR

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        max_side: int = 640,
        detect_width: int | None = None,
        min_face_px: float | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise DetectorError(f"YuNet model not found: {path}")
        self.model_path = path
        self.max_side = int(max_side)
        #: detector input width (None: from ``min_face_px``, else ``max_side``); see :mod:`edgeface.detect.scale`
        self.detect_width = None if detect_width is None else int(detect_width)
        self.min_face_px = min_face_px
        try:
            self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, top_k)
        except cv2.error as exc:
            raise DetectorError(f"cannot load YuNet model {path}: {exc}") from exc
        self._size: tuple[int, int] | None = None
        self._frame_shape: tuple[int, int] | None = None
        self._scaled: tuple[int, int] | None = None
        self._buf: np.ndarray | None = None  # the downscaled copy, reused while the frame size stays

    def detect(self, image_bgr: np.ndarray) -> Detections:
        if image_bgr is None or image_bgr.size == 0:
            return Detections.empty()
        img = image_bgr
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        size = self.input_size(w, h)
        if size != (w, h):
            if self._buf is None or self._buf.shape[:2] != (size[1], size[0]):
                self._buf = np.empty((size[1], size[0], 3), np.uint8)
            door = self.detect_width is not None or self.min_face_px is not None
            how = self.interpolation if door and 2 * size[0] >= w else cv2.INTER_AREA
            img = cv2.resize(img, size, dst=self._buf, interpolation=how)
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, out = self._det.detect(img)
        if out is None or len(out) == 0:
            return Detections.empty()
        out = np.asarray(out, np.float32)
        if size != (w, h):
            map_to_frame(out, w / size[0], h / size[1])
        return Detections(out[:, 0:4], out[:, 4:14].reshape(-1, 5, 2), out[:, 14])

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) the detector runs at for frames of this size (cached per frame size)."""
        if self._frame_shape != (width, height):
            from .scale import detect_size

            self._scaled = detect_size(width, height, self.detect_width, self.min_face_px, self.max_side)
            self._frame_shape = (width, height)
        return self._scaled


def map_to_frame(out: np.ndarray, fx: float, fy: float) -> None:
    """YuNet rows (x, y, w, h, 5 x (x, y), score) from a resized copy back to frame pixels, in place: positions
    as pixel centres ((v + 0.5) * f - 0.5), sizes scaled."""
    xs, ys = [0, 4, 6, 8, 10, 12], [1, 5, 7, 9, 11, 13]
    out[:, xs] = (out[:, xs] + np.float32(0.5)) * np.float32(fx) - np.float32(0.5)
    out[:, ys] = (out[:, ys] + np.float32(0.5)) * np.float32(fy) - np.float32(0.5)
    out[:, 2] *= np.float32(fx)
    out[:, 3] *= np.float32(fy)
