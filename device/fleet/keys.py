"""Ed25519 key pairs for signing galleries (``cryptography``): PEM files, the private one mode 0600.

The private key stays on the enrolment desk; each door holds only the public key (``[model]
gallery_public_key``). A key's id is the first 16 hex digits of the sha256 of its 32 raw public bytes: it names
the key in signatures, so a door can say *which* key a refused gallery was signed with.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeface.errors import EdgefaceError
from edgeface.fileutil import atomic_write_bytes

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


class KeyFileError(EdgefaceError):
    """A key file is missing, unreadable, not an Ed25519 key, or (private) readable by others."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(out_dir: str | Path, name: str = "gallery_signing") -> tuple[Path, Path]:
    """Write ``DIR/NAME.key`` (PKCS#8 PEM, mode 0600) and ``DIR/NAME.pub`` (SubjectPublicKeyInfo PEM, 0644).
    Never overwrites: replacing a signing key is a key rotation (docs/deployment.md), not an accident."""
    out = Path(out_dir)
    private_path, public_path = out / f"{name}{PRIVATE_SUFFIX}", out / f"{name}{PUBLIC_SUFFIX}"
    for p in (private_path, public_path):
        if p.exists():
            raise KeyFileError(f"{p} exists; refusing to overwrite a signing key (choose another --out or --name)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(private_path, private_pem, mode=0o600)
    atomic_write_bytes(public_path, public_pem, mode=0o644)
    return private_path, public_path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such {what} key file (edgeface keys generate --out DIR)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the {what} key: {exc}") from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The signing key; refused when group or others may read it (like ssh does)."""
    path = Path(path)
    data = _read(path, "private")
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"{path}: the private key is readable by others (mode {mode:o}); chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    path = Path(path)
    data = _read(path, "public")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 public key")
    return key
