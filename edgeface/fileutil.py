"""Small file helpers: sha256 of a file, atomic writes with a chosen mode, and the temp files a killed writer left.

An atomic write goes through a temp file ``.NAME.XXXXXXXX.tmp`` next to ``NAME``; a writer killed between creating
it and renaming it (SIGKILL, power loss) leaves it behind, the size of the file being written. Every atomic write
removes such leftovers of its own file older than :data:`STALE_TEMP_S` (a live writer's temp file is seconds old);
the gallery writer, holding the gallery's lock, removes them all at once (:func:`remove_stale_temps`)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

#: a temp file of an atomic write older than this is a killed writer's leftover (seconds)
STALE_TEMP_S = 600.0


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
    remove_stale_temps(path, STALE_TEMP_S)
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


def remove_stale_temps(path: str | Path, older_than_s: float = STALE_TEMP_S) -> int:
    """Delete the temp files atomic writes of ``path`` left behind (``.NAME.*.tmp``) that are older than
    ``older_than_s`` (0: all of them; only safe while no other writer of ``path`` can be running, e.g. under its
    lock). Returns how many were removed; a file that cannot be removed is left (never an error)."""
    path = Path(path)
    now, removed = time.time(), 0
    try:
        leftovers = list(path.parent.glob(f".{path.name}.*.tmp"))
    except OSError:
        return 0
    for tmp in leftovers:
        try:
            if older_than_s <= 0 or now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def file_version(path) -> tuple | None:
    """(device, inode, change time in ns) of a file, None when it cannot be stat'ed. Every gallery writer replaces
    the file atomically. The inode alone is no version: ext4 hands a freed inode to the next new file, so two
    replacements between two looks give the first inode back (measured here: two numbers, alternating), and two
    quick removals would go unseen. The change time is new with every replacement (and with an in-place edit,
    which the reader's checksum then refuses until it is complete)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


def systemd_credential(name: str) -> Path | None:
    """``$CREDENTIALS_DIRECTORY/NAME`` when systemd passed that credential (``LoadCredential=`` /
    ``LoadCredentialEncrypted=``) and it is a file, else None."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    candidate = Path(creds) / name if creds else None
    return candidate if candidate is not None and candidate.is_file() else None
