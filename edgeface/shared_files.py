"""Modes for files that two service users share through a group, and nobody else reads.

The door's gallery and audit database belong to the gate (user ``edgeface``) and are shared with the admin
page (user ``edgeface-admin``) through the group ``edgeface`` (docs/deployment.md, section 3a): the gallery
0660 (both write it), the audit database 0640 (the admin page reads it), their directory ``2770``. A writer
that replaces such a file atomically creates a new inode, which would otherwise get the writer's own group
and umask; :func:`shared_mode` says which mode and group the new file must get so the sharing survives:

* an existing file keeps its group and its group bits (only those in ``group_bits``); world bits are never
  kept or given;
* a new file in a shared directory (setgid, or group rwx) gets ``group_bits`` and the directory's group;
* anything else is ``base`` (0600) with the writer's group: a gallery on a desktop stays private.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from .errors import EdgefaceError

#: never kept, never given
WORLD_BITS = 0o007


class SharedGroupError(EdgefaceError):
    """A new file could not be given the group of the file it replaces (the writer is not a member)."""


def shared_mode(path: str | Path, base: int = 0o600, group_bits: int = 0o060) -> tuple[int, int | None]:
    """(mode, gid or None) for a file written at ``path``, replacing the file there or created new."""
    path = Path(path)
    group_bits &= 0o070
    base &= ~WORLD_BITS & 0o777
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        kept = st.st_mode & group_bits
        return (base | kept, st.st_gid) if kept else (base, None)
    try:
        d = os.stat(path.parent)
    except OSError:
        return base, None
    if group_bits and (d.st_mode & stat.S_ISGID or d.st_mode & 0o070 == 0o070):
        return base | group_bits, d.st_gid
    return base, None


def apply_shared(fd: int, mode: int, gid: int | None, path: str | Path) -> None:
    """Give the open file ``fd`` (not yet visible under ``path``) ``mode`` and group ``gid``."""
    if gid is not None and os.fstat(fd).st_gid != gid:
        try:
            os.fchown(fd, -1, gid)
        except PermissionError:
            raise SharedGroupError(
                f"{path}: cannot give the new file the group {group_name(gid)} of the one it replaces (this user "
                f"is not a member of it); nothing was changed. Run as the file's owner or a member of the "
                f"group (docs/deployment.md, 3a)") from None
    os.fchmod(fd, mode & ~WORLD_BITS)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
