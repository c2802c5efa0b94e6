"""A removal always reaches the door (issue 22, findings 1-4 and 6), against a real Mosquitto: two doors, each the
real daemon in its own process (MockFactory relay, a clip of the enrolled person s1 walking up again and again),
follow site hq's signed gallery; ``side`` reaches the broker through a TCP proxy that can cut it off.

Each test reproduces one finding and measures removal -> denial: the time from the removal (the command returned,
or ``fleet publish`` returned) to the door's own event that the list it decides on no longer lets s1 in
(``reloaded`` / ``gallery_installed`` / ``gallery_stale``), then checks that the next appearances of s1 there are
not granted. The figures are printed (``pytest -s``) and written in docs/deployment.md section 6.

The same file runs against the code before issue 22 (fleetkit's ``sign_file_for`` / ``envelope_for`` call that
code's signing functions), where findings 1-4 and 6 fail as the issue describes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import datetime

import pytest

pytest.importorskip("paho.mqtt", reason="the fleet extra (paho-mqtt) is not installed")
pytest.importorskip("cryptography", reason="the fleet extra (cryptography) is not installed")

from adminkit import PASSWORD, csrf_of  # noqa: E402
from fleetkit import (Collector, Mosquitto, Proxy, door_config, envelope_for, sign_file_for, start_door,  # noqa: E402
                      stop_doors, wait_for)
from gatekit import Appearance, compose_video, enroll, make_bundle  # noqa: E402

from edgeface.cli import main  # noqa: E402
from edgeface.device.fleet import keys, signing  # noqa: E402
from edgeface.device.fleet.mqtt_client import MqttClient  # noqa: E402
from edgeface.device.fleet.topics import gallery_topic  # noqa: E402
from edgeface.gallery import Gallery  # noqa: E402

pytestmark = pytest.mark.slow

THRESHOLD = 0.40
SITE = "hq"
DOORS = ("front", "side")
DECISIONS = ("granted", "denied", "unknown", "no_decision")
#: what a door says when the list it decides on changed (or stopped counting)
CHANGED = ("reloaded", "gallery_installed", "gallery_stale")
LOCAL_BOUND_S, PUBLISHED_BOUND_S = 2.0, 5.0
MAX_AGE_S = 8.0


def _photo(root, ident, i):
    return sorted((root / ident).iterdir())[i]


def _wall(e) -> float:
    return datetime.fromisoformat(e["wall"]).timestamp()


@pytest.fixture(scope="module")
def site(request, tmp_path_factory, orl_dir, reference_onnx, detector):
    tmp = tmp_path_factory.mktemp("removal")
    broker = Mosquitto(tmp / "broker").start()
    request.addfinalizer(broker.stop)  # also when the set-up below fails
    proxy = Proxy(broker.port)
    bundle = make_bundle(tmp / "bundle", reference_onnx, THRESHOLD)
    private, public = keys.generate_keypair(tmp / "keys")
    desk = tmp / "desk" / "people.gallery"
    desk.parent.mkdir()
    enroll(desk, bundle, detector, {"s1": _photo(orl_dir, "s1", 0), "s2": _photo(orl_dir, "s2", 0)})
    s1 = Gallery.load(desk).find("s1")
    sign_file_for(desk, keys.load_private_key(private), SITE)
    video = tmp / "s1.avi"  # s1 (another photo than the enrolled one) walks up, again and again
    compose_video(video, [Appearance("s1", _photo(orl_dir, "s1", 2), 2.0, 260, (0.2, 0.3), (0.5, 0.4))],
                  fps=5.0, gap_s=1.0)
    collector = Collector(broker.url, SITE).start()
    ctx = dict(tmp=tmp, broker=broker, proxy=proxy, bundle=bundle, private=private, public=public, desk=desk, s1=s1,
               collector=collector, procs={}, cfgs={}, detector=detector)
    request.addfinalizer(lambda: [p.kill() for p in ctx["procs"].values() if p.poll() is None])
    for name in DOORS:
        d = tmp / name
        d.mkdir()
        for suffix in ("", ".sig"):  # the door's first gallery, copied by hand (v1, signed)
            shutil.copyfile(f"{desk}{suffix}", d / f"people.gallery{suffix}")
        url = broker.url if name == "front" else f"mqtt://127.0.0.1:{proxy.port}"
        admin = f'\n[admin]\naccounts = "{d / "admin" / "accounts.json"}"\nlog = "{d / "admin" / "admin.db"}"\n'
        cfg = door_config(d / "gate.toml", bundle=bundle, gallery=d / "people.gallery", public_key=public,
                          video=video, yunet=detector.model_path, broker=url, site=SITE, door=name)
        cfg.write_text(cfg.read_text() + admin)
        ctx["cfgs"][name] = cfg
        ctx["procs"][name] = start_door(cfg)
    _publish(ctx)  # v1 retained on the topic (the doors have it already)
    try:
        assert wait_for(lambda: all(_grants(ctx, n, 0) for n in DOORS), 120), _logs(ctx)
        yield ctx
    finally:
        stop_doors(ctx["procs"].values())
        collector.stop()
        proxy.cut()
        broker.stop()


def _logs(ctx) -> str:
    return "\n".join(f"--- {n}\n" + (ctx["tmp"] / n / "door.log").read_text()[-3000:] for n in DOORS)


def _events(ctx, door, kinds=None, since: float = 0.0, local: bool = False) -> list[dict]:
    """The door's events as the collector got them, or (``local``: a door cut off the broker) from the door's
    own audit log."""
    if local:
        import sqlite3

        with sqlite3.connect(ctx["tmp"] / door / "audit.db") as db:
            rows = db.execute("SELECT kind, time, detail, person_id FROM events WHERE unix >= ? ORDER BY id",
                              (since,)).fetchall()
        return [{"event": k, "wall": w, "detail": d, "person_id": p} for k, w, d, p in rows
                if kinds is None or k in kinds]
    with ctx["collector"].lock:
        return [e for e in ctx["collector"].events if e.get("door") == door and _wall(e) >= since
                and (kinds is None or e["event"] in kinds)]


def _grants(ctx, door, since: float) -> list[dict]:
    return [e for e in _events(ctx, door, ("granted",), since) if e.get("person_id") == "s1"]


def _s1_decisions(ctx, door, since: float, local: bool = False) -> list[dict]:
    """Decisions on an appearance (s1 is the only face in the clip)."""
    return _events(ctx, door, ("granted", "denied", "unknown"), since, local)


def _publish(ctx) -> float:
    """``edgeface fleet publish`` of the desk's gallery; returns the wall time it returned."""
    args = ["fleet", "publish", "--gallery", str(ctx["desk"]), "--key", str(ctx["private"]), "--broker",
            ctx["broker"].url, "--site", SITE, "--timeout", "10"]
    assert main(args) == 0
    return time.time()


def _desk(ctx, remove: str | None = None, add_s1: bool = False) -> int:
    g = Gallery.load(ctx["desk"])
    if remove:
        g.remove(remove)
    if add_s1:
        g.add("s1", ctx["s1"].embeddings, person_id="s1")
    g.save(ctx["desk"])
    return g.version


def _effect(ctx, door, since: float, detail: str | None = None, timeout_s: float = 20.0,
            local: bool = False) -> dict | None:
    """The door's first event at or after ``since`` saying its list changed (with ``detail`` in it)."""
    def found():
        return [e for e in _events(ctx, door, CHANGED, since, local) if detail is None or detail in (e.get("detail") or "")]
    wait_for(found, timeout_s)
    hits = found()
    return hits[0] if hits else None


def _denied_after(ctx, door, since: float, n: int = 2, local: bool = False) -> list[dict]:
    """Wait for ``n`` decisions on s1 at ``door`` after ``since``; returns them (none may be a grant)."""
    assert wait_for(lambda: len(_s1_decisions(ctx, door, since, local)) >= n, 40), _logs(ctx)
    return _s1_decisions(ctx, door, since, local)


def _readmit(ctx) -> None:
    """The desk enrolls s1 again and publishes; both doors let s1 in again."""
    _desk(ctx, add_s1=True)
    t = _publish(ctx)
    for n in DOORS:
        assert wait_for(lambda: _grants(ctx, n, t), 40), (n, _logs(ctx))


def _restart(ctx, door: str) -> float:
    proc = ctx["procs"][door]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, _logs(ctx)
    t = time.time()
    ctx["procs"][door] = start_door(ctx["cfgs"][door])
    return t


@pytest.fixture(autouse=True)
def _site_as_it_was(site):
    """Each test leaves s1 enrolled and let in at both doors. Where a test failed half-way and left a local
    revocation behind, it is undone as the product undoes one (the desk's next list without s1, then s1 again), so
    that one failure is reported once instead of in every test after it."""
    yield
    if any((site["tmp"] / n / "people.gallery.revoked").exists() for n in DOORS):
        _desk(site, remove="s1")
        _publish(site)
        wait_for(lambda: not any((site["tmp"] / n / "people.gallery.revoked").exists() for n in DOORS), 20)
        _readmit(site)


def test_published_removal_reaches_every_online_door_within_5_s(site):
    version = _desk(site, remove="s1")
    t0 = _publish(site)
    took = {}
    for n in DOORS:
        e = _effect(site, n, t0 - 1.0, f"version {version},")
        assert e is not None and e["event"] == "gallery_installed", (n, _logs(site))
        took[n] = _wall(e) - t0
    print(f"\npublished removal -> installed: {', '.join(f'{n} {s:.2f} s' for n, s in took.items())}")
    assert max(took.values()) <= PUBLISHED_BOUND_S, took
    for n in DOORS:
        assert not any(d["event"] == "granted" for d in _denied_after(site, n, t0 + took[n])), n
    _readmit(site)


def test_finding1_local_removal_on_a_signed_door_denies_within_2_s_and_survives_a_restart(site):
    front, side = (site["tmp"] / n / "people.gallery" for n in DOORS)
    # the CLI on door front
    t0 = time.time()
    assert main(["people", "remove", "s1", "--gallery", str(front)]) == 0
    t1 = time.time()
    assert front.with_name("people.gallery.sig").exists()
    e = _effect(site, "front", t0, "1 enrolled", timeout_s=10, local=True)  # the door's own audit log
    failed = [x["detail"] for x in _events(site, "front", ("reload_failed",), t0, local=True)]
    assert e is not None and not failed, (failed, _events(site, "front", since=t0 - 5, local=True), _logs(site))
    cli_s = _wall(e) - t1
    # the admin page on door side
    from edgeface.config import load_config
    from edgeface.device.admin.accounts import Accounts

    cfg = load_config(site["cfgs"]["side"])
    Accounts(cfg.admin.accounts).add("alice", PASSWORD)
    from adminkit import logged_in

    c = logged_in(cfg)
    page = c.get("/people/s1/remove")
    t2 = time.time()
    r = c.post("/people/s1/remove", data={"csrf": csrf_of(page.text)})
    t3 = time.time()
    assert r.status_code == 303, r.text
    people = c.get("/people").text  # (a bare "s1" may occur in the page's random CSRF token)
    assert "no longer lets them in" in people and 'id="person-s1"' not in people and 'id="person-s2"' in people
    e2 = _effect(site, "side", t2, "1 enrolled", timeout_s=10, local=True)
    assert e2 is not None, (_events(site, "side", since=t2 - 5, local=True), _logs(site))
    page_s = _wall(e2) - t3
    print(f"\nlocal removal -> the door's list changed: CLI (front) {cli_s:.2f} s, admin page (side) {page_s:.2f} s")
    assert cli_s <= LOCAL_BOUND_S and page_s <= LOCAL_BOUND_S
    for n, t in (("front", _wall(e)), ("side", _wall(e2))):
        assert not any(d["event"] == "granted" for d in _denied_after(site, n, t)), \
            (n, [(x["event"], x["wall"][11:23], x.get("detail")) for x in _events(site, n, since=t0 - 2)])
    # adding on a signed door says it needs the desk's signature (CLI and page)
    assert main(["people", "rename", "s2", "Bea", "--gallery", str(front)]) == 1
    assert c.get("/people/add").status_code == 200
    refused = c.post("/people/add", data={"csrf": csrf_of(c.get("/people/add").text), "name": "Eve"},
                     files={"photo": ("p.png", b"x", "image/png")})
    assert refused.status_code == 409 and "signed gallery" in refused.text
    # a restart keeps the door up, and s1 out
    t4 = _restart(site, "front")
    assert wait_for(lambda: _events(site, "front", ("started",), t4), 90), _logs(site)
    assert not any(d["event"] == "granted" for d in _denied_after(site, "front", t4))
    # the desk's next list without s1 makes the local revocations unnecessary; they go
    _desk(site, remove="s1")
    t5 = _publish(site)
    for n in DOORS:
        assert wait_for(lambda: _events(site, n, ("gallery_installed",), t5 - 1.0), 20), _logs(site)
        assert wait_for(lambda: not (site["tmp"] / n / "people.gallery.revoked").exists(), 5), n
    _readmit(site)


def test_finding2_a_list_signed_for_another_site_is_never_installed(site):
    key = keys.load_private_key(site["private"])
    lab = site["tmp"] / "lab.gallery"
    g = Gallery.load(site["desk"])
    g.remove("s1")  # lab's people: s2 only
    g.version = 98
    g.save(lab)  # version 99
    payload, _ = envelope_for(lab, key, "lab")
    t0 = time.time()
    client = MqttClient(site["broker"].url).start().wait_connected(10)
    try:  # republished retained on hq's topic by any client
        client.publish_and_wait(gallery_topic("edgeface", SITE), payload, retain=True)
    finally:
        client.stop()
    for n in DOORS:
        def outcome():
            return [e for e in _events(site, n, ("gallery_refused", "gallery_installed"), t0 - 0.5)
                    if "lab" in e["detail"] or "version 99," in e["detail"]]
        assert wait_for(outcome, 20), _logs(site)
        assert [e["event"] for e in outcome()] == ["gallery_refused"], outcome()
    for n in DOORS:  # hq's employee s1 is still let in
        assert wait_for(lambda: _grants(site, n, t0 + 1.0), 30), _logs(site)
    # hq's own next version installs (it is not refused as a replay of version 99)
    version = _desk(site)
    t1 = _publish(site)
    for n in DOORS:
        assert _effect(site, n, t1 - 1.0, f"version {version},") is not None, _logs(site)


def test_finding3_a_damaged_local_gallery_never_blocks_a_signed_removal(site):
    path = site["tmp"] / "front" / "people.gallery"
    with open(path, "r+b") as f:  # one flipped byte, in place (the gate does not notice until it reads it)
        f.seek(-40, os.SEEK_END)
        byte = f.read(1)
        f.seek(-40, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0x01]))
    version = _desk(site, remove="s1")
    t0 = _publish(site)
    e = _effect(site, "front", t0 - 1.0, f"version {version},")
    assert e is not None and e["event"] == "gallery_installed", _logs(site)
    print(f"\ndamaged local gallery, published removal -> installed at front: {_wall(e) - t0:.2f} s")
    assert _events(site, "front", ("gallery_quarantined",), t0 - 1.0), _logs(site)
    assert list(path.parent.glob("people.gallery.quarantined-*"))
    assert not any(d["event"] == "granted" for d in _denied_after(site, "front", _wall(e)))
    # damaged again, then a restart: the door comes up with nobody enrolled and installs the site's list
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    t1 = _restart(site, "front")
    assert wait_for(lambda: _events(site, "front", ("started",), t1), 90), _logs(site)
    e = _effect(site, "front", t1, f"version {version},", timeout_s=30)
    assert e is not None, _logs(site)
    assert not any(d["event"] == "granted" for d in _denied_after(site, "front", t1))
    _readmit(site)


def test_finding4_a_withheld_update_makes_the_door_stale_at_reconnect(site):
    proxy = site["proxy"]
    proxy.cut()  # side is offline
    t_cut = time.time()
    assert wait_for(lambda: _events(site, "side", ("fleet_disconnected",), t_cut - 1), 30) or True
    version = _desk(site, remove="s1")
    _publish(site)
    client = MqttClient(site["broker"].url).start().wait_connected(10)
    try:  # then an empty retained message replaces the removal
        client.publish_and_wait(gallery_topic("edgeface", SITE), b"", retain=True)
    finally:
        client.stop()
    time.sleep(1.0)
    proxy.restore()
    t0 = time.time()
    e = _effect(site, "side", t0 - 0.5, timeout_s=30)
    assert e is not None and e["event"] == "gallery_stale", _logs(site)
    assert wait_for(lambda: _events(site, "side", ("fleet_reconnected",), t0 - 0.5), 10)
    back = _wall(_events(site, "side", ("fleet_reconnected",), t0 - 0.5)[0])
    print(f"\nwithheld removal, offline door -> stale at reconnect: {_wall(e) - t0:.2f} s after the network came "
          f"back ({_wall(e) - back:+.2f} s from the door's fleet_reconnected event)")
    assert wait_for(lambda: _events(site, "side", ("gallery_withheld",), t0 - 0.5), 15), _logs(site)
    assert not any(d["event"] == "granted" for d in _denied_after(site, "side", _wall(e)))
    # the desk publishes again: side installs the removal and is fresh
    t1 = _publish(site)
    assert _effect(site, "side", t1 - 1.0, f"version {version},") is not None
    _readmit(site)


def test_finding4_max_gallery_age_denies_on_a_door_that_stays_offline(site):
    from edgeface.device.fleet.keys import load_private_key
    from edgeface.device.fleet.publisher import publish_fresh

    cfg = site["cfgs"]["side"]
    cfg.write_text(cfg.read_text().replace("threads = 1\n", f"threads = 1\nmax_gallery_age_s = {MAX_AGE_S}\n", 1))
    key = load_private_key(site["private"])
    desk_client = MqttClient(site["broker"].url).start().wait_connected(10)
    stop = []

    def refresh_loop():  # the desk vouches for its list every 2 s (as edgeface-fleet-refresh.timer does)
        while not stop:
            try:
                publish_fresh(desk_client, site["desk"], key, "edgeface", SITE, 10)
            except Exception:  # the desk's file changed and is not published yet: nothing to vouch for
                pass
            time.sleep(2.0)

    import threading

    refresher = threading.Thread(target=refresh_loop, daemon=True)
    refresher.start()
    try:
        t_start = _restart(site, "side")
        assert wait_for(lambda: _grants(site, "side", t_start), 90), _logs(site)
        t_ok = time.time()
        time.sleep(MAX_AGE_S + 2)  # fresh statements keep the door fresh past max_gallery_age_s
        assert not _events(site, "side", ("gallery_stale",), t_ok), _logs(site)
        assert _grants(site, "side", t_ok)
        site["proxy"].cut()
        t_cut = time.time()
        version = _desk(site, remove="s1")
        t0 = _publish(site)
        e = _effect(site, "side", t0, timeout_s=MAX_AGE_S + 10, local=True)  # offline: its own audit log
        assert e is not None and e["event"] == "gallery_stale", _logs(site)
        print(f"\nremoval published while side is offline -> side stale (max_gallery_age_s {MAX_AGE_S:g}, statements "
              f"every 2 s): {_wall(e) - t0:.2f} s after publishing, {_wall(e) - t_cut:.2f} s after the cut")
        assert _wall(e) - t_cut <= MAX_AGE_S + 1.5
        assert not any(d["event"] == "granted" for d in _denied_after(site, "side", _wall(e), local=True))
        site["proxy"].restore()
        t1 = time.time()
        e = _effect(site, "side", t1, f"version {version},", timeout_s=30)
        assert e is not None, _logs(site)
    finally:
        stop.append(True)
        refresher.join(5)
        desk_client.stop()
    _readmit(site)


def test_finding6_no_pin_can_be_recovered_from_the_published_gallery_or_people_list(site, monkeypatch, capsys):
    import hashlib

    secret_dir = site["tmp"] / "desk-credentials"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "pin-secret").write_text(os.urandom(32).hex() + "\n")
    os.chmod(secret_dir / "pin-secret", 0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(secret_dir))  # the desk's systemd credential
    pins = iter(["4711", "4711"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(pins))
    assert main(["people", "set", "s2", "--pin-prompt", "--gallery", str(site["desk"])]) == 0
    capsys.readouterr()
    _publish(site)
    got = []
    client = MqttClient(site["broker"].url, subscriptions=((gallery_topic("edgeface", SITE), 1),),
                        on_message=lambda t, p: got.append(p)).start()
    try:  # any subscriber of the site's gallery (a door, a stolen door credential)
        assert wait_for(lambda: got, 10)
    finally:
        client.stop()
    data, _ = signing.unpack_envelope(got[-1])
    record = Gallery.from_bytes(data).find("s2").attributes["access"]["pin"]
    capsys.readouterr()
    assert main(["people", "list", "--json", "--gallery", str(site["desk"])]) == 0
    listed = capsys.readouterr().out
    candidates = [f"{i:04d}" for i in range(4700, 4720)]  # 20 guesses, the PIN among them

    def recovered(rec) -> list[str]:
        if not {"salt", "hash", "n", "r", "p"} <= set(rec):
            return []
        want = bytes.fromhex(rec["hash"])
        return [c for c in candidates if hashlib.scrypt(c.encode(), salt=bytes.fromhex(rec["salt"]), n=rec["n"],
                                                        r=rec["r"], p=rec["p"], dklen=len(want)) == want]

    listed_pin = next(p for p in json.loads(listed)["people"] if p["id"] == "s2")["attributes"]["access"]["pin"]
    print(f"\nPINs recovered from the MQTT gallery: {len(recovered(record))} of 1; from people list --json: "
          f"{len(recovered(listed_pin))} of 1")
    assert recovered(record) == [] and recovered(listed_pin) == []
    assert record["hash"] not in listed
