"""Signed galleries: key files, detached signatures, the MQTT envelope, versions that only go up, and the CLI
(``keys generate``, ``gallery sign``, ``gallery verify``) on real gallery files."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

pytest.importorskip("cryptography", reason="the fleet extra (cryptography) is not installed")

from edgeface.cli import main  # noqa: E402
from edgeface.device.fleet import keys, signing  # noqa: E402
from edgeface.gallery import Gallery, GalleryNotFoundError  # noqa: E402

FP = "ab" * 32


def _gallery(path, names=("ada", "bob"), seed=0) -> Gallery:
    rng = np.random.default_rng(seed)
    g = Gallery.new(FP, 16)
    for n in names:
        g.add(n, rng.normal(size=(2, 16)), person_id=n)
    g.save(path)
    return g


@pytest.fixture()
def keypair(tmp_path):
    return keys.generate_keypair(tmp_path / "keys")


def test_generate_writes_a_0600_private_key_and_never_overwrites(tmp_path, keypair):
    private, public = keypair
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert keys.key_id(keys.load_private_key(private).public_key()) == keys.key_id(keys.load_public_key(public))
    with pytest.raises(keys.KeyFileError, match="refusing to overwrite"):
        keys.generate_keypair(tmp_path / "keys")
    os.chmod(private, 0o644)
    with pytest.raises(keys.KeyFileError, match="readable by others"):
        keys.load_private_key(private)
    with pytest.raises(keys.KeyFileError, match="not a PEM public key"):
        keys.load_public_key(_write(tmp_path / "x.pub", b"garbage"))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_signature_over_the_exact_bytes_refuses_tampering_and_other_keys(tmp_path, keypair):
    private, public = keypair
    g = tmp_path / "people.gallery"
    _gallery(g)
    sig_path, doc = signing.sign_file(g, keys.load_private_key(private))
    assert sig_path == tmp_path / "people.gallery.sig" and doc.gallery_version == 1
    pub = keys.load_public_key(public)
    data, doc = signing.read_signed(g)
    assert len(signing.verified_gallery(data, doc, pub, expected_fingerprint=FP)) == 2
    # one flipped bit anywhere in the file
    for pos in (20, len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 1
        with pytest.raises(signing.BadSignatureError, match="does not match"):
            signing.verified_gallery(bytes(bad), doc, pub)
    # signed with another key
    other_private, _ = keys.generate_keypair(tmp_path / "other")
    other_doc = signing.sign_bytes(data, keys.load_private_key(other_private))
    with pytest.raises(signing.BadSignatureError, match="this door trusts key"):
        signing.verified_gallery(data, other_doc, pub)
    # the right key id on a forged signature
    forged = signing.SignatureDoc(doc.key_id, other_doc.signature, doc.gallery_version, doc.size, doc.sha256)
    with pytest.raises(signing.BadSignatureError):
        signing.verified_gallery(data, forged, pub)


def test_envelope_round_trip_and_what_is_not_an_envelope(tmp_path, keypair):
    private, public = keypair
    g = tmp_path / "people.gallery"
    _gallery(g)
    data = g.read_bytes()
    doc = signing.sign_bytes(data, keys.load_private_key(private))
    payload = signing.pack_envelope(data, doc)
    assert signing.unpack_envelope(payload) == (data, doc)
    with pytest.raises(signing.UnsignedGalleryError):
        signing.unpack_envelope(data)
    for junk in (b"", b"hello", b"EFSIGNED", b"EFSIGNED\xff\xff\xff\x7f", payload[:12],
                 b"EFSIGNED\x05\x00\x00\x00{bad}" + data):
        with pytest.raises((signing.EnvelopeError, signing.SignatureFormatError)):
            signing.unpack_envelope(junk)


def test_versions_only_go_up_on_disk(tmp_path, keypair):
    """load_signed_gallery (the gate at start and reload): a replayed older signed file is refused."""
    private, public = keypair
    key = keys.load_private_key(private)
    g = tmp_path / "people.gallery"
    gallery = _gallery(g)
    signing.sign_file(g, key)
    v1, v1_sig = g.read_bytes(), signing.signature_path(g).read_bytes()
    assert signing.load_signed_gallery(g, public, FP).version == 1
    assert signing.read_record(g).version == 1
    gallery.remove("ada")
    gallery.save(g)
    signing.sign_file(g, key)
    assert [p.name for p in signing.load_signed_gallery(g, public, FP).people] == ["bob"]
    g.write_bytes(v1)
    signing.signature_path(g).write_bytes(v1_sig)
    with pytest.raises(signing.GalleryReplayError, match="older than the accepted version 2"):
        signing.load_signed_gallery(g, public, FP)
    # the same version with other content
    other = tmp_path / "other.gallery"
    o = _gallery(other, names=("eve",), seed=1)
    o.version = 1
    o.save(other)  # version 2, other people
    g.write_bytes(other.read_bytes())
    signing.sign_file(g, key)
    with pytest.raises(signing.GalleryReplayError, match="other content"):
        signing.load_signed_gallery(g, public, FP)
    signing.version_path(g).write_text("{not json")
    with pytest.raises(signing.GalleryReplayError, match="unreadable"):
        signing.load_signed_gallery(g, public, FP)


def test_unsigned_gallery_is_refused_with_the_reason(tmp_path, keypair):
    g = tmp_path / "people.gallery"
    _gallery(g)
    with pytest.raises(signing.UnsignedGalleryError, match="unsigned"):
        signing.load_signed_gallery(g, keypair[1], FP)
    with pytest.raises(GalleryNotFoundError):
        signing.load_signed_gallery(tmp_path / "none.gallery", keypair[1], FP)


def test_cli_generate_sign_verify(tmp_path, capsys):
    out = tmp_path / "k"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    g = tmp_path / "people.gallery"
    _gallery(g)
    assert main(["gallery", "verify", "--key", str(out / "gallery_signing.pub"), "--gallery", str(g)]) == 1
    assert "unsigned" in capsys.readouterr().err
    assert main(["gallery", "sign", "--key", str(out / "gallery_signing.key"), "--gallery", str(g)]) == 0
    assert main(["gallery", "verify", "--key", str(out / "gallery_signing.pub"), "--gallery", str(g)]) == 0
    assert "ok:" in capsys.readouterr().out
    data = bytearray(g.read_bytes())
    data[-40] ^= 0x10
    g.write_bytes(bytes(data))
    assert main(["gallery", "verify", "--key", str(out / "gallery_signing.pub"), "--gallery", str(g)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgeface: error:") and "does not match" in err and "Traceback" not in err
    # signing refuses a file that is not a valid gallery
    assert main(["gallery", "sign", "--key", str(out / "gallery_signing.key"), "--gallery", str(g)]) == 1
    assert "checksum" in capsys.readouterr().err
