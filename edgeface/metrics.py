"""Accuracy measures on L2-normalised embeddings: verification (TAR at FAR, EER, ROC) and one-shot open-set
identification (rank-1, FNIR at FPIR). Scores are cosine similarities; higher means more alike.

Conventions: a pair is accepted when its score is strictly above the threshold. The threshold for a target FAR
is the smallest one at which at most ``far`` of the impostor scores are accepted, so a reported TAR at FAR 1e-4
needs at least 10,000 impostor pairs to mean anything; :func:`tar_at_far` reports how many it had.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FARS = (1e-2, 1e-3, 1e-4)
FPIRS = (1e-2, 1e-3)


from .scorer import similarity

def far_key(far: float) -> str:
    """1e-3 -> "1e-3" (the JSON key used in reports)."""
    mantissa, exp = f"{far:.0e}".split("e")
    return f"{mantissa}e{int(exp)}"


def pair_scores(emb: np.ndarray, labels: np.ndarray, max_impostors: int | None = 2_000_000,
                seed: int = 0, scorer=None) -> tuple[np.ndarray, np.ndarray]:
    """All genuine pair scores and the impostor pair scores of a labelled set (i < j).

    All impostor pairs are used when there are at most ``max_impostors`` of them; otherwise a uniform random
    sample of that many (seeded), which is documented in the report as ``impostor_pairs``."""
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels)
    sim = similarity(emb, emb, scorer)
    iu, ju = np.triu_indices(len(emb), k=1)
    same = labels[iu] == labels[ju]
    genuine = sim[iu[same], ju[same]]
    imp_i, imp_j = iu[~same], ju[~same]
    if max_impostors is not None and len(imp_i) > max_impostors:
        pick = np.random.default_rng(seed).choice(len(imp_i), size=max_impostors, replace=False)
        imp_i, imp_j = imp_i[pick], imp_j[pick]
    return genuine.astype(np.float64), sim[imp_i, imp_j].astype(np.float64)


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold t with mean(impostor > t) <= far."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    if len(imp) == 0:
        raise ValueError("no impostor scores")
    k = int(np.floor(far * len(imp)))  # at most k impostors may lie above t
    return float(imp[min(k, len(imp) - 1)])


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, fars=FARS) -> dict[str, float | None]:
    """TAR at each FAR; None where there are too few impostor pairs to resolve that FAR."""
    out: dict[str, float | None] = {}
    for far in fars:
        if len(impostor) * far < 1:
            out[far_key(far)] = None
            continue
        t = threshold_at_far(impostor, far)
        out[far_key(far)] = float(np.mean(np.asarray(genuine) > t))
    return out


def roc(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds), thresholds descending."""
    g = np.sort(np.asarray(genuine, np.float64))
    i = np.sort(np.asarray(impostor, np.float64))
    thr = np.unique(np.concatenate([g, i]))[::-1]
    tar = 1.0 - np.searchsorted(g, thr, side="right") / max(len(g), 1)
    far = 1.0 - np.searchsorted(i, thr, side="right") / max(len(i), 1)
    return far, tar, thr


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where FAR and FRR cross."""
    far, tar, thr = roc(genuine, impostor)
    frr = 1.0 - tar
    idx = int(np.argmin(np.abs(far - frr)))
    return float((far[idx] + frr[idx]) / 2.0), float(thr[idx])


@dataclass
class VerificationResult:
    tar_at_far: dict[str, float | None]
    eer: float
    eer_threshold: float
    genuine_pairs: int
    impostor_pairs: int

    def to_json(self) -> dict:
        return {"tar_at_far": self.tar_at_far, "eer": self.eer, "eer_threshold": self.eer_threshold,
                "genuine_pairs": self.genuine_pairs, "impostor_pairs": self.impostor_pairs}


def verification(emb: np.ndarray, labels: np.ndarray, fars=FARS, max_impostors: int | None = 2_000_000,
                 seed: int = 0, scorer=None) -> tuple[VerificationResult, np.ndarray, np.ndarray]:
    genuine, impostor = pair_scores(emb, labels, max_impostors, seed, scorer)
    e, t = eer(genuine, impostor)
    return VerificationResult(tar_at_far(genuine, impostor, fars), e, t, len(genuine), len(impostor)), genuine, impostor


@dataclass
class OpenSetResult:
    rank1: float
    fnir_at_fpir: dict[str, float | None]
    enrolled: int
    mated_probes: int
    non_mated_probes: int
    failures: int

    def to_json(self) -> dict:
        return {"rank1": self.rank1, "fnir_at_fpir": self.fnir_at_fpir, "enrolled": self.enrolled,
                "mated_probes": self.mated_probes, "non_mated_probes": self.non_mated_probes,
                "failures_to_acquire": self.failures}


def one_shot_split(labels: np.ndarray, enrolled_fraction: float = 0.5, seed: int = 0):
    """Pick enrolled identities (with at least 2 images) and one enrollment image each.

    Returns (gallery_idx, mated_probe_idx, non_mated_probe_idx)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    ids = np.unique(labels)
    counts = {i: int(np.sum(labels == i)) for i in ids}
    candidates = np.array([i for i in ids if counts[i] >= 2])
    n_enrol = max(1, int(round(len(ids) * enrolled_fraction)))
    enrolled = set(rng.permutation(candidates)[:min(n_enrol, len(candidates))].tolist())
    gallery, mated, non_mated = [], [], []
    for i in ids:
        idx = np.flatnonzero(labels == i)
        if i in enrolled:
            g = int(rng.choice(idx))
            gallery.append(g)
            mated.extend(int(j) for j in idx if j != g)
        else:
            non_mated.extend(int(j) for j in idx)
    return np.array(gallery, int), np.array(mated, int), np.array(non_mated, int)


def open_set(emb: np.ndarray, labels: np.ndarray, gallery_idx, mated_idx, non_mated_idx,
             fpirs=FPIRS, mated_failures: int = 0, non_mated_failures: int = 0, scorer=None) -> OpenSetResult:
    """One-shot open-set identification.

    ``mated_failures`` counts probes of enrolled people that never produced an embedding (no face found):
    they count as misses (FNIR) and rank-1 failures. ``non_mated_failures`` (strangers with no face) cannot
    cause a false alarm and only appear in the counts."""
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels)
    g_emb, g_lab = emb[gallery_idx], labels[gallery_idx]
    def top(idx):
        if len(idx) == 0:
            return np.zeros(0), np.zeros(0, labels.dtype)
        s = similarity(emb[idx], g_emb, scorer)
        best = np.argmax(s, axis=1)
        return s[np.arange(len(idx)), best], g_lab[best]
    m_score, m_lab = top(mated_idx)
    n_score, _ = top(non_mated_idx)
    m_correct = m_lab == labels[mated_idx]
    n_mated = len(mated_idx) + mated_failures
    rank1 = float(np.sum(m_correct) / n_mated) if n_mated else 0.0
    fnir: dict[str, float | None] = {}
    for fpir in fpirs:
        if len(n_score) * fpir < 1:
            fnir[far_key(fpir)] = None
            continue
        t = threshold_at_far(n_score, fpir)
        hits = np.sum(m_correct & (m_score > t))
        fnir[far_key(fpir)] = float(1.0 - hits / n_mated) if n_mated else None
    return OpenSetResult(rank1, fnir, len(gallery_idx), n_mated, len(non_mated_idx) + non_mated_failures,
                         mated_failures + non_mated_failures)
