"""Write the bundle's ``edgeface.json`` for the model files already in the bundle directory.

One place decides file names, keys and metadata, so every export (trained or imported) yields the same shape of
bundle, and the result is re-read with the core loader (:meth:`edgeface.bundle.Bundle.load`) before anyone uses it.
"""

from __future__ import annotations

from pathlib import Path

from edgeface.bundle import AlignSpec, Bundle, BundleMeta, InputSpec, describe_model_file

#: bundle key -> (file name, format, precision)
FILES = {
    "onnx_fp32": ("model.onnx", "onnx", "fp32"),
    "onnx_int8": ("model.int8.onnx", "onnx", "int8"),
    "tflite_fp32": ("model.tflite", "tflite", "fp32"),
    "tflite_int8": ("model.int8.tflite", "tflite", "int8"),
}


def path_for(root: str | Path, key: str) -> Path:
    return Path(root) / FILES[key][0]


def write_bundle(root: str | Path, source: str, spec: InputSpec, embedding_size: int, notes: dict,
                 name: str = "edgeface", align: AlignSpec | None = None, files: dict | None = None,
                 licence: str | None = None, provenance: dict | None = None, scorer=None) -> Bundle:
    """Describe (sha256, size) every known model file present in ``root``, save ``edgeface.json``, reload it.
    ``align``, ``files`` (auxiliary files already in ``root``), ``licence`` and ``provenance`` are recorded as given."""
    root = Path(root)
    models = {key: describe_model_file(root, file, fmt, precision)
              for key, (file, fmt, precision) in FILES.items() if (root / file).is_file()}
    meta = BundleMeta(source=source, name=name, input=spec, embedding_size=int(embedding_size), models=models,
                      notes=notes, align=align, files=dict(files or {}), licence=licence,
                      provenance=dict(provenance or {}), scorer=scorer)
    Bundle(root, meta).save()
    return Bundle.load(root)
