"""Embedder runtimes: a batch of aligned crops -> L2-normalised float32 (N, D).

The L2 normalisation happens here, on the host, never inside the model graph (in-graph normalisation
breaks int8 conversion and quantization). Backends: onnxruntime (:mod:`.onnx`) and LiteRT / tflite-runtime
(:mod:`.litert`). OpenCV's dnn module is not used: it misreads onnxruntime's QDQ int8 graphs.
"""

from __future__ import annotations

from pathlib import Path

from ..bundle import Bundle
from ..errors import ModelError
from .base import Embedder


def open_embedder(
    source: str | Path | Bundle,
    model: str | None = None,
    threads: int = 1,
    providers: list[str] | None = None,
) -> Embedder:
    """Open the embedder ``model`` (a bundle key such as ``onnx_int8``; default: the bundle's preferred one)
    of a bundle directory or bare ``.onnx`` / ``.tflite`` file."""
    from ..alignment import Aligner
    from ..scorer import Scorer

    bundle = source if isinstance(source, Bundle) else Bundle.load(source)
    key = model or bundle.default_key()
    mf = bundle.model(key)
    path = bundle.path_of(key)
    if mf.format == "onnx":
        from .onnx import OnnxEmbedder

        emb = OnnxEmbedder(path, bundle.meta.input, bundle.meta.embedding_size, key=key, fingerprint=mf.sha256,
                           threads=threads, providers=providers)
    elif mf.format == "tflite":
        from .litert import LiteRTEmbedder

        emb = LiteRTEmbedder(path, bundle.meta.input, bundle.meta.embedding_size, key=key, fingerprint=mf.sha256,
                             threads=threads)
    else:
        raise ModelError(f"unsupported model format {mf.format!r}")
    emb.aligner = Aligner.for_bundle(bundle)
    emb.scorer = Scorer(bundle.meta.scorer) if bundle.meta.scorer is not None else None
    return emb


__all__ = ["Embedder", "open_embedder"]
