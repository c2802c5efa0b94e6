"""A small model registry: name -> URL, size, sha256, licence.

Files are downloaded into a cache directory (``EDGEFACE_CACHE``, else ``~/.cache/edgeface``), verified against
their size and sha256 and refused on a mismatch. Offline machines pass an explicit local path (or set
``EDGEFACE_<NAME>`` to one), which is verified the same way when it is the registered file.

dlib's public-domain models (``dlib-resnet-v1``, ``dlib-shape5``) have one more source, the installed PyPI package
``face_recognition_models`` (found with ``importlib.util.find_spec``, never imported: it imports pkg_resources), and
are downloaded from dlib.net as ``.bz2`` files: see :func:`resolve_dlib_model`. dlib's 68-point landmark model is
refused everywhere (:func:`refuse_forbidden`): its training data forbids commercial use.
"""

from __future__ import annotations

import bz2
import importlib.util
import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ChecksumError, ModelError
from .fileutil import file_mismatch, sha256_file

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


DLIB_LICENCE = "public domain (dlib-models README: anyone can do whatever they want with these model files)"

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
        ModelSpec(
            name="dlib-resnet-v1",
            filename="dlib_face_recognition_resnet_model_v1.dat",
            url="http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2",
            size=22_466_066,
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            licence=DLIB_LICENCE,
            what="dlib's face-recognition ResNet, 150x150 chip -> 128-d (read by edgeface.export.dlib)",
        ),
        ModelSpec(
            name="dlib-shape5",
            filename="shape_predictor_5_face_landmarks.dat",
            url="http://dlib.net/files/shape_predictor_5_face_landmarks.dat.bz2",
            size=9_150_489,
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            licence=DLIB_LICENCE,
            what="dlib's 5-point face landmark model (eye corners, base of the nose)",
        ),
    )
}

#: registered models that the PyPI package face_recognition_models ships in its ``models/`` folder
DLIB_PACKAGE = "face_recognition_models"
DLIB_MODELS = ("dlib-resnet-v1", "dlib-shape5")

#: files refused wherever a model file is taken: sha256 -> (file name, why)
FORBIDDEN = {
    "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f": (
        "shape_predictor_68_face_landmarks.dat",
        "dlib's 68-point landmark model is refused: its training data (iBUG 300-W) forbids commercial use; "
        "use dlib-shape5 (shape_predictor_5_face_landmarks.dat, public domain)",
    ),
}
_FORBIDDEN_SIZES = {99_693_937}
_FORBIDDEN_NAMES = {name: why for name, why in FORBIDDEN.values()}


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEFACE_CACHE") or Path.home() / ".cache" / "edgeface")


def refuse_forbidden(path: str | Path) -> None:
    """Raise :class:`ModelError` when ``path`` is a refused file (by its name, or by size and sha256)."""
    path = Path(path)
    why = _FORBIDDEN_NAMES.get(path.name)
    if why is None and path.is_file() and path.stat().st_size in _FORBIDDEN_SIZES:
        why = FORBIDDEN.get(sha256_file(path), (None, None))[1]
    if why:
        raise ModelError(f"{path}: {why}")


def get_spec(name: str) -> ModelSpec:
    if name.removesuffix(".dat") in ("dlib-shape68", "shape_predictor_68_face_landmarks"):
        raise ModelError(_FORBIDDEN_NAMES["shape_predictor_68_face_landmarks.dat"])
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
    or tampered download never leaves a file that looks valid. A ``.bz2`` URL is decompressed on the way."""
    spec = get_spec(name)
    dest_dir = Path(dest_dir) if dest_dir else cache_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / spec.filename
    url = url or spec.url
    log.info("downloading %s from %s", spec.name, url)
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.filename}.", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            if url.endswith(".bz2"):
                _copy_bunzip2(resp, out)
            else:
                shutil.copyfileobj(resp, out, length=1 << 20)
        verify(tmp, spec)
        os.replace(tmp, target)
    except (OSError, EOFError) as exc:  # bz2 raises OSError on bad data, EOFError on a cut stream
        raise ModelError(f"{spec.name}: download from {url} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _copy_bunzip2(src, out, chunk: int = 1 << 20) -> None:
    d = bz2.BZ2Decompressor()
    for block in iter(lambda: src.read(chunk), b""):
        out.write(d.decompress(block))
    if not d.eof:
        raise EOFError("the .bz2 stream ended early (truncated download)")


def resolve_model(name: str, local_path: str | Path | None = None, allow_download: bool = True) -> Path:
    """Where the model ``name`` is: an explicit path (used as given), ``EDGEFACE_<NAME>``, the verified cache,
    or a verified download."""
    if local_path is not None:
        path = Path(local_path)
        if not path.is_file():
            raise ModelError(f"{name}: file not found: {path}")
        refuse_forbidden(path)
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


def _env_name(name: str) -> str:
    return "EDGEFACE_" + name.upper().replace("-", "_")


def dlib_package_models_dir() -> Path | None:
    """The ``models/`` folder of the installed face_recognition_models package (found, never imported)."""
    try:
        found = importlib.util.find_spec(DLIB_PACKAGE)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / "models"


def resolve_dlib_model(name: str, local_path: str | Path | None = None, allow_download: bool = True) -> Path:
    """Where dlib's model ``name`` (``dlib-resnet-v1`` or ``dlib-shape5``) is, always verified by size and sha256:
    an explicit path (or ``EDGEFACE_DLIB_RESNET_V1`` / ``EDGEFACE_DLIB_SHAPE5``), else the installed
    ``face_recognition_models`` package, the cache, or a download of dlib.net's ``.bz2`` (decompressed and verified
    before it is renamed into the cache). The 68-point model is refused by name and by sha256."""
    spec = get_spec(name)
    if name not in DLIB_MODELS:
        raise ModelError(f"{name} is not one of dlib's models ({', '.join(DLIB_MODELS)})")
    local_path = local_path if local_path is not None else os.environ.get(_env_name(name)) or None
    if local_path is not None:
        path = Path(local_path)
        refuse_forbidden(path)
        return verify(path, spec)
    package = dlib_package_models_dir()
    if package is not None and (package / spec.filename).is_file():
        return verify(package / spec.filename, spec)
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return verify(cached, spec)
    if not allow_download:
        raise ModelError(
            f"{name}: {spec.filename} not found: pip install {DLIB_PACKAGE} (scripts/setup.sh does), download "
            f"{spec.url} (bunzip2 it), or pass a local path (or set {_env_name(name)})"
        )
    return download(name)
