"""Ed25519 signatures over the exact bytes of a gallery file, and the one-message envelope sent over MQTT.

Nothing new is invented: the signature is plain Ed25519 (RFC 8032, ``cryptography``) over the whole gallery file,
its header (with the ``version`` write counter), embeddings and sha256 trailer included. It travels in a small
JSON **signature document**, which is also the detached ``GALLERY.sig`` file::

    {"format": "edgeface-gallery-signature/1", "algorithm": "ed25519", "key_id": "<16 hex>",
     "gallery_version": 7, "size": 123456, "sha256": "<hex>", "signature": "<base64, 64 bytes>"}

``key_id``, ``gallery_version``, ``size`` and ``sha256`` are unsigned hints that make refusals readable; every
decision is taken on the signed bytes alone (the version enforced is the one inside the verified file).

The MQTT **envelope** is the signature document and the gallery file in one payload (all little-endian)::

    b"EFSIGNED"   8 bytes
    doc length L  uint32
    doc           L bytes, the signature document (UTF-8 JSON, at most 4096 bytes)
    gallery       the rest: the gallery file, byte for byte

**Versions only go up.** Beside a verified gallery the door keeps ``GALLERY.version`` (JSON ``{"version": N,
"sha256": ...}``), the highest version it accepted. A gallery with a lower version, or the same version with
other bytes, is refused (:class:`GalleryReplayError`): a replayed old signed gallery cannot bring a removed
person back, neither over MQTT nor copied onto the disk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeface.fileutil import atomic_write_bytes
from edgeface.gallery import Gallery, GalleryError, GalleryNotFoundError

from .keys import key_id, load_public_key

log = logging.getLogger(__name__)

DOC_FORMAT = "edgeface-gallery-signature/1"
ENVELOPE_MAGIC = b"EFSIGNED"
_ENVELOPE_PREFIX = struct.Struct("<8sI")
MAX_DOC_BYTES = 4096
SIGNATURE_SUFFIX = ".sig"
VERSION_SUFFIX = ".version"


class GallerySignatureError(GalleryError):
    """The gallery is not signed by the trusted key; the door must not use it."""


class UnsignedGalleryError(GallerySignatureError):
    """There is no signature at all."""


class BadSignatureError(GallerySignatureError):
    """A signature is present but does not verify (tampered bytes, another key, a damaged signature)."""


class SignatureFormatError(GallerySignatureError):
    """The signature document is not one (bad JSON, missing fields, wrong lengths)."""


class EnvelopeError(GalleryError):
    """An MQTT payload is not a signed-gallery envelope."""


class GalleryReplayError(GalleryError):
    """The gallery is older than (or conflicts with) one already accepted: versions only go up."""


@dataclass(frozen=True)
class SignatureDoc:
    key_id: str
    signature: bytes
    gallery_version: int
    size: int
    sha256: str

    def to_bytes(self) -> bytes:
        return json.dumps({"format": DOC_FORMAT, "algorithm": "ed25519", "key_id": self.key_id,
                           "gallery_version": self.gallery_version, "size": self.size, "sha256": self.sha256,
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
        if not isinstance(doc, dict) or doc.get("format") != DOC_FORMAT or doc.get("algorithm") != "ed25519":
            raise SignatureFormatError(f"{source}: not an {DOC_FORMAT} ed25519 signature document")
        try:
            signature = base64.b64decode(doc["signature"], validate=True)
            out = cls(str(doc["key_id"]), signature, int(doc["gallery_version"]), int(doc["size"]),
                      str(doc["sha256"]))
        except KeyError as exc:
            raise SignatureFormatError(f"{source}: the signature document lacks {exc.args[0]!r}") from None
        except (binascii.Error, TypeError, ValueError) as exc:
            raise SignatureFormatError(f"{source}: malformed signature document: {exc}") from None
        if len(out.signature) != 64:
            raise SignatureFormatError(f"{source}: an Ed25519 signature is 64 bytes, this one {len(out.signature)}")
        return out


def sign_bytes(data: bytes, private_key: Ed25519PrivateKey, source: str = "<gallery>") -> SignatureDoc:
    """Sign a gallery file's bytes (checked to be a valid gallery first: nobody signs garbage by mistake)."""
    gallery = Gallery.from_bytes(data, source)
    return SignatureDoc(key_id(private_key.public_key()), private_key.sign(data), gallery.version, len(data),
                        hashlib.sha256(data).hexdigest())


def signature_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + SIGNATURE_SUFFIX)


def read_gallery_bytes(gallery_path: str | Path) -> bytes:
    gallery_path = Path(gallery_path)
    try:
        return gallery_path.read_bytes()
    except FileNotFoundError:
        raise GalleryNotFoundError(f"{gallery_path}: no gallery file (enroll people first: edgeface enroll)") from None
    except OSError as exc:
        raise GalleryError(f"{gallery_path}: cannot read the gallery: {exc}") from None


def sign_file(gallery_path: str | Path, private_key: Ed25519PrivateKey) -> tuple[Path, SignatureDoc]:
    """Write the detached ``GALLERY.sig`` next to the gallery."""
    doc = sign_bytes(read_gallery_bytes(gallery_path), private_key, str(gallery_path))
    out = signature_path(gallery_path)
    atomic_write_bytes(out, doc.to_bytes(), mode=0o644)
    return out, doc


def verify_bytes(data: bytes, doc: SignatureDoc, public_key: Ed25519PublicKey, source: str = "<gallery>") -> None:
    """Raise :class:`BadSignatureError` unless ``doc`` is the trusted key's signature over exactly ``data``."""
    trusted = key_id(public_key)
    if doc.key_id != trusted:
        raise BadSignatureError(f"{source}: signed with key {doc.key_id}, this door trusts key {trusted}")
    try:
        public_key.verify(doc.signature, data)
    except InvalidSignature:
        raise BadSignatureError(f"{source}: the signature does not match the gallery bytes "
                                "(the file was changed after signing, or the signature is damaged)") from None


def verified_gallery(data: bytes, doc: SignatureDoc, public_key: Ed25519PublicKey, source: str = "<gallery>",
                     expected_fingerprint: str | None = None) -> Gallery:
    """The gallery in ``data``, parsed only after its signature verified."""
    verify_bytes(data, doc, public_key, source)
    return Gallery.from_bytes(data, source, expected_fingerprint)


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
                       mode=0o600)


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


def load_signed_gallery(gallery_path: str | Path, public_key_path: str | Path,
                        expected_fingerprint: str | None = None) -> Gallery:
    """What the gate loads at start and at reload when ``[model] gallery_public_key`` is set: the file's bytes
    read once, verified against ``GALLERY.sig``, parsed, and refused when older than the recorded version.
    The record is raised to the accepted version."""
    public_key = load_public_key(public_key_path)
    data, doc = read_signed(gallery_path)
    gallery = verified_gallery(data, doc, public_key, str(gallery_path), expected_fingerprint)
    digest = hashlib.sha256(data).hexdigest()
    if check_newer(gallery, digest, read_record(gallery_path), str(gallery_path)):
        try:
            write_record(gallery_path, VersionRecord(gallery.version, digest))
        except OSError as exc:  # the gallery itself is fine; the next start checks against the older record
            log.warning("%s: cannot record the accepted gallery version: %s", gallery_path, exc)
    return gallery
