"""The one step that puts a verified gallery onto the door's disk.

The gallery file goes through the gallery writer (atomic: temp file, fsync, ``os.replace``, mode 0600), then its
detached signature, then the version record. A crash between the first two leaves a gallery whose signature does
not match: the door then refuses it at the next start (fail secure) and the broker's retained message installs it
again on reconnect.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgeface.fileutil import atomic_write_bytes

from .signing import SignatureDoc, VersionRecord, signature_path, write_record


def write_gallery_bytes(path: Path, data: bytes) -> None:
    """The gallery writer. (Switches to the locked writer of issue 12 once it is on main.)"""
    atomic_write_bytes(path, data, mode=0o600)


def install_gallery(path: str | Path, data: bytes, doc: SignatureDoc, version: int) -> None:
    """Install already verified gallery ``data`` (of gallery ``version``) with its signature at ``path``."""
    path = Path(path)
    write_gallery_bytes(path, data)
    atomic_write_bytes(signature_path(path), doc.to_bytes(), mode=0o644)
    write_record(path, VersionRecord(version, hashlib.sha256(data).hexdigest()))
