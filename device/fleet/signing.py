"""Ed25519-signed statements about a gallery file, and the one-message envelope sent over MQTT.

Nothing new is invented: the signature is plain Ed25519 (RFC 8032, ``cryptography``). What is signed is a
**statement**, a small JSON object that binds the exact gallery file (its size and sha256) to where and until when
it is valid::

    {"kind": "gallery",              # or "fresh": "this version is still the current one" (re-signed on a schedule)
     "site": "hq",                   # a door installs only its own site's lists
     "doors": null,                  # or ["front", "side"]: only those doors of the site
     "gallery_version": 7,           # the version counter inside the gallery file (checked against it)
     "size": 123456, "sha256": "<hex of the gallery file>",
     "issued": 1767225600,           # unix seconds, the desk's clock
     "expires": 1767830400}          # after this no door installs it, and a running door counts it as stale

The signed bytes are ``b"edgeface-statement/2\\n"`` followed by the statement exactly as stored (the prefix keeps
a signature from meaning anything else). The **signature document** carries the statement as a string, so the
door verifies the very bytes that were signed; it is the detached ``GALLERY.sig`` file and, over MQTT, travels
with the gallery in one envelope::

    {"format": "edgeface-gallery-signature/2", "algorithm": "ed25519", "key_id": "<16 hex>",
     "statement": "<the statement's JSON text>", "signature": "<base64, 64 bytes>"}

A format-1 document (a signature over the bare file, naming no site and no expiry) is refused: it would let a list
signed for one site be installed at another (re-sign with this edgeface).

The MQTT **envelope** is the signature document and the gallery file in one payload (all little-endian)::

    b"EFSIGNED"   8 bytes
    doc length L  uint32
    doc           L bytes, the signature document (UTF-8 JSON, at most 4096 bytes)
    gallery       the rest: the gallery file, byte for byte

A **fresh** statement travels alone (the signature document as the payload) on ``PREFIX/SITE/fresh``; a door keeps
the newest one for its running version in ``GALLERY.fresh`` (see :mod:`.freshness`).

**Versions only go up.** Beside a verified gallery the door keeps ``GALLERY.version`` (JSON ``{"version": N,
"sha256": ...}``), the highest version it accepted. A gallery with a lower version, or the same version with
other bytes, is refused (:class:`GalleryReplayError`): a replayed old signed gallery cannot bring a removed
person back, neither over MQTT nor copied onto the disk. ``GALLERY.version`` also marks the file as a door's
signed copy, which no local writer may change (:mod:`edgeface.revocations`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeface.config import TOPIC_LEVEL
from edgeface.fileutil import atomic_write_bytes
from edgeface.gallery import Gallery, GalleryError, GalleryNotFoundError
from edgeface.revocations import SIGNED_RECORD_SUFFIX as VERSION_SUFFIX

from .keys import key_id, load_public_key

log = logging.getLogger(__name__)

DOC_FORMAT = "edgeface-gallery-signature/2"
LEGACY_FORMAT = "edgeface-gallery-signature/1"
SIGNED_PREFIX = b"edgeface-statement/2\n"
ENVELOPE_MAGIC = b"EFSIGNED"
_ENVELOPE_PREFIX = struct.Struct("<8sI")
MAX_DOC_BYTES = 4096
SIGNATURE_SUFFIX = ".sig"
FRESH_SUFFIX = ".fresh"
KINDS = ("gallery", "fresh")
#: a statement issued this far in the door's future is refused (the desk's or the door's clock is wrong)
FUTURE_SKEW_S = 300
#: how long a signed gallery stays valid unless the desk says otherwise (``--valid-for``)
DEFAULT_VALID_S = 7 * 86400
#: how long a "still current" statement stays valid by default (``fleet refresh --valid-for``)
DEFAULT_FRESH_VALID_S = 86400
_NAME = re.compile(TOPIC_LEVEL)


class GallerySignatureError(GalleryError):
    """The gallery is not signed by the trusted key; the door must not use it."""


class UnsignedGalleryError(GallerySignatureError):
    """There is no signature at all."""


class BadSignatureError(GallerySignatureError):
    """A signature is present but does not verify (tampered bytes, another key, a damaged signature)."""


class SignatureFormatError(GallerySignatureError):
    """The signature document is not one (bad JSON, missing fields, wrong lengths)."""


class LegacySignatureError(SignatureFormatError):
    """A format-1 signature: it names no site and no expiry."""


class EnvelopeError(GalleryError):
    """An MQTT payload is not a signed-gallery envelope."""


class GalleryReplayError(GalleryError):
    """The gallery is older than (or conflicts with) one already accepted: versions only go up."""


class GalleryScopeError(GalleryError):
    """Signed for another site (or other doors of this site)."""


class GalleryExpiredError(GalleryError):
    """The statement has expired, or was issued in this door's future."""


def parse_duration(text: str | float | int) -> int:
    """``3600``, ``90s``, ``15m``, ``12h``, ``7d`` -> seconds (a positive whole number)."""
    s = str(text).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", s)
    if not m:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600, 90s, 15m, 12h, 7d)")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if not 1 <= seconds <= 10 * 365 * 86400:
        raise ValueError(f"{text!r}: a duration between 1 s and 10 years")
    return int(seconds)


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(frozen=True)
class Statement:
    """What the desk signs about one gallery file (see the module docstring)."""

    kind: str
    site: str
    doors: tuple[str, ...] | None
    gallery_version: int
    size: int
    sha256: str
    issued: int
    expires: int

    def to_bytes(self) -> bytes:
        doc = {"kind": self.kind, "site": self.site, "doors": None if self.doors is None else list(self.doors),
               "gallery_version": self.gallery_version, "size": self.size, "sha256": self.sha256,
               "issued": self.issued, "expires": self.expires}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<statement>") -> "Statement":
        try:
            doc = json.loads(data.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SignatureFormatError(f"{source}: the signed statement is not ASCII JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise SignatureFormatError(f"{source}: the signed statement is not a JSON object")
        want = {"kind", "site", "doors", "gallery_version", "size", "sha256", "issued", "expires"}
        if set(doc) != want:
            raise SignatureFormatError(f"{source}: the signed statement has fields {sorted(doc)}, expected {sorted(want)}")
        ints = ("gallery_version", "size", "issued", "expires")
        if not all(isinstance(doc[k], int) and not isinstance(doc[k], bool) and doc[k] >= 0 for k in ints):
            raise SignatureFormatError(f"{source}: {', '.join(ints)} must be non-negative integers")
        doors = doc["doors"]
        if doors is not None and (not isinstance(doors, list) or not doors
                                  or not all(isinstance(d, str) and _NAME.match(d) for d in doors)):
            raise SignatureFormatError(f"{source}: doors must be null or a list of door names")
        if doc["kind"] not in KINDS or not isinstance(doc["site"], str) or not _NAME.match(doc["site"]):
            raise SignatureFormatError(f"{source}: kind must be one of {KINDS} and site a site name")
        if not isinstance(doc["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", doc["sha256"]):
            raise SignatureFormatError(f"{source}: sha256 must be 64 hex digits")
        if doc["expires"] <= doc["issued"]:
            raise SignatureFormatError(f"{source}: expires before it was issued")
        return cls(doc["kind"], doc["site"], None if doors is None else tuple(doors), doc["gallery_version"],
                   doc["size"], doc["sha256"], doc["issued"], doc["expires"])

    def describe(self) -> str:
        scope = self.site if self.doors is None else f"{self.site} doors {','.join(self.doors)}"
        return (f"{self.kind} version {self.gallery_version} for {scope}, issued {utc(self.issued)}, "
                f"expires {utc(self.expires)}")


@dataclass(frozen=True)
class SignatureDoc:
    key_id: str
    signature: bytes
    claims: bytes  # the statement's exact bytes, as signed

    @property
    def statement(self) -> Statement:
        return Statement.from_bytes(self.claims)

    @property
    def gallery_version(self) -> int:
        return self.statement.gallery_version

    @property
    def size(self) -> int:
        return self.statement.size

    @property
    def sha256(self) -> str:
        return self.statement.sha256

    def to_bytes(self) -> bytes:
        return json.dumps({"format": DOC_FORMAT, "algorithm": "ed25519", "key_id": self.key_id,
                           "statement": self.claims.decode("ascii"),
                           "signature": base64.b64encode(self.signature).decode("ascii")},
                          indent=1).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<signature>") -> "SignatureDoc":
        if len(data) > MAX_DOC_BYTES:
            raise SignatureFormatError(f"{source}: {len(data)} bytes is too large for a signature document")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SignatureFormatError(f"{source}: not a signature document (invalid JSON: {exc})") from None
        if isinstance(doc, dict) and doc.get("format") == LEGACY_FORMAT:
            raise LegacySignatureError(f"{source}: a format-1 signature names no site and no expiry; it is no longer "
                                       "accepted: sign the gallery again with this edgeface (gallery sign --site / "
                                       "fleet publish)")
        if not isinstance(doc, dict) or doc.get("format") != DOC_FORMAT or doc.get("algorithm") != "ed25519":
            raise SignatureFormatError(f"{source}: not an {DOC_FORMAT} ed25519 signature document")
        try:
            signature = base64.b64decode(doc["signature"], validate=True)
            claims = str(doc["statement"]).encode("ascii")
            out = cls(str(doc["key_id"]), signature, claims)
        except KeyError as exc:
            raise SignatureFormatError(f"{source}: the signature document lacks {exc.args[0]!r}") from None
        except (binascii.Error, TypeError, ValueError) as exc:
            raise SignatureFormatError(f"{source}: malformed signature document: {exc}") from None
        if len(out.signature) != 64:
            raise SignatureFormatError(f"{source}: an Ed25519 signature is 64 bytes, this one {len(out.signature)}")
        Statement.from_bytes(out.claims, source)  # well-formed, or refused here
        return out


# -- signing (the desk) --------------------------------------------------------------------------------------
def make_statement(kind: str, data: bytes, site: str, *, doors=None, valid_for_s: int | None = None,
                   now: float | None = None, source: str = "<gallery>") -> Statement:
    """The statement of ``kind`` about gallery file ``data`` (checked to be a valid gallery first: nobody signs
    garbage by mistake) whose PIN records are keyed (:func:`edgeface.access.credentials.unkeyed_pins`)."""
    from edgeface.access.credentials import AccessDataError, unkeyed_pins

    if not isinstance(site, str) or not _NAME.match(site):
        raise GalleryScopeError(f"site {site!r}: a site name is 1-64 letters, digits, '_', '.', '-'")
    doors = None if not doors else tuple(sorted(set(doors)))
    if doors is not None and not all(_NAME.match(d) for d in doors):
        raise GalleryScopeError(f"doors {doors!r}: door names are 1-64 letters, digits, '_', '.', '-'")
    gallery = Gallery.from_bytes(data, source)
    bare = unkeyed_pins(gallery)
    if bare:
        raise AccessDataError(f"{source}: the PIN of {', '.join(repr(n) for n in bare[:5])} is stored without the "
                              "site's PIN secret, so it could be recovered from the gallery; it is not signed. Set "
                              "those PINs again with the secret (edgeface people set NAME --pin-prompt --pin-secret "
                              "FILE) or clear them (--clear-pin)")
    issued = int(time.time() if now is None else now)
    valid = DEFAULT_VALID_S if valid_for_s is None else int(valid_for_s)
    return Statement(kind, site, doors, gallery.version, len(data), hashlib.sha256(data).hexdigest(), issued,
                     issued + valid)


def sign_statement(statement: Statement, private_key: Ed25519PrivateKey) -> SignatureDoc:
    claims = statement.to_bytes()
    return SignatureDoc(key_id(private_key.public_key()), private_key.sign(SIGNED_PREFIX + claims), claims)


def sign_bytes(data: bytes, private_key: Ed25519PrivateKey, site: str, *, doors=None,
               valid_for_s: int | None = None, now: float | None = None, source: str = "<gallery>") -> SignatureDoc:
    """Sign a gallery file's bytes for ``site`` (and ``doors``), valid for ``valid_for_s`` from now."""
    return sign_statement(make_statement("gallery", data, site, doors=doors, valid_for_s=valid_for_s, now=now,
                                         source=source), private_key)


def sign_fresh(data: bytes, private_key: Ed25519PrivateKey, site: str, *, doors=None,
               valid_for_s: int | None = None, now: float | None = None, source: str = "<gallery>") -> SignatureDoc:
    """A "still current" statement about the gallery file ``data``: nothing newer exists for ``site``."""
    valid = DEFAULT_FRESH_VALID_S if valid_for_s is None else valid_for_s
    return sign_statement(make_statement("fresh", data, site, doors=doors, valid_for_s=valid, now=now,
                                         source=source), private_key)


def signature_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + SIGNATURE_SUFFIX)


def fresh_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + FRESH_SUFFIX)


def read_gallery_bytes(gallery_path: str | Path) -> bytes:
    gallery_path = Path(gallery_path)
    try:
        return gallery_path.read_bytes()
    except FileNotFoundError:
        raise GalleryNotFoundError(f"{gallery_path}: no gallery file (enroll people first: edgeface enroll)") from None
    except OSError as exc:
        raise GalleryError(f"{gallery_path}: cannot read the gallery: {exc}") from None


def sign_file(gallery_path: str | Path, private_key: Ed25519PrivateKey, site: str, *, doors=None,
              valid_for_s: int | None = None) -> tuple[Path, SignatureDoc]:
    """Write the detached ``GALLERY.sig`` next to the gallery."""
    doc = sign_bytes(read_gallery_bytes(gallery_path), private_key, site, doors=doors, valid_for_s=valid_for_s,
                     source=str(gallery_path))
    out = signature_path(gallery_path)
    atomic_write_bytes(out, doc.to_bytes(), mode=0o644)
    return out, doc


# -- verifying (the door) --------------------------------------------------------------------------------------
def verify_doc(doc: SignatureDoc, public_key: Ed25519PublicKey, source: str = "<gallery>") -> Statement:
    """The statement of ``doc`` once it verified as the trusted key's signature; :class:`BadSignatureError`
    otherwise."""
    trusted = key_id(public_key)
    if doc.key_id != trusted:
        raise BadSignatureError(f"{source}: signed with key {doc.key_id}, this door trusts key {trusted}")
    try:
        public_key.verify(doc.signature, SIGNED_PREFIX + doc.claims)
    except InvalidSignature:
        raise BadSignatureError(f"{source}: the signature does not match the signed statement "
                                "(the signature document was changed, or the signature is damaged)") from None
    return Statement.from_bytes(doc.claims, source)


def check_scope(st: Statement, site: str, door: str | None, source: str = "<gallery>") -> None:
    if st.site != site:
        raise GalleryScopeError(f"{source}: signed for site {st.site!r}, this door belongs to site {site!r}: "
                                "another site's list is never installed")
    if st.doors is not None and door not in st.doors:
        raise GalleryScopeError(f"{source}: signed for doors {', '.join(st.doors)} of {st.site}, not for "
                                f"{door or 'this door'}")


def check_time(st: Statement, now: float, source: str = "<gallery>") -> None:
    if now >= st.expires:
        raise GalleryExpiredError(f"{source}: {st.kind} version {st.gallery_version} expired at {utc(st.expires)} "
                                  f"(now {utc(now)}): an expired list is refused")
    if st.issued > now + FUTURE_SKEW_S:
        raise GalleryExpiredError(f"{source}: issued at {utc(st.issued)}, in this door's future (now {utc(now)}): "
                                  "check the clocks of the desk and the door")


def verified_gallery(data: bytes, doc: SignatureDoc, public_key: Ed25519PublicKey, source: str = "<gallery>",
                     expected_fingerprint: str | None = None, *, site: str, door: str | None = None,
                     now: float | None = None) -> Gallery:
    """The gallery in ``data``, parsed only after the statement verified, names these exact bytes, this site (and
    door) and, with ``now``, has not expired. (At start, from disk, ``now`` is None: an expired list still loads,
    and the door's freshness guard treats it as stale.)"""
    st = verify_doc(doc, public_key, source)
    if st.kind != "gallery":
        raise SignatureFormatError(f"{source}: a {st.kind!r} statement, not a signed gallery")
    if st.size != len(data) or st.sha256 != hashlib.sha256(data).hexdigest():
        raise BadSignatureError(f"{source}: the signature does not match the gallery bytes "
                                "(the file was changed after signing, or belongs to another signature)")
    check_scope(st, site, door, source)
    if now is not None:
        check_time(st, now, source)
    gallery = Gallery.from_bytes(data, source, expected_fingerprint)
    if gallery.version != st.gallery_version:
        raise BadSignatureError(f"{source}: the file is version {gallery.version}, the statement says "
                                f"{st.gallery_version}")
    return gallery


def verified_fresh(doc: SignatureDoc, public_key: Ed25519PublicKey, site: str, door: str | None,
                   now: float | None = None, source: str = "<fresh>") -> Statement:
    """A verified "still current" statement for this site (and door), not expired at ``now`` if given."""
    st = verify_doc(doc, public_key, source)
    if st.kind != "fresh":
        raise SignatureFormatError(f"{source}: a {st.kind!r} statement, not a freshness statement")
    check_scope(st, site, door, source)
    if now is not None:
        check_time(st, now, source)
    return st


# -- the MQTT envelope ---------------------------------------------------------------------------------------
def pack_envelope(data: bytes, doc: SignatureDoc) -> bytes:
    body = doc.to_bytes()
    return _ENVELOPE_PREFIX.pack(ENVELOPE_MAGIC, len(body)) + body + data


def unpack_envelope(payload: bytes, source: str = "<message>") -> tuple[bytes, SignatureDoc]:
    """Split an envelope into (gallery bytes, signature document); :class:`UnsignedGalleryError` for a bare
    gallery file, :class:`EnvelopeError` for anything else that is not an envelope."""
    payload = bytes(payload)
    if payload.startswith(b"EFGALLRY"):
        raise UnsignedGalleryError(f"{source}: a bare gallery file without a signature")
    if len(payload) < _ENVELOPE_PREFIX.size or not payload.startswith(ENVELOPE_MAGIC):
        raise EnvelopeError(f"{source}: not a signed gallery envelope ({len(payload)} bytes, bad magic)")
    _, doc_len = _ENVELOPE_PREFIX.unpack_from(payload)
    if doc_len > MAX_DOC_BYTES or _ENVELOPE_PREFIX.size + doc_len > len(payload):
        raise EnvelopeError(f"{source}: signature document length {doc_len} is implausible")
    start = _ENVELOPE_PREFIX.size
    doc = SignatureDoc.from_bytes(payload[start:start + doc_len], source)
    return payload[start + doc_len:], doc


# -- versions only go up ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionRecord:
    version: int
    sha256: str


def version_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + VERSION_SUFFIX)


def read_record(gallery_path: str | Path) -> VersionRecord | None:
    """The highest accepted version, None where none was recorded yet. A damaged record is an error (fail secure)."""
    path = version_path(gallery_path)
    try:
        doc = json.loads(path.read_text())
        return VersionRecord(int(doc["version"]), str(doc["sha256"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GalleryReplayError(f"{path}: the record of the highest accepted gallery version is unreadable "
                                 f"({type(exc).__name__}: {exc}); restore it, or delete it only if you trust the "
                                 "installed gallery") from None


def write_record(gallery_path: str | Path, record: VersionRecord) -> None:
    atomic_write_bytes(version_path(gallery_path), json.dumps({"version": record.version,
                                                                "sha256": record.sha256}).encode() + b"\n",
                       mode=0o600, group_bits=0o040)


def check_newer(gallery: Gallery, sha256: str, record: VersionRecord | None, source: str = "<gallery>") -> bool:
    """True when ``gallery`` is newer than ``record``; False when it is exactly the recorded one; raises
    :class:`GalleryReplayError` when it is older or another gallery with the same version."""
    if record is None or gallery.version > record.version:
        return True
    if gallery.version == record.version and sha256 == record.sha256:
        return False
    if gallery.version == record.version:
        raise GalleryReplayError(f"{source}: version {gallery.version} is already installed with other content "
                                 "(two galleries with one version); refused")
    raise GalleryReplayError(f"{source}: version {gallery.version} is older than the accepted version "
                             f"{record.version}: a replayed gallery is refused (versions only go up)")


def read_signed(gallery_path: str | Path) -> tuple[bytes, SignatureDoc]:
    """A gallery file's bytes (read once) and its detached signature document; not verified yet."""
    data = read_gallery_bytes(gallery_path)
    sig = signature_path(gallery_path)
    try:
        return data, SignatureDoc.from_bytes(sig.read_bytes(), str(sig))
    except FileNotFoundError:
        raise UnsignedGalleryError(f"{gallery_path}: unsigned (no {sig.name}); the door trusts only galleries "
                                   "signed with its key (edgeface gallery sign)") from None
    except OSError as exc:
        raise GallerySignatureError(f"{sig}: cannot read the signature: {exc}") from None


def load_signed(gallery_path: str | Path, public_key, expected_fingerprint: str | None = None, *,
                site: str, door: str | None = None) -> tuple[Gallery, Statement]:
    """What the gate loads at start and at reload when ``[model] gallery_public_key`` is set: the file's bytes
    read once, verified against ``GALLERY.sig`` (this site, this door), parsed, and refused when older than the
    recorded version. The record is raised to the accepted version. ``public_key``: a key or its PEM file."""
    if not isinstance(public_key, Ed25519PublicKey):
        public_key = load_public_key(public_key)
    data, doc = read_signed(gallery_path)
    gallery = verified_gallery(data, doc, public_key, str(gallery_path), expected_fingerprint, site=site, door=door)
    digest = hashlib.sha256(data).hexdigest()
    if check_newer(gallery, digest, read_record(gallery_path), str(gallery_path)):
        try:
            write_record(gallery_path, VersionRecord(gallery.version, digest))
        except OSError as exc:  # the gallery itself is fine; the next start checks against the older record
            log.warning("%s: cannot record the accepted gallery version: %s", gallery_path, exc)
    return gallery, doc.statement


def load_signed_gallery(gallery_path: str | Path, public_key_path: str | Path,
                        expected_fingerprint: str | None = None, *, site: str, door: str | None = None) -> Gallery:
    return load_signed(gallery_path, public_key_path, expected_fingerprint, site=site, door=door)[0]
