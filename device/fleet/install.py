"""The one step that puts a verified gallery onto the door's disk, under the gallery's one writer lock.

:class:`edgeface.gallery_writer.GalleryWriter` holds ``GALLERY.lock`` (so no local ``people remove`` / admin
page writes at the same time), with ``read=False``: the old file is never parsed, so a damaged one cannot block
the install. Inside the lock:

1. the file there is compared with the door's record of the signed version it holds (``GALLERY.version``); a
   file that is not that (damaged, truncated, edited, unsigned, unreadable) is **quarantined**: renamed to
   ``GALLERY.quarantined-<UTC time>`` (the newest :data:`KEEP_QUARANTINED` are kept) and reported;
2. the exact signed bytes replace the gallery atomically (temp file, fsync, rename, mode 0600: re-encoding would
   break the signature), then the signature document, then the version record; the previous version's
   freshness statement (``GALLERY.fresh``) goes;
3. the revocation overlay (:mod:`edgeface.revocations`) drops the people the new list no longer holds.

A crash between the gallery and its signature leaves a pair that does not verify: the door starts with nobody
enrolled (fail secure) and the retained message installs it again on reconnect.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgeface.fileutil import atomic_write_bytes
from edgeface.gallery import Gallery
from edgeface.gallery_writer import GalleryWriter
from edgeface.revocations import Revocation, RevocationsError, prune

from .signing import (SignatureDoc, VersionRecord, fresh_path, read_record, signature_path, version_path,
                      write_record)

log = logging.getLogger(__name__)

KEEP_QUARANTINED = 3


@dataclass
class Installed:
    quarantined: Path | None = None
    why: str = ""  # why the previous file was quarantined
    pruned: list[Revocation] = field(default_factory=list)  # local revocations the new list made unnecessary
    overlay_error: str | None = None  # the overlay cannot be read (the door then runs nobody)


def install_gallery(path: str | Path, data: bytes, doc: SignatureDoc, gallery: Gallery) -> Installed:
    """Install already verified gallery ``data`` (parsed: ``gallery``) with its signature at ``path``."""
    path = Path(path)
    out = Installed()
    with GalleryWriter.open(path, read=False):
        out.quarantined, out.why = _quarantine_if_not_signed(path)
        atomic_write_bytes(path, data, mode=0o600, group_bits=0o060)
        atomic_write_bytes(signature_path(path), doc.to_bytes(), mode=0o644)
        write_record(path, VersionRecord(gallery.version, hashlib.sha256(data).hexdigest()))
        fresh_path(path).unlink(missing_ok=True)
        try:
            out.pruned = prune(path, gallery)
        except RevocationsError as exc:
            out.overlay_error = str(exc)
    return out


def _quarantine_if_not_signed(path: Path) -> tuple[Path | None, str]:
    """Move the file at ``path`` aside unless it is exactly the signed version recorded for it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        why = f"unreadable: {exc}"
    else:
        try:
            record = read_record(path)
        except Exception as exc:  # a damaged record: the file cannot be vouched for either
            record, why = None, f"{version_path(path).name} unreadable: {exc}"
        else:
            why = "no record of the signed version it should be"
        if record is not None:
            digest = hashlib.sha256(data).hexdigest()
            if digest == record.sha256:
                return None, ""
            why = f"sha256 {digest[:12]}... is not the signed version {record.version} ({record.sha256[:12]}...)"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.quarantined-{stamp}")
    try:
        os.replace(path, target)
    except OSError as exc:  # it is replaced below all the same; say so
        log.error("%s: cannot quarantine the old gallery (%s): %s; it is overwritten", path, why, exc)
        return None, why
    old = sorted(path.parent.glob(f"{path.name}.quarantined-*"))
    for stale in old[:-KEEP_QUARANTINED]:
        stale.unlink(missing_ok=True)
    log.warning("%s: the gallery on disk was not the signed version (%s): quarantined as %s", path, why, target.name)
    return target, why
