"""Small file helpers: sha256 of a file, atomic writes with a chosen mode."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_mismatch(path: str | Path, size: int, sha256: str) -> str | None:
    """Why ``path`` is not the file of ``size`` bytes and ``sha256`` it should be, or None when it is."""
    actual = Path(path).stat().st_size
    if actual != size:
        return f"is {actual} bytes, expected {size} (truncated or replaced)"
    digest = sha256_file(path)
    if digest != sha256:
        return f"has sha256 {digest}, expected {sha256} (corrupt or replaced)"
    return None


def atomic_write_bytes(path: str | Path, data: bytes, mode: int = 0o600, group_bits: int = 0) -> None:
    """Write ``data`` to ``path`` so that a reader sees either the old file or the whole new one:
    a temp file in the same directory, fsync, ``os.replace``, then fsync of the directory.

    ``group_bits`` (e.g. 0o060) keeps a shared file shared: the new file gets the old one's group and those
    of its group bits, or, when new, the shared directory's group (:func:`edgeface.shared_files.shared_mode`)."""
    from .shared_files import apply_shared, shared_mode

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, gid = shared_mode(path, mode, group_bits) if group_bits else (mode, None)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        apply_shared(fd, mode, gid, path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
