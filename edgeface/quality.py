"""Quality gates for one detected face, shared by enrollment and the door.

A face is rejected when no face was found, when another face of similar size competes with it (whose face is
it?), when it is too small (inter-eye distance or box), blurred (variance of the Laplacian of the aligned
crop), weakly detected (detector score), or far from frontal (landmark geometry: the nose's offset from the
eye midline, the left/right eye-to-mouth asymmetry, eyes close together in a large box). Every reason has its own code and message; the measures
are returned too, so thresholds can be calibrated (bench/quality_stats.py) and audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import QualityConfig
from .faces import Detections, Face

NO_FACE = "no_face"
SEVERAL_FACES = "several_faces"
TOO_SMALL = "too_small"
BLURRED = "blurred"
LOW_SCORE = "low_score"
NOT_FRONTAL = "not_frontal"
REASON_CODES = (NO_FACE, SEVERAL_FACES, TOO_SMALL, BLURRED, LOW_SCORE, NOT_FRONTAL)

#: eye distance / face box below this means a face turned sideways (frontal faces: about 0.44; 99.5 % of the
#: ORL and celeba-loose faces that pass every other gate are above 0.32), not a small one
MIN_EYE_RATIO = 0.3


@dataclass
class QualityReport:
    """``ok`` is True only when no gate failed. ``reasons`` are messages for people, ``codes`` their short keys
    (same order), ``measures`` the numbers the gates looked at."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    measures: dict = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"ok": self.ok, "codes": list(self.codes), "reasons": list(self.reasons),
                "measures": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.measures.items()}}


#: the inner face of an aligned 112x112 crop (rows, columns): eyebrows to chin, cheek to cheek. Sharpness is
#: measured here only, because the crop's borders can hold the black padding of a face near the image edge,
#: whose hard edges would make any blurred face look sharp.
INNER_FACE = (slice(36, 104), slice(26, 86))


def sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the inner face of the grey aligned crop: low for blurred or featureless faces."""
    grey = crop_bgr if crop_bgr.ndim == 2 else cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape[:2]
    rows, cols = INNER_FACE
    inner = grey[int(rows.start * h / 112):int(rows.stop * h / 112), int(cols.start * w / 112):int(cols.stop * w / 112)]
    return float(cv2.Laplacian(inner, cv2.CV_64F).var())


def pose_measures(landmarks: np.ndarray) -> dict[str, float]:
    """Frontal-ness from the five landmarks, independent of scale and in-plane rotation.

    ``nose_offset``: the nose tip's distance from the perpendicular bisector of the eyes, as a fraction of the
    eye distance (0 when frontal, grows with yaw). ``eye_mouth_asymmetry``: |d(right eye, right mouth corner) -
    d(left eye, left mouth corner)| / their mean (0 when symmetric, grows with yaw and tilt)."""
    pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    re, le, nose, rm, lm = pts
    axis = le - re
    eye_dist = float(np.linalg.norm(axis))
    if eye_dist < 1e-6:
        return {"nose_offset": float("inf"), "eye_mouth_asymmetry": float("inf")}
    u = axis / eye_dist
    nose_offset = abs(float(np.dot(nose - (re + le) / 2.0, u))) / eye_dist
    d_r, d_l = float(np.linalg.norm(rm - re)), float(np.linalg.norm(lm - le))
    mean = (d_r + d_l) / 2.0
    asym = abs(d_r - d_l) / mean if mean > 1e-6 else float("inf")
    return {"nose_offset": nose_offset, "eye_mouth_asymmetry": asym}


def _competing_faces(face: Face, all_faces: Detections, ratio: float) -> int:
    """How many other faces are at least ``ratio`` times as large as ``face`` (shorter box side)."""
    sizes = np.minimum(all_faces.boxes[:, 2], all_faces.boxes[:, 3])
    same = np.all(np.isclose(all_faces.boxes, face.box[None, :], atol=0.5), axis=1)
    others = sizes[~same]
    return int(np.sum(others >= ratio * face.size))


def assess(image_bgr: np.ndarray | None, face: Face | None, crop: np.ndarray | None, cfg: QualityConfig,
           all_faces: Detections | None = None) -> QualityReport:
    """Check one face (the one that would be enrolled or matched) against the gates of ``cfg``.

    ``image_bgr`` is the frame the face was found in (part of the shared signature; no gate reads it yet);
    ``crop`` the aligned crop (for sharpness; None skips that gate); ``all_faces`` every detection of the
    frame (for the several-faces gate; None skips it)."""
    reasons: list[str] = []
    codes: list[str] = []

    def fail(code: str, msg: str) -> None:
        codes.append(code)
        reasons.append(msg)

    n_faces = len(all_faces) if all_faces is not None else (0 if face is None else 1)
    measures: dict = {"faces": n_faces}
    if face is None:
        fail(NO_FACE, "no face found")
        return QualityReport(False, reasons, measures, codes)

    if all_faces is not None and len(all_faces) > 1:
        rivals = _competing_faces(face, all_faces, cfg.similar_size_ratio)
        measures["similar_faces"] = rivals
        if rivals:
            fail(SEVERAL_FACES, f"{rivals + 1} faces of similar size: cannot tell whose face it is "
                                f"(others must be smaller than {cfg.similar_size_ratio:.0%} of the main face)")

    measures["face_px"] = face.size
    measures["eye_distance_px"] = face.eye_distance
    eye_ratio = face.eye_distance / face.size if face.size > 0 else 0.0
    measures["eye_ratio"] = eye_ratio
    sideways = eye_ratio < MIN_EYE_RATIO  # eyes close together in a large box: turned, not far away
    if face.size < cfg.min_face_px or (face.eye_distance < cfg.min_eye_distance_px and not sideways):
        fail(TOO_SMALL, f"face too small: eyes {face.eye_distance:.1f} px apart (min {cfg.min_eye_distance_px:g}), "
                        f"face {face.size:.0f} px (min {cfg.min_face_px}); come closer or use a larger photo")

    measures["score"] = face.score
    if face.score < cfg.min_score:
        fail(LOW_SCORE, f"detector is unsure it is a face: score {face.score:.2f} (min {cfg.min_score:g})")

    if crop is not None:
        sharp = sharpness(crop)
        measures["sharpness"] = sharp
        if sharp < cfg.min_sharpness:
            fail(BLURRED, f"face is blurred: sharpness {sharp:.1f} (variance of the Laplacian, min {cfg.min_sharpness:g})")

    pose = pose_measures(face.landmarks)
    measures.update(pose)
    if (pose["nose_offset"] > cfg.max_pose_asymmetry or pose["eye_mouth_asymmetry"] > cfg.max_eye_mouth_asymmetry
            or sideways):
        fail(NOT_FRONTAL, f"face is turned away: nose {pose['nose_offset']:.2f} eye-distances off the eye midline "
                          f"(max {cfg.max_pose_asymmetry:g}), eye-mouth asymmetry {pose['eye_mouth_asymmetry']:.2f} "
                          f"(max {cfg.max_eye_mouth_asymmetry:g}), eye distance {eye_ratio:.2f} of the face width "
                          f"(min {MIN_EYE_RATIO:g}); look straight at the camera")

    return QualityReport(not codes, reasons, measures, codes)
