"""The embedder interface shared by every runtime backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..bundle import InputSpec
from ..errors import ModelError
from ..preprocess import l2_normalize, to_model_input


class Embedder(ABC):
    """Aligned BGR uint8 crops (N, H, W, 3) -> L2-normalised float32 embeddings (N, D)."""

    backend: str = "?"

    def __init__(self, path: Path, spec: InputSpec, embedding_size: int, key: str, fingerprint: str) -> None:
        self.path = Path(path)
        self.spec = spec
        self.embedding_size = int(embedding_size)
        self.key = key
        #: sha256 of the model file: galleries record it and refuse a different embedder
        self.fingerprint = fingerprint
        #: the alignment the model was made for (:class:`edgeface.alignment.Aligner`); set by ``open_embedder``
        self.aligner = None
        #: the bundle's pair scorer (:class:`edgeface.scorer.Scorer`); None: cosine
        self.scorer = None

    def embed(self, crops_bgr: np.ndarray, mirror: bool = False) -> np.ndarray:
        """L2-normalised embeddings; with ``mirror``, the normalised mean of each crop's and its mirror image's
        normalised embeddings (measured: better one-shot accuracy, at twice the cost)."""
        if mirror:
            crops = np.asarray(crops_bgr)
            if crops.ndim == 3:
                crops = crops[None]
            both = self.embed(np.concatenate([crops, crops[:, :, ::-1]]))
            return l2_normalize(both[:len(crops)] + both[len(crops):])
        x = to_model_input(crops_bgr, self.spec)
        if len(x) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        raw = np.asarray(self._run(x), np.float32).reshape(len(x), -1)
        if raw.shape[1] != self.embedding_size:
            raise ModelError(f"{self.path}: model gave {raw.shape[1]}-d embeddings, the bundle says {self.embedding_size}")
        if not np.all(np.isfinite(raw)):
            raise ModelError(f"{self.path}: model produced NaN or infinite embeddings")
        return l2_normalize(raw)

    def embed_raw(self, crops_bgr: np.ndarray) -> np.ndarray:
        """Unnormalised model outputs (for parity reports)."""
        return np.asarray(self._run(to_model_input(crops_bgr, self.spec)), np.float32)

    def warm_up(self) -> None:
        """One inference on a blank crop, so the first real face is not slowed by lazy initialisation."""
        h, w = self.spec.size
        self.embed(np.zeros((1, h, w, 3), np.uint8))

    @abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray:
        """Model input (already preprocessed) -> raw output (N, D)."""
