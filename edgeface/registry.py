"""A small model registry: name -> URL, size, sha256, licence.

Files are downloaded into a cache directory (``EDGEFACE_CACHE``, else ``~/.cache/edgeface``), verified against
their size and sha256 and refused on a mismatch. Offline machines pass an explicit local path (or set
``EDGEFACE_<NAME>`` to one), which is verified the same way when it is the registered file.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ChecksumError, ModelError
from .fileutil import file_mismatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    url: str
    size: int
    sha256: str
    licence: str
    what: str


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="yunet",
            filename="face_detection_yunet_2023mar.onnx",
            url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
            size=232_589,
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            licence="MIT",
            what="YuNet face detector: boxes, 5 landmarks, scores (OpenCV model zoo)",
        ),
        ModelSpec(
            name="sface",
            filename="face_recognition_sface_2021dec.onnx",
            url="https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/face_recognition_sface_2021dec.onnx",
            size=38_696_353,
            sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
            licence="Apache-2.0",
            what="SFace face embedder, 112x112 -> 128-d (OpenCV model zoo)",
        ),
    )
}


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEFACE_CACHE") or Path.home() / ".cache" / "edgeface")


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; registered: {', '.join(sorted(REGISTRY))}") from None


def verify(path: str | Path, spec: ModelSpec) -> Path:
    """Check size and sha256 of ``path`` against ``spec``; raise :class:`ChecksumError` on a mismatch."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{spec.name}: file not found: {path}")
    problem = file_mismatch(path, spec.size, spec.sha256)
    if problem:
        raise ChecksumError(f"{spec.name}: {path} {problem}: refusing it")
    return path


def download(name: str, url: str | None = None, dest_dir: str | Path | None = None, timeout: float = 60.0) -> Path:
    """Download a registered model into the cache (or ``dest_dir``), verify it, and return its path.

    The file is written to a temp name and only renamed into place after the checksum matched, so a failed
    or tampered download never leaves a file that looks valid."""
    spec = get_spec(name)
    dest_dir = Path(dest_dir) if dest_dir else cache_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / spec.filename
    url = url or spec.url
    log.info("downloading %s from %s", spec.name, url)
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.filename}.", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, length=1 << 20)
        verify(tmp, spec)
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"{spec.name}: download from {url} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def resolve_model(name: str, local_path: str | Path | None = None, allow_download: bool = True) -> Path:
    """Where the model ``name`` is: an explicit path (used as given), ``EDGEFACE_<NAME>``, the verified cache,
    or a verified download."""
    if local_path is not None:
        path = Path(local_path)
        if not path.is_file():
            raise ModelError(f"{name}: file not found: {path}")
        return path
    env = os.environ.get(f"EDGEFACE_{name.upper()}")
    if env:
        return resolve_model(name, env)
    spec = get_spec(name)
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return verify(cached, spec)
    if not allow_download:
        raise ModelError(
            f"{name}: not in the cache ({cached}); download it from {spec.url} "
            f"or pass a local path (or set EDGEFACE_{name.upper()})"
        )
    return download(name)
