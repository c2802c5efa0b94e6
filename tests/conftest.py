"""Shared fixtures: where the real faces and models are, skipping with a clear reason where absent.

Data and models are read from ``EDGEFACE_SHARED`` (default: ``../shared`` next to the checkout); they are
never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = Path(os.environ.get("EDGEFACE_DATA", SHARED / "data" / "faces"))
YUNET = Path(os.environ.get("EDGEFACE_YUNET", SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"))
REFERENCE_ONNX = Path(os.environ.get("EDGEFACE_REFERENCE_ONNX", SHARED / "models" / "reference" / "mobilefacenet_128d.onnx"))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (set EDGEFACE_SHARED or EDGEFACE_DATA to the shared folder)")
    return path


@pytest.fixture(scope="session")
def orl_dir() -> Path:
    return _need(FACES / "orl", "ORL faces")


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    return _need(FACES / "celeba-loose", "celeba-loose faces")


@pytest.fixture(scope="session")
def yunet_path() -> Path:
    return _need(YUNET, "the YuNet detector model")


@pytest.fixture(scope="session")
def reference_onnx() -> Path:
    return _need(REFERENCE_ONNX, "the reference MobileFaceNet ONNX")


@pytest.fixture(scope="session")
def detector(yunet_path):
    from edgeface.detect import create_detector

    return create_detector("yunet", yunet_path)
