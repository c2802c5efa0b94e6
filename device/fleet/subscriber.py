"""The door side of a gallery or freshness message: check, verify, install, hand to the gate; refuse anything else.

**Gallery** (``PREFIX/SITE/gallery``), in order: the size (over ``max_bytes``: *oversize*), the envelope (not
one: *malformed*; a bare gallery: *unsigned*), the Ed25519 signature over the signed statement and the statement
over the exact gallery bytes (*bad_signature*), the statement's site and doors (another site's or other doors'
list: *foreign*), its time (expired, or issued in the door's future: *expired*), the gallery itself (checksum,
format, the fingerprint of the embedder this door runs: *invalid*), then its version against the highest one
accepted (older, or the same version with other bytes: *replayed*; exactly the installed one: *unchanged*, which
is what a retained message brings at every reconnect). Only then is it installed (:func:`install.install_gallery`,
which quarantines a damaged local file instead of failing on it), the local revocations are subtracted
(:mod:`edgeface.revocations`), and the result is handed to the gate, whose loop makes it live the one way every
gallery goes live (:meth:`edgeface.device.pipeline.Runtime.with_gallery`).

**Freshness** (``PREFIX/SITE/fresh``): a signed "still current" statement. For the installed version it is kept
(``GALLERY.fresh``) and renews the list's freshness; for a newer version it tells the door it is behind (the
freshness guard makes the door stale at once and the ``gallery_behind`` event says so).

An empty message (a cleared retained topic) changes nothing but is logged and audited (``gallery_withheld``).
Every refusal is counted, posted to the gate as a ``gallery_refused`` event (logged, audited, sent upstream) and
leaves the running gallery as it is. Nothing here raises.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from edgeface.fileutil import atomic_write_bytes
from edgeface.gallery import Gallery, GalleryError
from edgeface.revocations import RevocationsError, apply, read_revocations

from .install import install_gallery
from .signing import (EnvelopeError, GalleryExpiredError, GalleryReplayError, GalleryScopeError,
                      GallerySignatureError, SignatureDoc, SignatureFormatError, UnsignedGalleryError, VersionRecord,
                      check_newer, fresh_path, read_record, unpack_envelope, verified_fresh, verified_gallery)

log = logging.getLogger(__name__)

COUNTERS = ("received", "installed", "unchanged", "refused", "malformed", "oversize", "unsigned",
            "bad_signature", "foreign", "expired", "replayed", "invalid", "errors", "cleared", "quarantined",
            "fresh", "fresh_old", "behind", "withheld")

#: the counter a refused signed statement goes to, by what was wrong with it
_STATEMENT_REFUSALS = ((GallerySignatureError, "bad_signature"), (GalleryScopeError, "foreign"),
                       (GalleryExpiredError, "expired"))


def _statement_refusal(exc: Exception) -> str | None:
    return next((kind for cls, kind in _STATEMENT_REFUSALS if isinstance(exc, cls)), None)


class GallerySubscriber:
    """``gate`` is a :class:`~edgeface.device.gate.Gate` (its ``runtime``, ``offer_gallery``, ``post_event``);
    ``freshness`` the door's :class:`~.freshness.Freshness` guard (or None)."""

    def __init__(self, gallery_path: str | Path, public_key, gate, max_bytes: int, *, site: str,
                 door: str | None, freshness=None, clock=time.time) -> None:
        self.gallery_path = Path(gallery_path)
        self.public_key = public_key
        self.gate = gate
        self.max_bytes = int(max_bytes)
        self.site, self.door = site, door
        self.freshness = freshness
        self.clock = clock
        self.stats = dict.fromkeys(COUNTERS, 0)
        self.accepted: VersionRecord | None = None
        self.last_refusal: str | None = None
        #: when the last gallery / fresh message (retained or not, empty or not) arrived (monotonic)
        self.last_message: dict[str, float] = {}

    def handle(self, payload: bytes, source: str = "gallery message", kind: str = "gallery") -> str:
        """Returns the outcome: ``installed``, ``unchanged``, ``cleared``, ``fresh``, ``behind`` or the refusal's
        counter name."""
        self.last_message[kind] = time.monotonic()
        self.stats["received"] += 1
        try:
            if not payload:  # a retained message was cleared on the broker: keep what we have, say so
                self.stats["cleared"] += 1
                self.gate.post_event("gallery_withheld", f"{source}: empty (the retained {kind} message was "
                                                         f"cleared); kept version {self._running()}")
                return "cleared"
            if kind == "fresh":
                return self._fresh(payload, source)
            return self._handle(payload, source)
        except Exception as exc:  # a bug or a full disk must not take the MQTT thread (or the door) down
            log.exception("%s message not handled", kind)
            return self._refuse("errors", f"{source}: {type(exc).__name__}: {exc}")

    def _running(self) -> int:
        return self.gate.runtime.gallery.version

    def _handle(self, payload: bytes, source: str) -> str:
        if len(payload) > self.max_bytes:
            return self._refuse("oversize", f"{source}: {len(payload)} bytes, more than the {self.max_bytes} allowed")
        try:
            data, doc = unpack_envelope(payload, source)
        except UnsignedGalleryError as exc:
            return self._refuse("unsigned", str(exc))
        except (EnvelopeError, SignatureFormatError) as exc:
            return self._refuse("malformed", str(exc))
        fingerprint = self.gate.runtime.recognizer.fingerprint
        try:
            gallery = verified_gallery(data, doc, self.public_key, source, fingerprint, site=self.site,
                                       door=self.door, now=self.clock())
        except GalleryError as exc:  # also signed, but not usable here (another model, a damaged file): invalid
            return self._refuse(_statement_refusal(exc) or "invalid", str(exc))
        digest = hashlib.sha256(data).hexdigest()
        try:
            newer = check_newer(gallery, digest, self._highest(), source)
        except GalleryReplayError as exc:
            return self._refuse("replayed", str(exc))
        st = doc.statement
        if not newer and self._running() != gallery.version:
            newer = True  # exactly the recorded version, but not what runs (the local file was unusable): repair
        if not newer:
            self.stats["unchanged"] += 1
            if self.freshness is not None:
                self.freshness.vouch(st)
            return "unchanged"
        done = install_gallery(self.gallery_path, data, doc, gallery)
        self.accepted = VersionRecord(gallery.version, digest)
        self.stats["installed"] += 1
        if self.freshness is not None:
            self.freshness.installed(st)
        if done.quarantined is not None:
            self.stats["quarantined"] += 1
            self.gate.post_event("gallery_quarantined", f"{self.gallery_path}: {done.why}; moved to "
                                                        f"{done.quarantined.name}; installing version {gallery.version}")
        from ..gate import gallery_files_version

        files_version = gallery_files_version(self.gallery_path)  # before the overlay is read: a later one reloads
        live = self._effective(gallery, done.overlay_error)
        extra = ""
        if len(live) != len(gallery):
            extra += f", {len(gallery) - len(live)} revoked locally"
        if done.pruned:
            extra += f", {len(done.pruned)} local revocation(s) no longer needed ({', '.join(e.name for e in done.pruned)})"
        self.gate.offer_gallery(live, f"version {gallery.version}, {len(live)} enrolled{extra}, signed by key "
                                      f"{doc.key_id} for {st.site}, expires {st.expires}", files_version)
        return "installed"

    def _effective(self, gallery: Gallery, overlay_error: str | None) -> Gallery:
        """The signed list minus the local revocations; nobody when those cannot be read (never a guess)."""
        try:
            if overlay_error is not None:
                raise RevocationsError(overlay_error)
            return apply(gallery, read_revocations(self.gallery_path))
        except RevocationsError as exc:
            self.gate.post_event("gallery_unusable", f"{exc}; running version {gallery.version} with nobody enrolled")
            empty = Gallery.new(gallery.fingerprint, gallery.embedding_size)
            empty.version = gallery.version
            return empty

    def _fresh(self, payload: bytes, source: str) -> str:
        try:
            doc = SignatureDoc.from_bytes(bytes(payload), source)
            st = verified_fresh(doc, self.public_key, self.site, self.door, self.clock(), source)
        except (GallerySignatureError, GalleryScopeError, GalleryExpiredError) as exc:
            return self._refuse(_statement_refusal(exc), str(exc))
        highest = self._highest()
        have = highest.version if highest is not None else 0
        if st.gallery_version > have:
            self.stats["behind"] += 1
            if self.freshness is not None:
                self.freshness.vouch(st)
            self.gate.post_event("gallery_behind", f"{source}: the desk's list is at version {st.gallery_version} "
                                                   f"(still current at {st.issued}), this door has version {have}: "
                                                   "its update was withheld or has not arrived")
            return "behind"
        if st.gallery_version < have or (highest is not None and highest.sha256 and st.sha256 != highest.sha256):
            self.stats["fresh_old"] += 1
            return "fresh_old"
        atomic_write_bytes(fresh_path(self.gallery_path), doc.to_bytes(), mode=0o644)
        if self.freshness is not None:
            self.freshness.vouch(st)
        self.stats["fresh"] += 1
        return "fresh"

    def _highest(self) -> VersionRecord | None:
        """The higher of the record on disk and the one this process installed (if the disk lost a write)."""
        records = [r for r in (read_record(self.gallery_path), self.accepted) if r is not None]
        running = self._running()
        best = max(records, key=lambda r: r.version, default=None)
        if best is None or best.version < running:
            return VersionRecord(running, "") if running else best
        return best

    def _refuse(self, counter: str, reason: str) -> str:
        self.stats[counter] += 1
        self.stats["refused"] += 1
        self.last_refusal = reason
        log.warning("gallery refused (%s): %s", counter, reason)
        self.gate.post_event("gallery_refused", f"{counter}: {reason}; kept version {self._running()}")
        return counter
