"""A training checkpoint as an :class:`edgeface.runtime.base.Embedder`, so ``edgeface eval`` measures a checkpoint
through the same preprocessing, normalisation and metrics as an exported ONNX / TFLite model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgeface.bundle import InputSpec
from edgeface.fileutil import sha256_file
from edgeface.runtime.base import Embedder

from .checkpoint import load_checkpoint


class TorchEmbedder(Embedder):
    backend = "torch"

    def __init__(self, path: str | Path, threads: int = 1, batch: int = 64) -> None:
        path = Path(path)
        model, info = load_checkpoint(path)
        spec = InputSpec.model_validate(info.get("input", {}))
        super().__init__(path, spec, info["model_config"]["embedding_size"], key="checkpoint",
                         fingerprint=sha256_file(path))
        torch.set_num_threads(max(1, int(threads)))
        self.model = model
        self.info = info
        self.batch = int(batch)
        if info.get("align"):
            from edgeface.alignment import Aligner
            from edgeface.bundle import AlignSpec

            align = AlignSpec.model_validate(info["align"])
            self.aligner = Aligner(align, path.parent / info["landmark_file"] if align.landmark_model else None)

    @torch.no_grad()
    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.model(torch.from_numpy(x[i:i + self.batch])).numpy()
                               for i in range(0, len(x), self.batch)])


def open_checkpoint_embedder(path: str | Path, threads: int = 1) -> TorchEmbedder:
    return TorchEmbedder(path, threads=threads)
