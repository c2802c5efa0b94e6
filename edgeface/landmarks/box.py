"""From a YuNet box to the box dlib's 5-point predictor expects (one from dlib's HOG face detector).

dlib's predictor was trained on its HOG detector's boxes: square, a little smaller than YuNet's and lower on the
face. Run on a raw YuNet box it would place its points on the wrong face geometry; run on this mapped box it sees
what it was trained on. With ``s = (w + h) / 2`` of the YuNet box (x, y, w, h), the dlib box has its centre at
``(x + w/2 + DX * s, y + h/2 + DY * s)`` and side ``SIDE * s`` (dlib's rectangle: ``right - left + 1`` wide,
centre ``((left + right) / 2, (top + bottom) / 2)``).

The constants are medians over the 1,115 of 1,206 celeba-loose photos (every 4th) in which both detectors find
exactly one face, fitted by

    .venv/bin/python bench/fit_dlib_box.py --data ../shared/data/faces/celeba-loose --every 4 \\
        --detector-model ../shared/models/yunet/face_detection_yunet_2026may.onnx

(results in ``bench/results/fit_dlib_box.json``: quartiles dx -0.037..0.023, dy 0.017..0.092, side 0.904..0.961;
dlib's points on the mapped box lie a median 0.2 % of the box side from its points on the HOG box).
"""

from __future__ import annotations

import math

import numpy as np

#: centre offset (x, y) and side, in units of the YuNet box's mean side s = (w + h) / 2
DX = -0.0188
DY = 0.0737
SIDE = 0.9308


def dlib_box_from_detector(
    box_xywh, dx: float = DX, dy: float = DY, side: float = SIDE
) -> tuple[int, int, int, int]:
    """The dlib-detector-like box (left, top, right, bottom), integers as a ``dlib.rectangle``, for a detector box
    (x, y, w, h) in pixels."""
    x, y, w, h = (float(v) for v in np.asarray(box_xywh, dtype=np.float64).reshape(4))
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"not a face box (x, y, w, h): {(x, y, w, h)}")
    s = (w + h) / 2.0
    cx, cy = x + w / 2.0 + dx * s, y + h / 2.0 + dy * s
    n = max(1, round(side * s))
    left, top = round(cx - (n - 1) / 2.0), round(cy - (n - 1) / 2.0)
    return int(left), int(top), int(left + n - 1), int(top + n - 1)
