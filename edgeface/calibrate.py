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

from .scorer import similarity


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
    #: the score of the :data:`TOP_IMPOSTORS`-th highest impostor pair (a score above it has a FAR below
    #: TOP_IMPOSTORS / impostor_pairs); robust to a few pairs of one person filed under two identities
    top_impostor: float | None = None
    #: the impostor tail beyond its 1e-3 quantile as a generalised Pareto fit (:func:`tail_fit`), for FARs the
    #: pairs cannot resolve: (u, p_u, sigma, xi)
    tail: tuple | None = None

    def to_json(self) -> dict:
        return asdict(self)


def one_shot_at_threshold(emb: np.ndarray, labels: np.ndarray, threshold: float, seed: int = 0,
                          scorer=None) -> dict[str, float]:
    """Enroll one photo of half the identities; the other photos of enrolled people must match the right person
    with ``score >= threshold`` (FNIR counts those that do not), and no photo of a stranger may reach it (FPIR)."""
    gallery, mated, non_mated = one_shot_split(labels, 0.5, seed)
    g = emb[gallery]
    out = {"rank1": float("nan"), "fnir": float("nan"), "fpir": float("nan")}
    if len(mated):
        s = similarity(emb[mated], g, scorer)
        best = np.argmax(s, axis=1)
        correct = labels[gallery][best] == labels[mated]
        score = s[np.arange(len(mated)), best]
        out["rank1"] = float(np.mean(correct))
        out["fnir"] = float(1.0 - np.mean(correct & (score >= threshold)))
    if len(non_mated):
        out["fpir"] = float(np.mean(np.max(similarity(emb[non_mated], g, scorer), axis=1) >= threshold))
    return out


def calibrate(emb: np.ndarray, labels: np.ndarray, far: float, seed: int = 0, verify: bool = False,
              scorer=None) -> Calibration:
    """The threshold giving ``far`` on all impostor pairs of ``(emb, labels)`` (up to 2M, sampled by seed).

    ``verify`` (1:1, ``calibrate --mode verify``): the same single comparisons (a probe against one claimed
    person's photo; genuine pairs vs impostor pairs), without the one-shot 1:N rates, which a 1:1 check never
    faces: its FAR per attempt is the FAR per comparison, where 1:N against N people makes N comparisons."""
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels)
    if not 0 < far < 1:
        raise EdgefaceError(f"target FAR must be between 0 and 1, got {far}")
    ids = np.unique(labels)
    if len(ids) < 2:
        raise EdgefaceError(f"calibration needs at least 2 identities, got {len(ids)}")
    genuine, impostor = pair_scores(emb, labels, seed=seed, scorer=scorer)
    if len(impostor) * far < 1:
        raise EdgefaceError(f"{len(impostor)} impostor pairs cannot resolve FAR {far_key(far)}: "
                            f"need at least {int(np.ceil(1 / far))}; add identities or photos")
    if len(genuine) == 0:
        raise EdgefaceError("no genuine pairs: every identity needs at least 2 usable photos")
    t = threshold_at_far(impostor, far)
    value = float(np.nextafter(t, np.inf))
    nan = float("nan")
    one_shot = {"fnir": nan, "fpir": nan, "rank1": nan} if verify else one_shot_at_threshold(emb, labels, value, seed,
                                                                                                  scorer)
    return Calibration(threshold=value, far=far, tar=float(np.mean(genuine >= value)), fnir=one_shot["fnir"],
                       fpir=one_shot["fpir"], rank1=one_shot["rank1"], identities=len(ids), images=len(labels),
                       genuine_pairs=len(genuine), impostor_pairs=len(impostor),
                       achieved_far=float(np.mean(impostor >= value)), points=far_points(impostor),
                       top_impostor=top_impostor(impostor), tail=tail_fit(impostor))


#: how many impostor pairs may lie above the calibration's top score (see :func:`top_impostor`)
TOP_IMPOSTORS = 10


def top_impostor(impostor: np.ndarray) -> float:
    """The score of the TOP_IMPOSTORS-th highest impostor pair: the strictest point the data resolves robustly. A
    calibration set can hold one person under two names (celeba-loose does: pairs at cosine 1.0); the maximum
    would make every stricter threshold 1.0."""
    imp = np.asarray(impostor, np.float64)
    k = min(TOP_IMPOSTORS, len(imp))
    return float(np.partition(imp, len(imp) - k)[len(imp) - k])


#: the tail fit starts at the impostor quantile of this FAR...
TAIL_FAR = 1e-3
#: ...and needs at least this many exceedances
TAIL_MIN = 50


def tail_fit(impostor: np.ndarray) -> tuple[float, float, float, float] | None:
    """The impostor scores above their ``1 - TAIL_FAR`` quantile ``u`` as a generalised Pareto distribution
    (the tail of any distribution above a high threshold, extreme value theory), fitted by probability-weighted
    moments (Hosking & Wallis 1987): FAR(s) = p_u (1 + xi (s - u) / sigma) ** (-1 / xi) for s > u. Returns
    (u, p_u, sigma, xi), or None when there are fewer than TAIL_MIN exceedances.

    It carries thresholds below the FARs the pairs resolve (enrollment's duplicate check, a stricter door); tested
    against the empirical tail of a 27x larger set (tests/test_thresholds.py, docs/gallery.md)."""
    imp = np.asarray(impostor, np.float64)
    m = int(round(len(imp) * TAIL_FAR))
    if m < TAIL_MIN:
        return None
    top = np.sort(np.partition(imp, len(imp) - m - 1)[len(imp) - m - 1:])  # the m + 1 highest, ascending
    u, y = float(top[0]), top[1:] - top[0]
    a0 = float(y.mean())
    f = (np.arange(1, m + 1) - 0.35) / m  # plotting positions of the ascending exceedances
    a1 = float(np.mean(y * (1.0 - f)))
    if a0 <= 0 or a0 - 2 * a1 <= 0:
        return None
    sigma = 2 * a0 * a1 / (a0 - 2 * a1)
    xi = 2 - a0 / (a0 - 2 * a1)
    return (round(u, 6), float(m / len(imp)), float(sigma), float(xi))


def far_points(impostor: np.ndarray) -> list[tuple[float, float]]:
    """(threshold, FAR measured at ``score >= threshold``) for each FAR in POINT_FARS the impostors resolve (at
    least TOP_IMPOSTORS pairs above it),
    so the FAR of a threshold other than the calibrated one can be told later."""
    from .thresholds import POINT_FARS

    out = []
    for f in POINT_FARS:
        if len(impostor) * f < TOP_IMPOSTORS:  # fewer pairs above it than top_impostor needs: not resolved
            continue
        t = float(min(np.nextafter(threshold_at_far(impostor, f), np.inf), 1.0))
        out.append((round(t, 6), float(np.mean(impostor >= t))))
    return out
