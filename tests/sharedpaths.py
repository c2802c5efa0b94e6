"""Where the real faces and models are, for the tests and the benchmarks alike: ``EDGEFACE_SHARED`` (default:
``../shared`` next to the checkout), ``EDGEFACE_DATA`` (the folder-per-identity face sets), ``EDGEFACE_YUNET``
and ``EDGEFACE_REFERENCE_ONNX``. Nothing here checks that they exist: callers skip or stop with the reason."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = Path(os.environ.get("EDGEFACE_DATA", SHARED / "data" / "faces"))
YUNET = Path(os.environ.get("EDGEFACE_YUNET", SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"))
REFERENCE_ONNX = Path(os.environ.get("EDGEFACE_REFERENCE_ONNX", SHARED / "models" / "reference" / "mobilefacenet_128d.onnx"))
