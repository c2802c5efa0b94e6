"""Shared fixtures: where the real faces and models are, skipping with a clear reason where absent.

Data and models are read from ``EDGEFACE_SHARED`` (default: ``../shared`` next to the checkout); they are
never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sharedpaths import FACES, REFERENCE_ONNX, YUNET  # the one place the shared folder's paths are resolved


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


@pytest.fixture(scope="session")
def dlib_bundle(tmp_path_factory, orl_dir, celeba_dir, yunet_path):
    """The default door model as the Quickstart makes it (export --pretrained dlib-resnet-v1 --int8, onnx_int8),
    calibrated at FAR 1e-3 on the last 40 celeba-loose identities (no test enrolls them); once per session."""
    from dlibkit import door_bundle

    root = tmp_path_factory.mktemp("dlib_door")
    cal = root / "calibration"
    cal.mkdir()
    for ident in sorted(p.name for p in celeba_dir.iterdir() if p.is_dir())[-40:]:
        (cal / ident).symlink_to(celeba_dir / ident)
    return door_bundle(root, orl_dir, yunet_path, cal)
