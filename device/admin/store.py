"""Every gallery read and write of the admin page, one small function each.

A write takes the gallery's lock, re-reads the file, applies one change and writes the whole file back
atomically (mode 0600), then returns: the change is in the file when the page answers, and the running gate picks
the new version up by itself (it watches the file, see :mod:`edgeface.device.gate`). A page never renders a
half-written gallery: readers only ever see the old file or the whole new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from edgeface.gallery import Gallery
from edgeface.gallery_writer import GalleryWriter

T = TypeVar("T")


def read_gallery(path: Path, fingerprint: str | None = None) -> Gallery:
    """The people the door runs: on a door's signed copy, the signed list minus its local revocations."""
    from edgeface.revocations import effective

    return effective(path, Gallery.load(path, expected_fingerprint=fingerprint))


def signed_door(path: Path) -> bool:
    """True on a door's copy of the desk's signed gallery: removals are local revocations, additions need the
    desk's signature (:mod:`edgeface.revocations`)."""
    from edgeface.revocations import is_signed_copy

    return is_signed_copy(path)


def revoke_person(path: Path, pid: str, user: str):
    """Revoke one person on a signed door (under the gallery's lock); returns the person."""
    from edgeface.revocations import revoke

    return revoke(path, pid, by=f"admin:{user}", timeout=10.0)[0]


def change_gallery(path: Path, change: Callable[[Gallery], T], *, fingerprint: str | None = None,
                   embedding_size: int | None = None) -> T:
    """Lock, re-read, apply ``change``, write atomically (:class:`edgeface.gallery_writer.GalleryWriter`, the
    same writer as the CLI); returns what ``change`` returned. An exception in ``change`` writes nothing.

    With ``fingerprint``, a gallery made with another model is refused (GalleryFingerprintError), never
    overwritten; with ``embedding_size`` as well, a missing gallery is started empty."""
    create = (fingerprint, embedding_size) if fingerprint is not None and embedding_size is not None else None
    with GalleryWriter.open(path, expected_fingerprint=fingerprint, create=create, timeout=10.0) as gallery:
        return change(gallery)
