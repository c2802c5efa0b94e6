"""The one way to change a gallery file: an exclusive lock, a fresh read under it, an atomic write.

Every writer (``enroll``, ``people remove/rename``, the admin page, the fleet) goes through
:meth:`GalleryWriter.open`::

    with GalleryWriter.open(path, expected_fingerprint=fp, create=(fp, 128), timeout=30) as gallery:
        gallery.remove("P21")          # mutate the Gallery as read *under the lock*
    # written atomically (temp file, fsync, rename, mode 0600), version + 1, then the lock is released

* The lock is an exclusive ``fcntl.flock`` on ``<gallery>.lock`` next to the gallery (mode 0600, or the
  gallery's group and group bits when the gallery is shared with a group; the holder writes its pid into it,
  a writer that may only read the lock file still locks it). A second writer waits up to ``timeout`` seconds (default
  :data:`DEFAULT_TIMEOUT_S`, or ``$EDGEFACE_GALLERY_LOCK_TIMEOUT``) and then fails with
  :class:`GalleryLockTimeoutError` naming the holder's pid. The lock is released by the kernel when the
  holder dies, so a killed writer never leaves the gallery locked. The temp files a killed writer left next to the
  gallery (``.NAME.*.tmp``, the size of the gallery) are removed by the next writer, under the lock.
* The gallery is re-read after the lock is taken, so a change applies to the current content: a removal made
  meanwhile is never undone, and two enrolls both keep their people.
* The block's exception (or Ctrl-C) writes nothing: the file stays as it was. ``writer.discard()`` inside the
  block does the same without an exception (nothing to change).
* Readers (the door, ``people list``) never take the lock: the atomic rename means they see the old file or
  the new one, whole.
* A door's copy of the desk's signed gallery (``GALLERY.version`` beside it) is never rewritten here: a save is
  refused with :class:`edgeface.revocations.SignedGalleryError` (adding needs the desk's signature; removals go
  to the revocation overlay, :mod:`edgeface.revocations`). ``read=False`` takes only the lock (the fleet's
  installer, which must replace even a damaged file).

Slow work (embedding photos) belongs *before* the block; only the merge runs under the lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from .gallery import Gallery, GalleryError, GalleryNotFoundError

#: how long a writer waits for another writer's lock by default (seconds)
DEFAULT_TIMEOUT_S = 30.0
TIMEOUT_ENV = "EDGEFACE_GALLERY_LOCK_TIMEOUT"
_POLL_S = 0.02


class GalleryLockTimeoutError(GalleryError):
    """Another writer held the gallery's lock for longer than the timeout."""


class GalleryReadOnlyError(GalleryError):
    """The gallery (or its folder) cannot be written: nothing was changed."""


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


def default_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise GalleryError(f"${TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not value >= 0:
        raise GalleryError(f"${TIMEOUT_ENV}={raw!r} must be >= 0 seconds")
    return value


def check_writable(path: str | Path) -> None:
    """Refuse early (before any slow work) when the gallery could not be written: its folder cannot take a
    new file, or the gallery file itself has no write permission bit (a read-only gallery, even for root)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise GalleryReadOnlyError(f"{path}: is a directory, not a gallery file")
    if not folder.is_dir():
        raise GalleryReadOnlyError(f"{path}: the folder {folder} does not exist")
    from .revocations import is_signed_copy, signed_refusal

    if is_signed_copy(path):
        raise signed_refusal(path)
    if path.exists() and not (path.stat().st_mode & 0o222):
        raise GalleryReadOnlyError(f"{path}: the gallery file is read-only (mode "
                                   f"{path.stat().st_mode & 0o777:04o}); nothing was changed. "
                                   "Make it writable (chmod u+w) to edit it")
    probe = folder / f".{path.name}.{os.getpid()}.probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise GalleryReadOnlyError(f"{path}: cannot write in {folder} ({exc.strerror}); nothing was changed") from None
    os.close(fd)
    os.unlink(probe)


class GalleryWriter:
    """A locked read-modify-write of one gallery file. Use :meth:`open` as a context manager."""

    def __init__(self, path: str | Path, expected_fingerprint: str | None = None,
                 timeout: float | None = None, create: tuple[str, int] | None = None, read: bool = True) -> None:
        self.path = Path(path)
        self.read = read
        self.lock_file = lock_path(self.path)
        self.expected_fingerprint = expected_fingerprint
        self.timeout = default_timeout() if timeout is None else float(timeout)
        self.create = create
        self.gallery: Gallery | None = None
        #: the version the file had when the lock was taken (0 for a new gallery)
        self.base_version = 0
        self.waited_s = 0.0
        self._fd: int | None = None
        self._discard = False

    @classmethod
    def open(cls, path: str | Path, expected_fingerprint: str | None = None, timeout: float | None = None,
             create: tuple[str, int] | None = None, read: bool = True) -> "GalleryWriter":
        """``with GalleryWriter.open(...) as gallery``: lock, read, yield the Gallery, write, unlock.

        ``create=(fingerprint, embedding_size)`` starts an empty gallery when the file does not exist yet;
        without it a missing file is :class:`GalleryNotFoundError`. ``read=False``: only the lock (yields None,
        writes nothing)."""
        return cls(path, expected_fingerprint, timeout, create, read)

    def discard(self) -> None:
        """Leave the file as it is when the block ends (nothing to write)."""
        self._discard = True

    # -- context manager ----------------------------------------------------------------------------
    def __enter__(self) -> Gallery:
        self._lock()
        if not self.read:
            self._discard = True
            return None
        try:
            from .fileutil import remove_stale_temps

            remove_stale_temps(self.path, 0)  # every writer of this gallery holds the lock: any temp file is stale
            self.gallery = self._read()
        except BaseException:
            self._unlock()
            raise
        self.base_version = self.gallery.version
        return self.gallery

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and not self._discard:
                from .revocations import is_signed_copy, signed_refusal

                if is_signed_copy(self.path):
                    raise signed_refusal(self.path)
                try:
                    self.gallery.save(self.path)
                except OSError as err:
                    raise GalleryReadOnlyError(f"{self.path}: cannot write the gallery ({err.strerror or err}); "
                                               "the previous file is unchanged") from None
        finally:
            self._unlock()

    # -- internals ----------------------------------------------------------------------------------
    def _read(self) -> Gallery:
        try:
            return Gallery.load(self.path, expected_fingerprint=self.expected_fingerprint)
        except GalleryNotFoundError:
            if self.create is None:
                raise
            return Gallery.new(*self.create)

    def _lock(self) -> None:
        fd = self._open_lock()
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise GalleryError(f"{self.lock_file}: cannot lock: {exc.strerror}") from None
            if time.monotonic() - t0 >= self.timeout:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"process {holder}" if holder else "another process (pid unknown)"
                raise GalleryLockTimeoutError(
                    f"{self.path}: {who} is still writing the gallery after {self.timeout:g} s; nothing was "
                    f"changed. Wait for it to finish (or end it) and try again; lock file {self.lock_file}")
            time.sleep(_POLL_S)
        self.waited_s = time.monotonic() - t0
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # opened read-only (another group member's lock file): locked all the same, no pid
            pass
        self._fd = fd

    def _open_lock(self) -> int:
        """The lock file, created with the gallery's sharing (group, group bits) so every writer of a shared
        gallery can take it; an existing one another member created is opened read-only if need be (flock
        needs no write access)."""
        from .shared_files import apply_shared, shared_mode

        try:
            try:
                fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    return os.open(self.lock_file, os.O_RDWR)
                except PermissionError:
                    return os.open(self.lock_file, os.O_RDONLY)
        except OSError as exc:
            raise GalleryReadOnlyError(f"{self.path}: cannot create the lock file {self.lock_file} "
                                       f"({exc.strerror}); nothing was changed") from None
        try:
            apply_shared(fd, *shared_mode(self.path, 0o600, 0o060), self.lock_file)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _unlock(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale pid once released
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
