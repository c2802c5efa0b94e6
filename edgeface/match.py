"""1:N matching of live embeddings against the gallery: vectorised cosine over one pre-stacked matrix.

A person's score is the best cosine over their embeddings (several enrollment photos widen what matches them).
The margin is the best person's score minus the second-best *person's* score, so a second photo of the same
person never shrinks it. With a single enrolled person there is no competitor and the margin is
:data:`SOLE_PERSON_MARGIN` (1.0: a finite value, JSON-safe, above any sensible ``min_margin``).

The matrix is stacked once when the :class:`Matcher` is built: it is a snapshot, so a gallery reloaded on the
device gets a new Matcher (swap the reference; the old one keeps working meanwhile). Large galleries are
pre-screened in int8 (:mod:`edgeface.int8_scores`) with answers proven equal to the float32 ones
(bench/match_speed.py measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gallery import Gallery, GalleryEmbeddingSizeError

#: the margin reported when only one person is enrolled
SOLE_PERSON_MARGIN = 1.0
#: galleries with at least this many embeddings use the int8 candidate stage (smaller ones fit in cache)
FAST_MIN_ROWS = 20_000
#: rows rescored in float32 after the int8 stage (plus the largest number of embeddings of one person)
CANDIDATES = 64


@dataclass(frozen=True)
class Match:
    """The best enrolled person for one embedding. Accepting it is the policy's job (threshold, margin)."""

    person_id: str
    name: str
    score: float
    margin: float
    second_person_id: str | None = None
    second_score: float | None = None
    second_name: str | None = None

    def to_json(self) -> dict:
        return {"person_id": self.person_id, "name": self.name, "score": round(self.score, 6),
                "margin": round(self.margin, 6), "second_person_id": self.second_person_id,
                "second_score": None if self.second_score is None else round(self.second_score, 6)}


class Matcher:
    """Cosine 1:N against a gallery: ``E @ M.T`` on a contiguous float32 matrix of unit vectors.

    Galleries of at least :data:`FAST_MIN_ROWS` embeddings are first scored in int8
    (:mod:`edgeface.int8_scores`, 4x less memory traffic); the :data:`CANDIDATES` best rows are then rescored in
    float32, and the answer is used only when the int8 error bound proves that no other row could change the
    best or second-best person. Otherwise that query falls back to the full float32 product (counted in
    ``fallbacks``), so results are always those of the exact computation.

    With a logistic ``scorer`` (:mod:`edgeface.scorer`, a pair-trained bundle's own unit) scores are its
    probabilities instead of cosines, computed exactly (the int8 stage bounds cosines only)."""

    def __init__(self, gallery: Gallery, fast: bool | None = None, scorer=None) -> None:
        from .scorer import COSINE

        self.scorer = scorer or COSINE
        self.embedding_size = gallery.embedding_size
        self.ids = [p.id for p in gallery.people]
        self.names = [p.name for p in gallery.people]
        counts = np.array([len(p.embeddings) for p in gallery.people], dtype=np.int64)
        if len(counts):
            m = np.concatenate([p.embeddings for p in gallery.people]).astype(np.float32)
            m /= np.linalg.norm(m, axis=1, keepdims=True)
        else:
            m = np.zeros((0, self.embedding_size), np.float32)
        self.matrix = np.ascontiguousarray(m)
        #: person index of each row of ``matrix``
        self.owner = np.repeat(np.arange(len(counts)), counts)
        #: first row of each person in ``matrix`` (for the per-person max), or None when every person has one row
        self._starts = None if np.all(counts == 1) else np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._k = CANDIDATES + (int(counts.max()) if len(counts) else 0)
        self._fast = None
        if self.scorer.kind == "cosine" and len(self.ids) >= 2 and len(m) > self._k and \
                (fast or (fast is None and len(m) >= FAST_MIN_ROWS)):
            try:
                from .int8_scores import Int8Scorer

                self._fast = Int8Scorer(self.matrix)
            except ImportError:  # no onnxruntime (a LiteRT-only device): the float32 product still answers
                self._fast = None
        #: queries the int8 stage could not prove and that were recomputed in full float32
        self.fallbacks = 0

    def __len__(self) -> int:
        return len(self.ids)

    def _queries(self, e: np.ndarray) -> np.ndarray:
        e = np.asarray(e, dtype=np.float32)
        if e.ndim != 2 or e.shape[1] != self.embedding_size:
            raise GalleryEmbeddingSizeError(
                f"query embeddings have shape {e.shape}, the gallery holds {self.embedding_size}-d ones")
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        return e / np.maximum(norms, 1e-12)

    def person_scores(self, e: np.ndarray) -> np.ndarray:
        """(N, P) best score of each query against each person (always the full float32 product)."""
        s = self.scorer.matrix(self._queries(e), self.matrix)
        if self._starts is not None and s.shape[1]:
            s = np.maximum.reduceat(s, self._starts, axis=1)
        return s

    def _top2_exact(self, q: np.ndarray):
        s = self.scorer.matrix(q, self.matrix)
        if self._starts is not None:
            s = np.maximum.reduceat(s, self._starts, axis=1)
        rows = np.arange(len(s))
        best = np.argmax(s, axis=1)
        best_score = s[rows, best].copy()
        if s.shape[1] == 1:
            return best, best_score, None, None
        s[rows, best] = -np.inf
        second = np.argmax(s, axis=1)
        return best, best_score, second, s[rows, second]

    def _top2_fast(self, q: np.ndarray):
        approx, bound = self._fast.scores(q)
        n = len(q)
        best, second = np.zeros(n, np.int64), np.zeros(n, np.int64)
        best_score, second_score = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for i in range(n):
            cand = np.argpartition(approx[i], -self._k)[-self._k:]
            exact = self.matrix[cand] @ q[i]
            order = np.argsort(-exact)
            owners = self.owner[cand[order]]
            b = owners[0]
            other = np.flatnonzero(owners != b)
            # rows outside the candidates score at most (their approx <= the lowest candidate's) + bound
            if len(other) and exact[order[other[0]]] > float(approx[i, cand].min()) + float(bound[i]):
                best[i], best_score[i] = b, exact[order[0]]
                second[i], second_score[i] = owners[other[0]], exact[order[other[0]]]
                continue
            self.fallbacks += 1
            bb, bs, ss, sv = self._top2_exact(q[i:i + 1])
            best[i], best_score[i], second[i], second_score[i] = bb[0], bs[0], ss[0], sv[0]
        return best, best_score, second, second_score

    def match_batch(self, e: np.ndarray) -> list[Match | None]:
        """The best person for each of N embeddings (N, D); None for each when nobody is enrolled."""
        q = self._queries(e)
        if not self.ids:
            return [None] * len(q)
        best, best_score, second, second_score = (self._top2_fast if self._fast is not None else self._top2_exact)(q)
        if second is None:
            return [Match(self.ids[0], self.names[0], float(v), SOLE_PERSON_MARGIN) for v in best_score]
        return [Match(self.ids[b], self.names[b], float(v), float(v - w), self.ids[c], float(w), self.names[c])
                for b, v, c, w in zip(best.tolist(), best_score.tolist(), second.tolist(), second_score.tolist())]

    def match(self, embedding: np.ndarray) -> Match | None:
        """The best person for one embedding (D,), or None when nobody is enrolled."""
        e = np.asarray(embedding, dtype=np.float32)
        if e.ndim != 1:
            raise GalleryEmbeddingSizeError(f"match() takes one (D,) embedding, got shape {e.shape}; use match_batch")
        return self.match_batch(e[None, :])[0]
