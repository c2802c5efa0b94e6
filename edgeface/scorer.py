"""How two embeddings become one score: cosine similarity, or a pair-trained model's own logistic unit.

A model trained with the pairwise loss (``edgeface train --loss pair``) learns a logistic unit on the pair
features of two L2-normalised embeddings, ``sigmoid(w . phi(a, b) + b)`` with ``phi`` = ``|a - b|`` ("abs") or
``(a - b)^2 / (|a| + |b|)`` ("chi2"). The bundle may carry that unit as its scorer (``edgeface.json``
``scorer``); evaluation, calibration, matching and the gate then score with it and its thresholds are
probabilities in [0, 1]. Without one, scores are cosine similarities in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from .bundle import ScorerSpec

#: rows of ``a`` per block when the logistic unit scores a matrix (bounds memory at block x len(b) x D floats)
BLOCK = 64


class Scorer:
    def __init__(self, spec: ScorerSpec | None = None) -> None:
        self.spec = spec or ScorerSpec()
        self.kind = self.spec.kind
        if self.kind == "logistic":
            self.w = np.asarray(self.spec.weight, np.float32)
            self.b = np.float32(self.spec.bias)

    @property
    def bounds(self) -> tuple[float, float]:
        """The range a score (and so a threshold) can take."""
        return (-1.0, 1.0) if self.kind == "cosine" else (0.0, 1.0)

    def matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n, m) scores of every row of ``a`` against every row of ``b`` (both L2-normalised)."""
        a = np.asarray(a, np.float32)
        b = np.asarray(b, np.float32)
        if self.kind == "cosine":
            return a @ b.T
        out = np.empty((len(a), len(b)), np.float32)
        for i in range(0, len(a), BLOCK):
            out[i:i + BLOCK] = self._logistic(a[i:i + BLOCK, None, :], b[None, :, :])
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n,) scores of ``a[i]`` against ``b[i]``."""
        a = np.asarray(a, np.float32)
        b = np.asarray(b, np.float32)
        if self.kind == "cosine":
            return np.einsum("nd,nd->n", a, b)
        return self._logistic(a, b)

    def _logistic(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        if self.spec.form == "abs":
            phi = np.abs(d)
        else:
            phi = d * d / (np.abs(a) + np.abs(b) + 1e-6)
        z = phi @ self.w + self.b
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


COSINE = Scorer()


def scorer_of(obj) -> Scorer:
    """The scorer an embedder (or bundle) carries; cosine when it has none."""
    s = getattr(obj, "scorer", None)
    return s if isinstance(s, Scorer) else COSINE


def similarity(a: np.ndarray, b: np.ndarray, scorer: Scorer | None = None) -> np.ndarray:
    return (scorer or COSINE).matrix(a, b)
