"""The enrollment photo folder: who is in it (normalised names), what is skipped, and strict decoding.

``DIR/Name.jpg`` (one photo) or ``DIR/Name/*.jpg`` (several). Names are normalised (Unicode NFC, runs of
whitespace to one space, stripped), so ``Ada .png`` is ``Ada``. Two sources for one name (``Ada.png`` and the
folder ``Ada/``, or ``Ada.png`` and ``Ada .png``) are an error: which photos are whose must never be guessed.
Hidden files, unsupported types (.tiff, .heic, .txt, ...) and folders inside a person's folder are listed as
skipped, never silently ignored.

:func:`read_photo_strict` decodes with Pillow with truncated images disallowed (and a JPEG must end with its
EOI marker), then with OpenCV: a truncated or damaged file is :class:`CorruptImageError`
("corrupt or truncated image: FILE"), not a half-grey picture that enrolls or "has no face".
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import EdgefaceError
from .faceset import IMAGE_SUFFIXES, Photo


class CorruptImageError(EdgefaceError):
    """A photo file is truncated or damaged."""


class EnrollNameError(EdgefaceError):
    """Photos in the folder do not say unambiguously whose they are."""


def normalise_name(name: str) -> str:
    """NFC, whitespace runs collapsed to one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", str(name)).split())


@dataclass
class EnrollFolder:
    """``people``: normalised name -> photo paths (sorted); ``skipped``: (path, why) for everything else."""

    people: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def photos(self) -> list[Photo]:
        return [Photo(name, p) for name, paths in self.people.items() for p in paths]


def _skip_reason(path: Path) -> str | None:
    if path.name.startswith("."):
        return "hidden file"
    if path.is_dir():
        return "folder inside a person's folder"
    if not path.is_file():
        return "not a regular file"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"unsupported file type {path.suffix or '(none)'} (supported: {', '.join(sorted(IMAGE_SUFFIXES))})"
    return None


def scan_enroll_folder(root: str | Path) -> EnrollFolder:
    root = Path(root)
    if not root.is_dir():
        raise EnrollNameError(f"not a folder of photos: {root}")
    out = EnrollFolder()
    sources: dict[str, list[str]] = {}
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            name, label = normalise_name(entry.name), f"folder {entry.name}/"
            files = []
            for f in sorted(entry.iterdir()):
                why = _skip_reason(f)
                if why:
                    out.skipped.append((f, why))
                else:
                    files.append(f)
            if not files:
                out.skipped.append((entry, "folder without photos"))
                continue
        else:
            why = "hidden folder" if entry.is_dir() else _skip_reason(entry)
            if why:
                out.skipped.append((entry, why))
                continue
            name, label, files = normalise_name(entry.stem), f"file {entry.name}", [entry]
        if not name:
            out.skipped.append((entry, "no name (the file or folder name is blank)"))
            continue
        sources.setdefault(name, []).append(label)
        out.people.setdefault(name, []).extend(files)
    clashes = {n: s for n, s in sources.items() if len(s) > 1}
    if clashes:
        lines = [f"{n!r}: {', '.join(s)}" for n, s in sorted(clashes.items())]
        raise EnrollNameError(f"{root}: several files or folders give the same name (after whitespace is "
                              "normalised), so whose photos they are is ambiguous:\n  " + "\n  ".join(lines) +
                              "\nput all photos of one person in one folder Name/, and nothing else under that name")
    return out


def read_photo_strict(path: str | Path) -> np.ndarray:
    """BGR uint8, or :class:`CorruptImageError` when the file is truncated, damaged or not an image."""
    from PIL import Image, ImageFile

    path = Path(path)
    bad = f"corrupt or truncated image: {path}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptImageError(f"cannot read image {path}: {exc.strerror}") from None
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise CorruptImageError(f"{bad} (the JPEG has no end-of-image marker)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()  # structure and, for PNG, chunk CRCs
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # the whole pixel stream: a truncated or broken one raises
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        raise CorruptImageError(f"{bad} ({exc})") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise CorruptImageError(bad)
    return image
