"""Which optional extra of edgeface provides which import, and the one-line message when one is missing.

A door installed with ``pip install 'edgeface[device]'`` has no torch, no Starlette and no cryptography; a
command that needs them says which extra to install (:class:`MissingExtraError`, an ordinary user error printed
in one line by :func:`edgeface.cli.main`), never a ``ModuleNotFoundError`` traceback. The table follows
``[project.optional-dependencies]`` in pyproject.toml.
"""

from __future__ import annotations

import importlib.util

from . import __version__
from .errors import EdgefaceError

#: extra -> the top-level modules it installs (import names, not distribution names)
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "onnx", "onnxscript", "litert_torch", "matplotlib"),
    "admin": ("starlette", "uvicorn", "jinja2", "python_multipart", "argon2"),
    "fleet": ("paho", "cryptography"),
    "tflite": ("ai_edge_litert",),
    "device": ("gpiozero",),
    "dlib-models": ("face_recognition_models",),
}
#: edgeface's own dependencies (``pip install edgeface`` brings them)
CORE = ("numpy", "cv2", "onnxruntime", "pydantic", "tqdm", "PIL", "simplejpeg")

#: edgeface is not on a package index: the same extra, from the wheel or the checkout it was installed from
INSTALL_HINT = "(a wheel: pip install './edgeface-{version}-py3-none-any.whl[{extra}]'; a checkout: pip install '.[{extra}]')"


class MissingExtraError(EdgefaceError):
    """A command needs an optional extra that is not installed."""

    def __init__(self, what: str, extra: str | None, modules: list[str]):
        self.extra, self.modules = extra, modules
        names = ", ".join(modules)
        if extra is None:
            text = (f"{what} needs {names}, one of edgeface's own dependencies, which is not installed: reinstall "
                    "edgeface (pip install edgeface)")
        else:
            text = (f"{what} needs the '{extra}' extra ({names} not installed): pip install 'edgeface[{extra}]' "
                    + INSTALL_HINT.format(extra=extra, version=__version__))
        super().__init__(text)


def extra_of(module: str) -> tuple[bool, str | None]:
    """(known, extra) for an import name: (True, None) for a core dependency, (False, None) for anything else."""
    top = module.split(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return True, extra
    return (True, None) if top in CORE else (False, None)


def missing(modules) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (found, never imported)."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            out.append(name)
    return out


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` is installed."""
    gone = missing(EXTRAS[extra])
    if gone:
        raise MissingExtraError(what, extra, gone)


def from_import_error(exc: ImportError, what: str) -> MissingExtraError | None:
    """The user error for an import that failed inside a command; None when the module is not an extra's or a
    dependency's (a bug, which keeps its traceback)."""
    name = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not name:
        return None
    known, extra = extra_of(name)
    return MissingExtraError(what, extra, [name.split(".")[0]]) if known else None
