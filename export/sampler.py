"""PxK batches: P identities, K images of each, so every batch holds positives and negatives for online mining.

An epoch visits every identity about ``len(labels) / (P * K) * P`` times in random order; identities with fewer
than K images are sampled with replacement. Seeded by a numpy Generator, so a run is reproducible and resumable
(the generator state goes into the checkpoint).
"""

from __future__ import annotations

import numpy as np


class PKSampler:
    def __init__(self, labels, p: int = 8, k: int = 4, seed: int = 0) -> None:
        labels = np.asarray(labels)
        self.ids, inverse = np.unique(labels, return_inverse=True)
        if len(self.ids) < 2:
            raise ValueError(f"PxK batches need at least 2 identities, got {len(self.ids)}")
        self.p = min(int(p), len(self.ids))
        self.k = int(k)
        self.by_id = [np.flatnonzero(inverse == i) for i in range(len(self.ids))]
        self.rng = np.random.default_rng(seed)
        self.batches_per_epoch = max(1, len(labels) // (self.p * self.k))

    def batch(self) -> np.ndarray:
        """Indices of one batch (P*K), grouped by identity."""
        chosen = self.rng.choice(len(self.ids), size=self.p, replace=False)
        out = []
        for c in chosen:
            pool = self.by_id[c]
            out.append(self.rng.choice(pool, size=self.k, replace=len(pool) < self.k))
        return np.concatenate(out)

    def epoch(self):
        for _ in range(self.batches_per_epoch):
            yield self.batch()

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
