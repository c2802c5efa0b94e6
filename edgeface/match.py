"""1:N matching of live embeddings against the gallery: vectorised cosine over one pre-stacked matrix.

A person's score is the best cosine over their embeddings (several enrollment photos widen what matches them).
The margin is the best person's score minus the second-best *person's* score, so a second photo of the same
person never shrinks it. With a single enrolled person there is no competitor and the margin is
:data:`SOLE_PERSON_MARGIN` (1.0: a finite value, JSON-safe, above any sensible ``min_margin``).

The matrix is stacked once when the :class:`Matcher` is built: it is a snapshot, so a gallery reloaded on the
device gets a new Matcher (swap the reference; the old one keeps working meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gallery import Gallery, GalleryEmbeddingSizeError

#: the margin reported when only one person is enrolled
SOLE_PERSON_MARGIN = 1.0


@dataclass(frozen=True)
class Match:
    """The best enrolled person for one embedding. Accepting it is the policy's job (threshold, margin)."""

    person_id: str
    name: str
    score: float
    margin: float
    second_person_id: str | None = None
    second_score: float | None = None

    def to_json(self) -> dict:
        return {"person_id": self.person_id, "name": self.name, "score": round(self.score, 6),
                "margin": round(self.margin, 6), "second_person_id": self.second_person_id,
                "second_score": None if self.second_score is None else round(self.second_score, 6)}


class Matcher:
    """Cosine 1:N against a gallery: ``E @ M.T`` on a contiguous float32 matrix of unit vectors."""

    def __init__(self, gallery: Gallery) -> None:
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
        #: first row of each person in ``matrix`` (for the per-person max), or None when every person has one row
        self._starts = None if np.all(counts == 1) else np.concatenate([[0], np.cumsum(counts)[:-1]])

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
        """(N, P) best cosine of each query against each person."""
        s = self._queries(e) @ self.matrix.T
        if self._starts is not None and s.shape[1]:
            s = np.maximum.reduceat(s, self._starts, axis=1)
        return s

    def match_batch(self, e: np.ndarray) -> list[Match | None]:
        """The best person for each of N embeddings (N, D); None for each when nobody is enrolled."""
        s = self.person_scores(e)
        if not self.ids:
            return [None] * len(s)
        rows = np.arange(len(s))
        best = np.argmax(s, axis=1)
        best_score = s[rows, best]
        if s.shape[1] == 1:
            return [Match(self.ids[0], self.names[0], float(v), SOLE_PERSON_MARGIN) for v in best_score]
        s[rows, best] = -np.inf
        second = np.argmax(s, axis=1)
        second_score = s[rows, second]
        return [Match(self.ids[b], self.names[b], float(v), float(v - w), self.ids[c], float(w))
                for b, v, c, w in zip(best.tolist(), best_score.tolist(), second.tolist(), second_score.tolist())]

    def match(self, embedding: np.ndarray) -> Match | None:
        """The best person for one embedding (D,), or None when nobody is enrolled."""
        e = np.asarray(embedding, dtype=np.float32)
        if e.ndim != 1:
            raise GalleryEmbeddingSizeError(f"match() takes one (D,) embedding, got shape {e.shape}; use match_batch")
        found = self.match_batch(e[None, :])
        return found[0] if found else None
