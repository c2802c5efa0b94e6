"""The door side of a gallery message: check, verify, install, hand to the gate; refuse anything else.

In order: the size (over ``max_bytes``: *oversize*), the envelope (not one: *malformed*; a bare gallery:
*unsigned*), the Ed25519 signature over the exact gallery bytes (*bad signature*), the gallery itself (checksum,
format, the fingerprint of the embedder this door runs), then its version against the highest one accepted
(older, or the same version with other bytes: *replayed*; exactly the installed one: *unchanged*, which is what a
retained message brings at every reconnect). Only then is it installed (:func:`install.install_gallery`) and its
matcher built, all in the calling (MQTT) thread; the gate loop merely swaps the reference. Every refusal is
counted, posted to the gate as a ``gallery_refused`` event (logged, audited, sent upstream) and leaves the running
gallery as it is. Nothing here raises.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from edgeface.gallery import GalleryError
from edgeface.match import Matcher

from .install import install_gallery
from .signing import (EnvelopeError, GallerySignatureError, GalleryReplayError, SignatureFormatError,
                      UnsignedGalleryError, VersionRecord, check_newer, read_record, unpack_envelope,
                      verified_gallery)

log = logging.getLogger(__name__)

COUNTERS = ("received", "installed", "unchanged", "refused", "malformed", "oversize", "unsigned",
            "bad_signature", "replayed", "invalid", "errors")


class GallerySubscriber:
    """``gate`` is a :class:`~edgeface.device.gate.Gate` (its ``runtime``, ``offer_gallery``, ``post_event``)."""

    def __init__(self, gallery_path: str | Path, public_key, gate, max_bytes: int) -> None:
        self.gallery_path = Path(gallery_path)
        self.public_key = public_key
        self.gate = gate
        self.max_bytes = int(max_bytes)
        self.stats = dict.fromkeys(COUNTERS, 0)
        self.accepted: VersionRecord | None = None
        self.last_refusal: str | None = None

    def handle(self, payload: bytes, source: str = "gallery message") -> str:
        """Returns the outcome: ``installed``, ``unchanged``, ``cleared`` or the refusal's counter name."""
        self.stats["received"] += 1
        try:
            return self._handle(payload, source)
        except Exception as exc:  # a bug or a full disk must not take the MQTT thread (or the door) down
            log.exception("gallery message not handled")
            return self._refuse("errors", f"{source}: {type(exc).__name__}: {exc}")

    def _handle(self, payload: bytes, source: str) -> str:
        if not payload:  # a retained message was cleared on the broker: keep what we have
            return "cleared"
        if len(payload) > self.max_bytes:
            return self._refuse("oversize", f"{source}: {len(payload)} bytes, more than the {self.max_bytes} allowed")
        try:
            data, doc = unpack_envelope(payload, source)
        except UnsignedGalleryError as exc:
            return self._refuse("unsigned", str(exc))
        except (EnvelopeError, SignatureFormatError) as exc:
            return self._refuse("malformed", str(exc))
        fingerprint = self.gate.runtime.pipeline.embedder.fingerprint
        try:
            gallery = verified_gallery(data, doc, self.public_key, source, fingerprint)
        except GallerySignatureError as exc:
            return self._refuse("bad_signature", str(exc))
        except GalleryError as exc:  # signed, but not usable here (another model, a damaged file)
            return self._refuse("invalid", str(exc))
        digest = hashlib.sha256(data).hexdigest()
        try:
            newer = check_newer(gallery, digest, self._highest(), source)
        except GalleryReplayError as exc:
            return self._refuse("replayed", str(exc))
        if not newer:
            self.stats["unchanged"] += 1
            return "unchanged"
        matcher = Matcher(gallery)
        install_gallery(self.gallery_path, data, doc, gallery.version, gallery.fingerprint, gallery.embedding_size)
        self.accepted = VersionRecord(gallery.version, digest)
        self.stats["installed"] += 1
        self.gate.offer_gallery(gallery, matcher, f"version {gallery.version}, {len(gallery)} enrolled, "
                                                  f"signed by key {doc.key_id}")
        return "installed"

    def _highest(self) -> VersionRecord | None:
        """The higher of the record on disk and the one this process installed (if the disk lost a write)."""
        records = [r for r in (read_record(self.gallery_path), self.accepted) if r is not None]
        running = self.gate.runtime.gallery.version
        best = max(records, key=lambda r: r.version, default=None)
        if best is None or best.version < running:
            return VersionRecord(running, "") if running else best
        return best

    def _refuse(self, counter: str, reason: str) -> str:
        self.stats[counter] += 1
        self.stats["refused"] += 1
        self.last_refusal = reason
        log.warning("gallery refused (%s): %s", counter, reason)
        self.gate.post_event("gallery_refused", f"{counter}: {reason}; kept version "
                                                f"{self.gate.runtime.gallery.version}")
        return counter
