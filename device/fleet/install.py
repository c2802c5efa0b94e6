"""The one step that puts a verified gallery onto the door's disk, under the gallery's one writer lock.

:class:`edgeface.gallery_writer.GalleryWriter` holds ``GALLERY.lock`` (so no local ``enroll`` / ``people remove``
/ admin page writes at the same time); inside it the exact signed bytes replace the file atomically (temp file,
fsync, rename, mode 0600: the writer's own ``save`` would re-encode and bump the version, which would break the
signature), then the detached signature, then the version record. ``writer.discard()`` keeps the writer from
saving anything itself. A crash between the gallery and its signature leaves a pair that does not verify: the
door refuses it at the next start (fail secure) and the retained message installs it again on reconnect.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgeface.fileutil import atomic_write_bytes
from edgeface.gallery_writer import GalleryWriter

from .signing import SignatureDoc, VersionRecord, signature_path, write_record


def install_gallery(path: str | Path, data: bytes, doc: SignatureDoc, version: int,
                    fingerprint: str, embedding_size: int) -> None:
    """Install already verified gallery ``data`` (gallery ``version``) with its signature at ``path``."""
    path = Path(path)
    writer = GalleryWriter.open(path, create=(fingerprint, embedding_size))
    with writer:
        writer.discard()
        atomic_write_bytes(path, data, mode=0o600)
        atomic_write_bytes(signature_path(path), doc.to_bytes(), mode=0o644)
        write_record(path, VersionRecord(version, hashlib.sha256(data).hexdigest()))
