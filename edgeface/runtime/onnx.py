"""onnxruntime backend. Thread count and execution providers are configurable (Jetson: CUDA / TensorRT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import InputSpec
from ..errors import ModelError
from .base import Embedder


class OnnxEmbedder(Embedder):
    backend = "onnxruntime"

    def __init__(self, path: Path, spec: InputSpec, embedding_size: int, key: str = "onnx_fp32", fingerprint: str = "",
                 threads: int = 1, providers: list[str] | None = None) -> None:
        super().__init__(path, spec, embedding_size, key, fingerprint)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ModelError(f"onnxruntime execution providers {missing} are not available here (have {available})")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime's own exception classes
            raise ModelError(f"{path}: onnxruntime cannot load it: {exc}") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        batch = inp.shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch is None or self.fixed_batch == len(x):
            return self.session.run(None, {self.input_name: x})[0]
        if self.fixed_batch != 1:
            raise ModelError(f"{self.path}: fixed batch {self.fixed_batch} cannot take {len(x)} crops")
        return np.concatenate([self.session.run(None, {self.input_name: x[i:i + 1]})[0] for i in range(len(x))])
