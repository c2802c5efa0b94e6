"""The gate with ``[model] gallery_public_key`` (no broker needed): an unsigned gallery never starts a door; at a
SIGHUP reload an unsigned, wrongly signed or older signed gallery is refused, audited, and the running one kept."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

pytest.importorskip("cryptography", reason="the fleet extra (cryptography) is not installed")

from gatekit import wait_for  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402
from test_gate_faults import config, replay, run_gate, scene  # noqa: E402,F401  (scene is a fixture)

from edgeface.device.daemon import build_daemon  # noqa: E402
from edgeface.device.fleet import keys, signing  # noqa: E402
from edgeface.errors import ConfigError  # noqa: E402
from edgeface.gallery import Gallery  # noqa: E402

SITE = "hq"


def signed_config(scene, tmp_path, public, gallery):
    path = config(scene, tmp_path, gallery=gallery)
    path.write_text(path.read_text().replace("threads = 1\n", f'threads = 1\ngallery_public_key = "{public}"\n'
                                                                f'gallery_site = "{SITE}"\n', 1))
    return path


@pytest.fixture()
def signed(scene, tmp_path):
    """The scene's gallery as version 1 and version 2, both signed; v2 is live."""
    private, public = keys.generate_keypair(tmp_path / "keys")
    key = keys.load_private_key(private)
    live = tmp_path / "live.gallery"
    live.write_bytes(scene["gallery"].read_bytes())
    signing.sign_file(live, key, SITE)
    v1 = (live.read_bytes(), signing.signature_path(live).read_bytes())
    Gallery.load(live).save(live)
    signing.sign_file(live, key, SITE)
    return dict(key=key, public=public, live=live, v1=v1, cfg=signed_config(scene, tmp_path, public, live))


def test_unsigned_or_tampered_gallery_never_starts_the_door(scene, tmp_path, signed):
    signing.signature_path(signed["live"]).unlink()
    with pytest.raises(ConfigError, match="unsigned"):  # the pre-flight: exit 78
        build_daemon(signed["cfg"], pin_factory=MockFactory(), camera_factory=replay(scene), log_out=None)
    signing.sign_file(signed["live"], signed["key"], SITE)
    data = bytearray(signed["live"].read_bytes())
    data[-33] ^= 1
    signed["live"].write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="does not match"):
        build_daemon(signed["cfg"], pin_factory=MockFactory(), camera_factory=replay(scene), log_out=None)


def test_refused_at_reload_keeps_the_running_gallery_and_audits(scene, tmp_path, signed):
    gate = build_daemon(signed["cfg"], pin_factory=MockFactory(), camera_factory=replay(scene), log_out=None)
    old = gate.runtime
    assert old.gallery.version == 2
    other_private, _ = keys.generate_keypair(tmp_path / "other")
    live, sig = signed["live"], signing.signature_path(signed["live"])

    def refused(n):
        return lambda: sum(e.kind == "reload_failed" for e in gate.events) >= n

    def attacks(g):
        assert wait_for(lambda: g.ready)
        live.write_bytes(signed["v1"][0])  # a replayed, genuinely signed, older gallery
        sig.write_bytes(signed["v1"][1])
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(refused(1))
        newer = Gallery.load(live)
        newer.version = 5
        newer.save(live)  # version 6, unsigned (the old .sig does not match)
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(refused(2))
        signing.sign_file(live, keys.load_private_key(other_private), SITE)  # signed, by a key the door does not trust
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(refused(3))

    assert run_gate(gate, action=attacks) == 0
    details = [e.detail for e in gate.events if e.kind == "reload_failed"]
    assert len(details) == 3 and all("kept the running config" in d for d in details)
    assert "older than the accepted version 2" in details[0]
    assert "does not match" in details[1]
    assert "this door trusts key" in details[2]
    assert gate.runtime is old and "reloaded" not in [e.kind for e in gate.events]
    with sqlite3.connect(tmp_path / "audit.db") as db:
        rows = db.execute("SELECT detail FROM events WHERE kind = 'reload_failed'").fetchall()
    assert [r[0] for r in rows] == details


def test_an_expired_signed_gallery_starts_but_grants_nobody_by_face(scene, tmp_path, signed):
    """Issue 22: the statement's expiry is the end of the list's freshness; stale_mode all_denied (the default)
    turns the face grant into a denial (rule stale_gallery), audited, and the relay never pulses."""
    import time

    live = signed["live"]
    doc = signing.sign_bytes(live.read_bytes(), signed["key"], SITE, valid_for_s=60, now=time.time() - 3600)
    signing.signature_path(live).write_bytes(doc.to_bytes())
    pin = MockFactory()
    gate = build_daemon(signed["cfg"], pin_factory=pin, camera_factory=replay(scene), log_out=None)
    assert run_gate(gate) == 0
    kinds = [e.kind for e in gate.events]
    assert "gallery_stale" in kinds and "granted" not in kinds and "unlock" not in kinds, kinds
    denied = [e for e in gate.events if e.kind == "denied"]
    assert denied and all(e.rule == "stale_gallery" and "expired" in e.detail for e in denied)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE rule = 'stale_gallery'").fetchone()[0] == len(denied)
