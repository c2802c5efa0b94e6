"""LiteRT backend: ``ai_edge_litert.interpreter``, else ``tflite_runtime.interpreter`` (older platforms;
tflite-runtime 2.14 needs numpy<2 and runs int8 models several times slower than LiteRT on x86).

Handles int8/uint8 model inputs and outputs through their scale and zero point."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import InputSpec
from ..errors import ModelError
from .base import Embedder


def interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        raise ModelError("no TFLite runtime: install ai-edge-litert (pip install 'edgeface[tflite]') or tflite-runtime") from None


def load_interpreter(path: str | Path, threads: int = 1):
    cls = interpreter_class()
    try:
        interp = cls(model_path=str(path), num_threads=max(1, int(threads)))
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a loadable TFLite model: {exc}") from exc
    return interp


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    if not scale:
        raise ModelError(f"quantized input {detail['name']} has no scale")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


class LiteRTEmbedder(Embedder):
    backend = "litert"

    def __init__(self, path: Path, spec: InputSpec, embedding_size: int, key: str = "tflite_fp32", fingerprint: str = "",
                 threads: int = 1) -> None:
        super().__init__(path, spec, embedding_size, key, fingerprint)
        self.interpreter = load_interpreter(path, threads)
        self.backend = type(self.interpreter).__module__.split(".")[0]
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self._batch = int(self._in["shape"][0])

    def _run(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            shape = list(self._in["shape"])
            if self._in.get("shape_signature") is not None and self._in["shape_signature"][0] == -1:
                shape[0] = len(x)
                self.interpreter.resize_tensor_input(self._in["index"], shape)
                self.interpreter.allocate_tensors()
                self._in = self.interpreter.get_input_details()[0]
                self._out = self.interpreter.get_output_details()[0]
                self._batch = len(x)
            elif self._batch == 1:
                return np.concatenate([self._run(x[i:i + 1]) for i in range(len(x))])
            else:
                raise ModelError(f"{self.path}: fixed batch {self._batch} cannot take {len(x)} crops")
        self.interpreter.set_tensor(self._in["index"], _quantize(x, self._in))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._out["index"]), self._out).copy()
