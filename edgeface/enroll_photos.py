"""The enrollment photo folder: who is in it (normalised names), what is skipped, and strict decoding.

``DIR/Name.jpg`` (one photo) or ``DIR/Name/*.jpg`` (several). Names are normalised (Unicode NFC, runs of
whitespace to one space, stripped: :mod:`edgeface.names`), so ``Ada .png`` is ``Ada``; a file or folder name
that is not a name (control characters, too long) is skipped and listed. Two sources for one name (``Ada.png`` and the
folder ``Ada/``, or ``Ada.png`` and ``Ada .png``) are an error: which photos are whose must never be guessed.
Hidden files, unsupported types (.tiff, .heic, .txt, ...) and folders inside a person's folder are listed as
skipped, never silently ignored.

:func:`read_photo_strict` decodes with Pillow with truncated images disallowed (and a JPEG must end with its
EOI marker), then with OpenCV: a truncated or damaged file is :class:`CorruptImageError`
("corrupt or truncated image: FILE"), not a half-grey picture that enrolls or "has no face".
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EdgefaceError
from .faceset import IMAGE_SUFFIXES, Photo
from .names import name_problem, normalise_name


class CorruptImageError(EdgefaceError):
    """A photo file is truncated or damaged."""


class UnsupportedImageError(CorruptImageError):
    """A file that is not an image, or an image of a format edgeface does not take (GIF, TIFF, HEIC...)."""


class EnrollNameError(EdgefaceError):
    """Photos in the folder do not say unambiguously whose they are."""


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
        problem = name_problem(name)
        if problem:
            out.skipped.append((entry, f"not a usable name: {problem}"))
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


#: the formats the one photo reader takes (Pillow's names): what IMAGE_SUFFIXES lists, whatever the file is called
PHOTO_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "BMP": "BMP", "WEBP": "WebP", "PPM": "PGM/PPM"}
#: photos are decoded to at most this many pixels: a larger JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's
#: own DCT scaling, so it never exists in memory at full size); any other larger image is refused before decoding
MAX_PIXELS = 24_000_000
#: and then fitted into this side (faces stay far larger than the 150 px the model's crop needs)
MAX_SIDE = 4096
#: EXIF orientation -> (rotations by 90 degrees counter-clockwise, then mirror left-right)
_ORIENT = {2: (0, True), 3: (2, False), 4: (2, True), 5: (3, True), 6: (3, False), 7: (1, True), 8: (1, False)}


def read_photo_strict(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """BGR uint8 from a file or its bytes (``name`` says which photo in messages), or :class:`CorruptImageError`.

    The one image reader of enrollment (CLI, admin page), calibration and evaluation. Refused: a format outside
    :data:`PHOTO_FORMATS` (GIF, TIFF, HEIC...); a truncated or damaged file, JPEGs included when the cut was
    papered over with a new end marker (libjpeg's "premature end of data segment", through simplejpeg's strict
    mode); more pixels than :data:`MAX_PIXELS` allows, read from the header before any pixel is decoded (a JPEG is
    decoded at 1/2, 1/4 or 1/8 scale instead when that is enough). EXIF orientation is applied."""
    from PIL import Image, ImageFile

    if isinstance(source, (bytes, bytearray, memoryview)):
        data, path = bytes(source), name or "the uploaded photo"
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorruptImageError(f"cannot read image {path}: {exc.strerror}") from None
    bad = f"corrupt or truncated image: {path}"
    if not data:
        raise CorruptImageError(f"{bad} (empty)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    accepted = ", ".join(PHOTO_FORMATS.values())
    try:
        try:
            im = Image.open(io.BytesIO(data))  # reads the header only
        except Image.UnidentifiedImageError:
            raise UnsupportedImageError(f"{path}: not an image (use {accepted})") from None
        except Image.DecompressionBombError:  # Pillow's own header check, for the most extreme sizes
            raise CorruptImageError(f"{path}: far more than the {MAX_PIXELS / 1e6:.0f} megapixels a photo may have "
                                    "(a decompression bomb?): use a smaller photo") from None
        with im:
            fmt, (w, h) = im.format, im.size
            if fmt not in PHOTO_FORMATS:
                raise UnsupportedImageError(f"{path}: {fmt or 'this'} images are not accepted (use {accepted})")
            orientation = int(im.getexif().get(0x0112, 1)) if fmt in ("JPEG", "PNG", "WEBP") else 1
            if w * h > MAX_PIXELS and (fmt != "JPEG" or w * h > 64 * MAX_PIXELS):
                raise CorruptImageError(f"{path}: {w} x {h} pixels is more than the {MAX_PIXELS / 1e6:.0f} megapixels "
                                        "a photo may have: use a smaller photo (a face needs far fewer)")
        if fmt != "JPEG":
            with Image.open(io.BytesIO(data)) as im:
                im.verify()  # structure and, for PNG, chunk CRCs
        if fmt == "JPEG":
            bgr = _decode_jpeg(data, w, h, bad)
        else:
            bgr = _decode_other(data)
    except CorruptImageError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise CorruptImageError(f"{bad} ({exc})") from None
    turns, mirror = _ORIENT.get(orientation, (0, False))
    if mirror:
        bgr = bgr[:, ::-1]
    if turns:
        bgr = np.rot90(bgr, turns)
    if max(bgr.shape[:2]) > MAX_SIDE:
        import cv2 as _cv2

        f = MAX_SIDE / max(bgr.shape[:2])
        bgr = _cv2.resize(np.ascontiguousarray(bgr), (max(1, round(bgr.shape[1] * f)), max(1, round(bgr.shape[0] * f))),
                          interpolation=_cv2.INTER_AREA)
    return np.ascontiguousarray(bgr)


def _decode_other(data: bytes) -> np.ndarray:
    """PNG, BMP, WebP, PGM/PPM as BGR: the whole pixel stream decoded (a truncated or broken one raises), fitted
    into :data:`MAX_SIDE` in the file's own mode (area average) before any colour copy is made, and each larger
    copy dropped as soon as the next exists: a 24-megapixel grey PNG of a few KB costs about 70 MB, not 250."""
    import cv2
    from PIL import Image

    to_bgr = {"L": cv2.COLOR_GRAY2BGR, "RGB": cv2.COLOR_RGB2BGR, "RGBA": cv2.COLOR_RGBA2BGR}
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        picture = im if im.mode in to_bgr else im.convert("RGB")
        if picture is not im:
            im.close()
        if max(picture.size) > MAX_SIDE:
            f = MAX_SIDE / max(picture.size)
            small = picture.resize((max(1, round(picture.width * f)), max(1, round(picture.height * f))),
                                   Image.Resampling.BOX)
            picture.close()
            picture = small
        native = np.asarray(picture)
        code = to_bgr[picture.mode]
        picture.close()
    return cv2.cvtColor(native, code)


def _decode_jpeg(data: bytes, w: int, h: int, bad: str) -> np.ndarray:
    import simplejpeg

    factor = next(k for k in (1, 2, 4, 8) if (w // k) * (h // k) <= MAX_PIXELS)
    try:
        return simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True, min_factor=factor)
    except ValueError as exc:
        raise CorruptImageError(f"{bad} ({exc})") from None
