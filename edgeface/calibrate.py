"""Threshold calibration: the cosine threshold that gives a target false-accept rate on people the gallery
will never hold, with the true-accept rate and one-shot miss rate to expect at it.

The calibration set must be identity-disjoint from the enrolled people (and from the embedder's training
identities): its impostor pairs stand in for strangers at the door. The device accepts ``score >= value``
(:mod:`edgeface.device.policy`), while :func:`edgeface.metrics.threshold_at_far` counts ``score > t`` as
accepted, so the stored value is the next float above ``t``: both rules then accept exactly the same scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import EdgefaceError
from .metrics import far_key, one_shot_split, pair_scores, threshold_at_far


@dataclass
class Calibration:
    threshold: float
    far: float
    tar: float
    fnir: float
    fpir: float
    rank1: float
    identities: int
    images: int
    genuine_pairs: int
    impostor_pairs: int
    achieved_far: float
    #: (threshold, measured FAR) at the FARs of :data:`edgeface.thresholds.POINT_FARS` the data resolves
    points: list = None

    def to_json(self) -> dict:
        return asdict(self)


def one_shot_at_threshold(emb: np.ndarray, labels: np.ndarray, threshold: float, seed: int = 0) -> dict[str, float]:
    """Enroll one photo of half the identities; the other photos of enrolled people must match the right person
    with ``score >= threshold`` (FNIR counts those that do not), and no photo of a stranger may reach it (FPIR)."""
    gallery, mated, non_mated = one_shot_split(labels, 0.5, seed)
    g = emb[gallery]
    out = {"rank1": float("nan"), "fnir": float("nan"), "fpir": float("nan")}
    if len(mated):
        s = emb[mated] @ g.T
        best = np.argmax(s, axis=1)
        correct = labels[gallery][best] == labels[mated]
        score = s[np.arange(len(mated)), best]
        out["rank1"] = float(np.mean(correct))
        out["fnir"] = float(1.0 - np.mean(correct & (score >= threshold)))
    if len(non_mated):
        out["fpir"] = float(np.mean(np.max(emb[non_mated] @ g.T, axis=1) >= threshold))
    return out


def calibrate(emb: np.ndarray, labels: np.ndarray, far: float, seed: int = 0) -> Calibration:
    """The threshold giving ``far`` on all impostor pairs of ``(emb, labels)`` (up to 2M, sampled by seed)."""
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels)
    if not 0 < far < 1:
        raise EdgefaceError(f"target FAR must be between 0 and 1, got {far}")
    ids = np.unique(labels)
    if len(ids) < 2:
        raise EdgefaceError(f"calibration needs at least 2 identities, got {len(ids)}")
    genuine, impostor = pair_scores(emb, labels, seed=seed)
    if len(impostor) * far < 1:
        raise EdgefaceError(f"{len(impostor)} impostor pairs cannot resolve FAR {far_key(far)}: "
                            f"need at least {int(np.ceil(1 / far))}; add identities or photos")
    if len(genuine) == 0:
        raise EdgefaceError("no genuine pairs: every identity needs at least 2 usable photos")
    t = threshold_at_far(impostor, far)
    value = float(np.nextafter(t, np.inf))
    one_shot = one_shot_at_threshold(emb, labels, value, seed)
    return Calibration(threshold=value, far=far, tar=float(np.mean(genuine >= value)), fnir=one_shot["fnir"],
                       fpir=one_shot["fpir"], rank1=one_shot["rank1"], identities=len(ids), images=len(labels),
                       genuine_pairs=len(genuine), impostor_pairs=len(impostor),
                       achieved_far=float(np.mean(impostor >= value)), points=far_points(impostor))


def far_points(impostor: np.ndarray) -> list[tuple[float, float]]:
    """(threshold, FAR measured at ``score >= threshold``) for each FAR in POINT_FARS the impostors resolve,
    so the FAR of a threshold other than the calibrated one can be told later."""
    from .thresholds import POINT_FARS

    out = []
    for f in POINT_FARS:
        if len(impostor) * f < 1:
            continue
        t = float(min(np.nextafter(threshold_at_far(impostor, f), np.inf), 1.0))
        out.append((round(t, 6), float(np.mean(impostor >= t))))
    return out
