"""Five-point face alignment: the one function training, enrollment and the door all use.

A similarity transform (rotation, uniform scale, translation; Umeyama least squares) maps the detector's
five landmarks onto the ArcFace reference template for a 112x112 crop. The template is the contract between
the detector and the recogniser: change it and every gallery must be rebuilt.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import AlignmentError

#: ArcFace reference points for a 112x112 crop: right eye, left eye, nose tip, right and left mouth corner
#: (image-left first), as in insightface ``face_align.arcface_dst``.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
TEMPLATE_SIZE = 112

#: below this inter-eye distance (pixels in the source image) landmarks are considered degenerate
MIN_EYE_DISTANCE = 2.0


def template(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The reference points for a ``size`` x ``size`` crop (scaled from the 112 template)."""
    return ARCFACE_TEMPLATE * (size / TEMPLATE_SIZE)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2):
        raise AlignmentError(f"expected 5 landmarks of shape (5, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise AlignmentError("landmarks contain NaN or infinity")
    eye_dist = float(np.linalg.norm(pts[1] - pts[0]))
    if eye_dist < MIN_EYE_DISTANCE:
        raise AlignmentError(f"eyes are {eye_dist:.2f} px apart (< {MIN_EYE_DISTANCE}): landmarks are degenerate")
    centred = pts - pts.mean(axis=0)
    # all five points on one line (rank 1) cannot define a face
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[1] < 1e-3 * sv[0]:
        raise AlignmentError("landmarks are collinear: cannot estimate a face pose")
    return pts


def similarity_transform(landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The 2x3 similarity matrix mapping ``landmarks`` (5, 2) onto the template (Umeyama, 1991)."""
    src = _check_landmarks(landmarks)
    dst = template(size).astype(np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float((s * d).sum() / var_src)
    t = dst_mean - scale * rot @ src_mean
    m = np.zeros((2, 3), np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = t
    return m.astype(np.float32)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """Warp ``image`` (H, W, 3 or H, W) so that ``landmarks`` land on the template; returns a size x size crop.

    Grey images are expanded to three channels so that every crop has the same shape.
    """
    if image is None or image.size == 0:
        raise AlignmentError("empty image")
    m = similarity_transform(landmarks, size)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]
