"""Signed galleries: key files, detached signatures, the MQTT envelope, versions that only go up, and the CLI
(``keys generate``, ``gallery sign``, ``gallery verify``) on real gallery files."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

pytest.importorskip("cryptography", reason="the fleet extra (cryptography) is not installed")

from edgeface.cli import main  # noqa: E402
from edgeface.device.fleet import keys, signing  # noqa: E402
from edgeface.gallery import Gallery, GalleryNotFoundError  # noqa: E402

FP = "ab" * 32
SITE = "hq"


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
    sig_path, doc = signing.sign_file(g, keys.load_private_key(private), SITE)
    assert sig_path == tmp_path / "people.gallery.sig" and doc.gallery_version == 1
    pub = keys.load_public_key(public)
    data, doc = signing.read_signed(g)
    assert len(signing.verified_gallery(data, doc, pub, expected_fingerprint=FP, site=SITE)) == 2
    # one flipped bit anywhere in the file
    for pos in (20, len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 1
        with pytest.raises(signing.BadSignatureError, match="does not match"):
            signing.verified_gallery(bytes(bad), doc, pub, site=SITE)
    # signed with another key
    other_private, _ = keys.generate_keypair(tmp_path / "other")
    other_doc = signing.sign_bytes(data, keys.load_private_key(other_private), SITE)
    with pytest.raises(signing.BadSignatureError, match="this door trusts key"):
        signing.verified_gallery(data, other_doc, pub, site=SITE)
    # the right key id on a forged signature
    forged = signing.SignatureDoc(doc.key_id, other_doc.signature, doc.claims)
    with pytest.raises(signing.BadSignatureError):
        signing.verified_gallery(data, forged, pub, site=SITE)


def test_envelope_round_trip_and_what_is_not_an_envelope(tmp_path, keypair):
    private, public = keypair
    g = tmp_path / "people.gallery"
    _gallery(g)
    data = g.read_bytes()
    doc = signing.sign_bytes(data, keys.load_private_key(private), SITE)
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
    signing.sign_file(g, key, SITE)
    v1, v1_sig = g.read_bytes(), signing.signature_path(g).read_bytes()
    assert signing.load_signed_gallery(g, public, FP, site=SITE).version == 1
    assert signing.read_record(g).version == 1
    gallery.remove("ada")
    gallery.save(g)
    signing.sign_file(g, key, SITE)
    assert [p.name for p in signing.load_signed_gallery(g, public, FP, site=SITE).people] == ["bob"]
    g.write_bytes(v1)
    signing.signature_path(g).write_bytes(v1_sig)
    with pytest.raises(signing.GalleryReplayError, match="older than the accepted version 2"):
        signing.load_signed_gallery(g, public, FP, site=SITE)
    # the same version with other content
    other = tmp_path / "other.gallery"
    o = _gallery(other, names=("eve",), seed=1)
    o.version = 1
    o.save(other)  # version 2, other people
    g.write_bytes(other.read_bytes())
    signing.sign_file(g, key, SITE)
    with pytest.raises(signing.GalleryReplayError, match="other content"):
        signing.load_signed_gallery(g, public, FP, site=SITE)
    signing.version_path(g).write_text("{not json")
    with pytest.raises(signing.GalleryReplayError, match="unreadable"):
        signing.load_signed_gallery(g, public, FP, site=SITE)


def test_unsigned_gallery_is_refused_with_the_reason(tmp_path, keypair):
    g = tmp_path / "people.gallery"
    _gallery(g)
    with pytest.raises(signing.UnsignedGalleryError, match="unsigned"):
        signing.load_signed_gallery(g, keypair[1], FP, site=SITE)
    with pytest.raises(GalleryNotFoundError):
        signing.load_signed_gallery(tmp_path / "none.gallery", keypair[1], FP, site=SITE)


def test_cli_generate_sign_verify(tmp_path, capsys):
    out = tmp_path / "k"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    g = tmp_path / "people.gallery"
    _gallery(g)
    assert main(["gallery", "verify", "--key", str(out / "gallery_signing.pub"), "--gallery", str(g), "--site", SITE]) == 1
    assert "unsigned" in capsys.readouterr().err
    assert main(["gallery", "sign", "--key", str(out / "gallery_signing.key"), "--gallery", str(g), "--site", SITE]) == 0
    assert main(["gallery", "verify", "--key", str(out / "gallery_signing.pub"), "--gallery", str(g), "--site", SITE]) == 0
    assert "ok:" in capsys.readouterr().out
    data = bytearray(g.read_bytes())
    data[-40] ^= 0x10
    g.write_bytes(bytes(data))
    assert main(["gallery", "verify", "--key", str(out / "gallery_signing.pub"), "--gallery", str(g), "--site", SITE]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgeface: error:") and "does not match" in err and "Traceback" not in err
    # signing refuses a file that is not a valid gallery
    assert main(["gallery", "sign", "--key", str(out / "gallery_signing.key"), "--gallery", str(g), "--site", SITE]) == 1
    assert "checksum" in capsys.readouterr().err


# -- issue 22: statements name site, doors, issue time and expiry --------------------------------------------
def test_statement_names_site_doors_and_time_and_the_door_checks_them(tmp_path, keypair):
    private, public = keypair
    key, pub = keys.load_private_key(private), keys.load_public_key(public)
    g = tmp_path / "people.gallery"
    _gallery(g)
    data = g.read_bytes()
    doc = signing.sign_bytes(data, key, SITE, doors=["front"], valid_for_s=3600, now=1_000_000)
    st = doc.statement
    assert (st.kind, st.site, st.doors, st.gallery_version, st.issued, st.expires) == \
        ("gallery", SITE, ("front",), 1, 1_000_000, 1_003_600)
    assert signing.verified_gallery(data, doc, pub, site=SITE, door="front", now=1_000_001).version == 1
    with pytest.raises(signing.GalleryScopeError, match="site 'hq', this door belongs to site 'lab'"):
        signing.verified_gallery(data, doc, pub, site="lab", door="front", now=1_000_001)
    with pytest.raises(signing.GalleryScopeError, match="not for side"):
        signing.verified_gallery(data, doc, pub, site=SITE, door="side", now=1_000_001)
    with pytest.raises(signing.GalleryExpiredError, match="expired"):
        signing.verified_gallery(data, doc, pub, site=SITE, door="front", now=1_003_600)
    with pytest.raises(signing.GalleryExpiredError, match="future"):
        signing.verified_gallery(data, doc, pub, site=SITE, door="front", now=1_000_000 - signing.FUTURE_SKEW_S - 1)
    # the statement is what is signed: changing its site (or anything in it) breaks the signature
    forged_claims = doc.claims.replace(b'"site":"hq"', b'"site":"lab"')
    with pytest.raises(signing.BadSignatureError):
        signing.verified_gallery(data, signing.SignatureDoc(doc.key_id, doc.signature, forged_claims), pub, site="lab",
                                 door="front")
    # a "still current" statement is not a gallery signature (and the reverse)
    fresh = signing.sign_fresh(data, key, SITE)
    with pytest.raises(signing.SignatureFormatError, match="not a signed gallery"):
        signing.verified_gallery(data, fresh, pub, site=SITE)
    assert signing.verified_fresh(fresh, pub, SITE, "front").kind == "fresh"


def test_a_format_1_signature_is_refused_with_the_reason(tmp_path, keypair):
    old = b'{"format": "edgeface-gallery-signature/1", "algorithm": "ed25519", "key_id": "x", "gallery_version": 1}'
    with pytest.raises(signing.LegacySignatureError, match="names no site"):
        signing.SignatureDoc.from_bytes(old)


def test_parse_duration():
    assert [signing.parse_duration(x) for x in ("90", "90s", "15m", "12h", "7d")] == [90, 90, 900, 43200, 604800]
    for bad in ("", "0", "-5", "1w", "abc"):
        with pytest.raises(ValueError):
            signing.parse_duration(bad)


# -- the freshness guard and the stale modes -----------------------------------------------------------------
def _grant(rule="door", detail=None):
    from edgeface.device.policy import Decision

    return Decision("granted", 1.0, person_id="ada", person="ada", score=0.9, detail=detail, rule=rule)


def test_freshness_guard_stale_modes(tmp_path, keypair):
    from types import SimpleNamespace

    from edgeface.device.fleet.freshness import Freshness, grant_basis

    private, public = keypair
    key = keys.load_private_key(private)
    g = tmp_path / "people.gallery"
    _gallery(g)
    signing.sign_file(g, key, SITE, valid_for_s=100)
    issued = signing.read_signed(g)[1].statement.issued
    clock = [issued + 10.0]
    guard = Freshness(g, keys.load_public_key(public), SITE, "front", max_age_s=50, mode="badge_only",
                      clock=lambda: clock[0])
    face, badge, pin = _grant(), _grant(detail="face_or_badge: badge 12345"), _grant(rule="verify")
    rt = SimpleNamespace(gallery=SimpleNamespace(version=1), access=SimpleNamespace(mode="face_or_badge"))
    assert grant_basis(face, "face") == "face" and grant_basis(badge, "face_or_badge") == "badge"
    assert grant_basis(pin, "face_and_pin") == "pin" and grant_basis(pin, "face_and_badge") == "badge"
    assert guard.screen(face, rt).kind == "granted" and guard.tick(1) == []
    clock[0] = issued + 51.0  # older than max_gallery_age_s (before the signature's own expiry)
    assert guard.screen(face, rt).kind == "denied" and guard.screen(face, rt).rule == "stale_gallery"
    assert guard.screen(badge, rt).kind == "granted"  # badge_only
    kinds = guard.tick(1)
    assert kinds[0][0] == "gallery_stale" and "max_gallery_age_s" in kinds[0][1]
    assert guard.status(1)["state"] == "stale"
    # a fresh statement for the running version renews it; one for a newer version makes the door behind at once
    fresh = signing.sign_fresh(g.read_bytes(), key, SITE, now=clock[0])
    guard.vouch(fresh.statement)
    assert guard.screen(face, rt).kind == "granted" and guard.tick(1)[0][0] == "gallery_fresh"
    newer = signing.Statement("fresh", SITE, None, 2, 10, "0" * 64, int(clock[0]), int(clock[0]) + 100)
    guard.vouch(newer)
    assert "version 2" in guard.reason() and guard.screen(face, rt).kind == "denied"
    for mode, allowed in (("all_denied", set()), ("faces_denied", {"badge", "pin"})):
        guard.mode = mode
        got = {b for b, d in (("face", face), ("badge", badge), ("pin", pin))
               if guard.screen(d, SimpleNamespace(gallery=rt.gallery, access=SimpleNamespace(
                   mode="face_and_pin" if b == "pin" else "face_or_badge"))).kind == "granted"}
        assert got == allowed, mode


def test_a_clock_set_back_does_not_make_an_expired_list_current_again(tmp_path, keypair):
    """The door went stale (the desk's last word is too old); someone sets its clock back into the statement's
    life. The guard's time does not go back while the gate runs: still stale, still denied."""
    from types import SimpleNamespace

    from edgeface.device.fleet.freshness import Freshness

    private, public = keypair
    g = tmp_path / "people.gallery"
    _gallery(g)
    signing.sign_file(g, keys.load_private_key(private), SITE, valid_for_s=100)
    issued = signing.read_signed(g)[1].statement.issued
    wall, mono = [issued + 10.0], [1000.0]
    guard = Freshness(g, keys.load_public_key(public), SITE, "front", max_age_s=50, mode="all_denied",
                      clock=lambda: wall[0], monotonic=lambda: mono[0])
    rt = SimpleNamespace(gallery=SimpleNamespace(version=1), access=SimpleNamespace(mode="face"))
    assert guard.screen(_grant(), rt).kind == "granted"
    wall[0], mono[0] = issued + 60.0, 1050.0  # 50 s later: older than max_gallery_age_s
    assert guard.screen(_grant(), rt).kind == "denied"
    wall[0], mono[0] = issued + 20.0, 1051.0  # the clock set back 40 s, one second later
    assert guard.screen(_grant(), rt).kind == "denied" and "max_gallery_age_s" in guard.reason()
    assert guard.now() == issued + 61.0
    wall[0], mono[0] = issued + 500.0, 1052.0  # a clock that jumps forward is followed
    assert guard.now() == issued + 500.0


# -- the local revocation overlay ----------------------------------------------------------------------------
def test_revocation_overlay_only_subtracts_and_the_writer_refuses_a_signed_copy(tmp_path, keypair, capsys):
    from edgeface.gallery_writer import GalleryWriter
    from edgeface.revocations import (RevocationsError, SignedGalleryError, apply, is_signed_copy, prune,
                                      read_revocations, revoke, revoked_path)

    private, public = keypair
    g = tmp_path / "people.gallery"
    _gallery(g, names=("ada", "bob", "cy"))
    signing.sign_file(g, keys.load_private_key(private), SITE)
    assert not is_signed_copy(g)
    signing.load_signed_gallery(g, public, FP, site=SITE)  # what a door does: the record makes it a door's copy
    assert is_signed_copy(g)
    signed_bytes = g.read_bytes()
    person, live = revoke(g, "bob")
    assert person.id == "bob" and [p.name for p in live.people] == ["ada", "cy"] and g.read_bytes() == signed_bytes
    assert main(["people", "remove", "cy", "--gallery", str(g)]) == 0
    assert "revoked cy" in capsys.readouterr().out and g.read_bytes() == signed_bytes
    assert [e.id for e in read_revocations(g)] == ["bob", "cy"]
    assert [p.name for p in apply(Gallery.load(g), read_revocations(g)).people] == ["ada"]
    with pytest.raises(Exception, match="no enrolled person"):  # already revoked
        revoke(g, "bob")
    # every other local writer is refused, plainly, and writes nothing
    for args in (["people", "rename", "ada", "Ada"], ["people", "set", "ada", "--badge", "12"]):
        assert main(args + ["--gallery", str(g)]) == 1
        assert "needs the desk's signature" in capsys.readouterr().err
    with pytest.raises(SignedGalleryError):
        with GalleryWriter.open(g) as writer_gallery:
            writer_gallery.remove("ada")
    assert g.read_bytes() == signed_bytes
    # people list shows what the door runs
    assert main(["people", "list", "--json", "--gallery", str(g)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in listed["people"]] == ["ada"] and len(listed["revoked_locally"]) == 2
    # a newer signed list without bob drops bob's entry (the desk caught up), keeps cy's
    newer = Gallery.load(g)
    newer.remove("bob")
    assert [e.id for e in prune(g, newer)] == ["bob"] and [e.id for e in read_revocations(g)] == ["cy"]
    revoked_path(g).write_text("{damaged")
    with pytest.raises(RevocationsError, match="will not guess"):
        read_revocations(g)


# -- keyed PINs ----------------------------------------------------------------------------------------------
def test_pins_are_keyed_with_the_site_secret_and_unkeyed_ones_never_leave_the_desk(tmp_path, keypair):
    import hashlib

    from edgeface.access.credentials import (check_pin, find_pin_secret, hash_pin, load_pin_secret, new_pin_secret,
                                             redacted, unkeyed_pins)

    secret_file = tmp_path / "pin-secret"
    assert main(["keys", "pin-secret", "--out", str(secret_file)]) == 0
    assert main(["keys", "pin-secret", "--out", str(secret_file)]) == 1  # never overwritten
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    secret = load_pin_secret(secret_file)
    rec = hash_pin("4711", secret=secret)
    assert rec["scheme"] == "scrypt-hmac-sha256" and check_pin("4711", rec, secret)
    assert not check_pin("4712", rec, secret) and not check_pin("4711", rec) and not check_pin("4711", rec, b"x" * 32)
    plain = hashlib.scrypt(b"4711", salt=bytes.fromhex(rec["salt"]), n=rec["n"], r=rec["r"], p=rec["p"], dklen=32)
    assert plain.hex() != rec["hash"]  # the public algorithm alone does not reproduce it
    assert redacted({"access": {"pin": rec}})["access"]["pin"] == {"set": True, "scheme": rec["scheme"],
                                                                   "key_id": rec["key_id"]}
    os.environ["CREDENTIALS_DIRECTORY"] = str(tmp_path)
    try:
        assert find_pin_secret() == secret
    finally:
        del os.environ["CREDENTIALS_DIRECTORY"]
    other = tmp_path / "other"
    other.write_text(new_pin_secret())
    os.chmod(other, 0o644)
    with pytest.raises(Exception, match="readable by every user"):
        load_pin_secret(other)
    raw = tmp_path / "raw"  # 32 raw bytes instead of their hex digits: a clear refusal, not a UnicodeDecodeError
    raw.write_bytes(bytes(range(224, 256)))
    os.chmod(raw, 0o600)
    from edgeface.access.credentials import AccessDataError

    with pytest.raises(AccessDataError, match="not 64 hex digits"):
        load_pin_secret(raw)
    # a gallery with an unkeyed PIN is never signed
    g = tmp_path / "people.gallery"
    gallery = _gallery(g)
    gallery.find("ada").attributes["access"] = {"pin": hash_pin("1234")}
    gallery.save(g)
    assert unkeyed_pins(Gallery.load(g)) == ["ada"]
    with pytest.raises(Exception, match="could be recovered"):
        signing.sign_file(g, keys.load_private_key(keypair[0]), SITE)


# -- the collector's checks and the broker's files -----------------------------------------------------------
def test_event_follower_refuses_topic_payload_mismatches_and_reports_gaps():
    from edgeface.device.fleet.publisher import EventFollower

    f = EventFollower()

    def ev(door, seq, site="hq"):
        return json.dumps({"id": f"{door}-{seq}-{site}", "site": site, "door": door, "seq": seq}).encode()

    assert f.accept(ev("front", 1), "edgeface/hq/front/events")
    assert f.accept(ev("front", 2), "edgeface/hq/side/events") is None  # side claiming to be front
    assert f.accept(ev("front", 2, "lab"), "edgeface/hq/front/events") is None
    assert f.accept(ev("front", 4), "edgeface/hq/front/events")
    assert f.new_gaps == [("hq", "front", [2, 3])] and f.gaps() == {"hq/front": [2, 3]}
    assert f.accept(ev("front", 3), "edgeface/hq/front/events")  # late, fills its gap
    assert f.gaps() == {"hq/front": [2]} and f.stats["mismatched"] == 2 and f.stats["gaps"] == 1


def test_fleet_broker_writes_acl_passwd_and_one_credential_per_account(tmp_path):
    import shutil as _shutil

    from edgeface.device.fleet.broker import acl_text

    if _shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    out = tmp_path / "broker"
    assert main(["fleet", "broker", "--out", str(out), "--door", "hq/front", "--door", "hq/side"]) == 0
    creds = sorted(p.name for p in (out / "credentials").iterdir())
    collector = next(c for c in creds if c.startswith("collector-"))[:-len(".password")]
    assert creds == sorted(["desk.password", f"{collector}.password", "hq.front.password", "hq.side.password"])
    assert all(stat.S_IMODE(os.stat(out / "credentials" / c).st_mode) == 0o600 for c in creds)
    passwd = (out / "passwd").read_text()
    secret = (out / "credentials" / "hq.front.password").read_text().strip()
    assert "hq/front:$7$" in passwd and secret not in passwd
    acl = (out / "acl").read_text()
    assert acl == acl_text([("hq", "front"), ("hq", "side")], collector=collector)
    assert "pattern write edgeface/%u/events" in acl and "user hq/side\ntopic read edgeface/hq/gallery" in acl
    # again with one more door: the existing credentials stay
    assert main(["fleet", "broker", "--out", str(out), "--door", "hq/front", "--door", "lab/x"]) == 0
    assert (out / "credentials" / "hq.front.password").read_text().strip() == secret
    assert f"user {collector}\n" in (out / "acl").read_text()
    assert main(["fleet", "broker", "--out", str(out), "--door", "nodoor"]) == 1
    # a credential file that is not text: one line of refusal, the file left for the operator
    (out / "credentials" / "hq.side.password").write_bytes(b"\xff\xfe\x00")
    assert main(["fleet", "broker", "--out", str(out), "--door", "hq/side"]) == 1
    assert (out / "credentials" / "hq.side.password").read_bytes() == b"\xff\xfe\x00"


def test_the_desk_refresh_units_verify(tmp_path):
    import shutil as _shutil
    import subprocess
    import sys
    from pathlib import Path

    analyze = _shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian/Ubuntu package: systemd)")
    root = Path(__file__).resolve().parents[1] / "systemd"
    edgeface = Path(sys.executable).with_name("edgeface")
    for name in ("edgeface-fleet-refresh.service", "edgeface-fleet-refresh.timer"):
        (tmp_path / name).write_text((root / name).read_text().replace("/usr/local/bin/edgeface", str(edgeface)))
    done = subprocess.run([analyze, "verify", *(str(p) for p in sorted(tmp_path.iterdir()))], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_a_broker_password_file_that_is_not_text_is_a_config_error(tmp_path):
    from edgeface.config import FleetConfig
    from edgeface.device.fleet.mqtt_client import MqttClient
    from edgeface.errors import ConfigError

    secret = tmp_path / "front.password"
    secret.write_bytes(b"\xff\xfe\x00\n")
    os.chmod(secret, 0o600)
    fleet = FleetConfig(broker="mqtt://127.0.0.1:1", site="hq", door="front", username="hq/front", password_file=secret)
    with pytest.raises(ConfigError, match="not text"):
        MqttClient.from_config(fleet, "edgeface-hq-front")
