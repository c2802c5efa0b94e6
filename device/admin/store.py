"""Every gallery read and write of the admin page, one small function each.

A write reads the current file, applies one change and writes the whole file back atomically (mode 0600) in
one locked step, then returns: the change is in the file when the page answers, and the running gate picks
the new version up by itself (it watches the file, see :mod:`edgeface.device.gate`). A page never renders a
half-written gallery: readers only ever see the old file or the whole new one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, TypeVar

from edgeface.gallery import Gallery, GalleryNotFoundError

T = TypeVar("T")
_lock = threading.Lock()  # one writer at a time within this process


def read_gallery(path: Path, fingerprint: str | None = None) -> Gallery:
    return Gallery.load(path, expected_fingerprint=fingerprint)


def change_gallery(path: Path, change: Callable[[Gallery], T], *, fingerprint: str | None = None,
                   embedding_size: int | None = None) -> T:
    """Load the gallery, apply ``change`` to it, write it; returns what ``change`` returned.

    With ``fingerprint``, a gallery made with another model is refused (GalleryFingerprintError), never
    overwritten; with ``embedding_size`` as well, a missing gallery is started empty."""
    with _lock:
        try:
            gallery = Gallery.load(path, expected_fingerprint=fingerprint)
        except GalleryNotFoundError:
            if fingerprint is None or embedding_size is None:
                raise
            gallery = Gallery.new(fingerprint, embedding_size)
        result = change(gallery)
        gallery.save(path)
        return result
