"""The admin page at the HTTP level (Starlette TestClient over the real app, real faces, real models):
sessions, rate limits, CSRF, uploads, the gallery file after each change, security headers, error pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from adminkit import PASSWORD, client, csrf_of, logged_in, login, make_door, photo

from edgeface.gallery import Gallery

pytest.importorskip("starlette", reason="the admin extra (starlette, uvicorn, jinja2, argon2-cffi) is not installed")


@pytest.fixture(scope="module")
def door(tmp_path_factory, reference_onnx, detector, orl_dir):
    d = make_door(tmp_path_factory.mktemp("admin_http"), reference_onnx, detector, orl_dir,
                  admin="max_failed_logins = 3\nupload_max_bytes = 200000", people=("s1", "s2"))
    d["orl"] = orl_dir
    return d


@pytest.fixture
def c(door, detector):
    return logged_in(door["cfg"], detector)


def png(image) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


GET_PAGES = ["/", "/people", "/people/add", "/events", "/status", "/people/s1/remove", "/people/s1/rename",
             "/events/1/face"]
POST_PAGES = ["/people/add", "/people/snapshot", "/people/save", "/people/s1/remove", "/people/s1/rename",
              "/relay-test", "/logout"]


def test_every_page_but_login_and_healthz_needs_a_session(door):
    c = client(door["cfg"])
    for path in GET_PAGES:
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    for path in POST_PAGES:
        r = c.post(path, data={"csrf": "x"})
        assert r.status_code == 401, path
        assert "Log in" in r.text
    assert c.get("/healthz").text == "ok"
    assert c.get("/login").status_code == 200
    # a made-up session cookie is no session
    c.cookies.set("edgeface_session", "forged")
    assert c.get("/people").status_code == 303


def test_wrong_password_is_refused_and_the_nth_attempt_rate_limited(door):
    from edgeface.device.admin.accounts import Accounts

    Accounts(door["cfg"].admin.accounts).add("carol", PASSWORD)  # locked below: alice stays usable for the others
    c = client(door["cfg"], address="10.0.0.7")
    for _ in range(3):
        r = login(c, user="carol", password="wrong password!")
        assert r.status_code == 401 and "Wrong name or password" in r.text
        assert "edgeface_session" not in r.cookies
    r = login(c, user="carol")  # the right password, but the 4th attempt within the window
    assert r.status_code == 429 and "Too many failed logins" in r.text
    assert c.get("/people").status_code == 303
    # per user name, from any address: the right password from another address is refused as well
    assert login(client(door["cfg"], address="10.0.0.8"), user="carol").status_code == 429
    # another name from this address is not blocked (the per-address limit is higher)
    assert login(c, user="bob", password="whatever it is").status_code == 401


def test_login_needs_the_login_forms_token(door):
    c = client(door["cfg"])
    r = c.post("/login", data={"csrf": "guess", "username": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "edgeface_session" not in r.cookies


def test_cookies_are_httponly_samesite_secure_and_expire(door):
    c = client(door["cfg"])
    r = login(c)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
    assert f"Max-Age={int(door['cfg'].admin.session_lifetime_s)}" in cookie


def test_a_session_expires_on_the_server(door):
    from edgeface.device.admin.auth import Sessions

    now = [100.0]
    sessions = Sessions(60.0, clock=lambda: now[0])
    s = sessions.create("alice")
    assert sessions.get(s.token) is s
    now[0] += 59.9
    assert sessions.get(s.token) is s
    now[0] += 0.2
    assert sessions.get(s.token) is None


def test_a_post_without_a_valid_csrf_token_is_refused(c, door):
    before = door["gallery"].read_bytes()
    for data in ({}, {"csrf": "not the token"}):
        r = c.post("/people/s2/remove", data=data)
        assert r.status_code == 403 and "expired" in r.text
        r = c.post("/relay-test", data=data)
        assert r.status_code == 403
    assert door["gallery"].read_bytes() == before
    # the session's real token works
    token = csrf_of(c.get("/people/s2/rename").text)
    assert c.post("/people/s2/rename", data={"csrf": token, "name": "s2"}).status_code == 303


def _upload(c, name: str, data: bytes, filename: str = "photo.png"):
    token = csrf_of(c.get("/people/add").text)
    return c.post("/people/add", data={"csrf": token, "name": name}, files={"photo": (filename, data, "image/png")})


def test_uploads_that_cannot_be_used_get_a_clear_message(c, door):
    from edgeface.device.scene import background

    r = _upload(c, "Text", b"this is not an image at all\n" * 10, "notes.txt")
    assert r.status_code == 415 and "not an image" in r.text  # the one photo reader: JPEG, PNG, BMP, WebP, PGM
    r = _upload(c, "Huge", os.urandom(300_000))
    assert r.status_code == 413 and "too large" in r.text
    r = _upload(c, "Wall", png(background(3)))
    assert r.status_code == 422 and "no face found" in r.text
    # a real face that fails the quality gate: the verdict in words, and no save button
    img = cv2.imread(str(photo(door["orl"], "s1", 0)))
    blurred = cv2.GaussianBlur(cv2.resize(img, (276, 336)), (0, 0), 5)
    r = _upload(c, "Blurred", png(blurred))
    assert r.status_code == 422 and "face blurred: hold still" in r.text and 'id="save"' not in r.text
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[200:256, 300:346] = cv2.resize(img, (46, 56))
    r = _upload(c, "Far Away", png(canvas))
    assert r.status_code == 422 and "face too small: come closer" in r.text
    assert Gallery.load(door["gallery"]).find("Wall") is None


def test_enroll_a_real_face_then_remove_it_and_its_embeddings_leave_the_file(c, door):
    r = _upload(c, "Newcomer", photo(door["orl"], "s3", 0).read_bytes())
    assert r.status_code == 200 and "passed every quality check" in r.text, r.text
    assert "Identity checks passed" in r.text
    assert Gallery.load(door["gallery"]).find("Newcomer") is None  # nothing is saved before "save"
    token = csrf_of(r.text)
    pending = r.text.split('name="token" value="')[1].split('"')[0]
    r = c.post("/people/save", data={"csrf": token, "token": pending})
    assert r.status_code == 303
    g = Gallery.load(door["gallery"])
    person = g.find("Newcomer")
    assert person is not None and len(person.embeddings) == 1
    assert "Newcomer" in c.get("/people").text
    # the same face under another name: the safety checks refuse it, and saving it is refused unless overridden
    r = _upload(c, "Someone Else", photo(door["orl"], "s3", 1).read_bytes())
    assert "Refused by the identity checks" in r.text and "the same face under two names" in r.text
    assert "Newcomer" in r.text and 'id="allow"' in r.text
    pending = r.text.split('name="token" value="')[1].split('"')[0]
    r = c.post("/people/save", data={"csrf": token, "token": pending})
    assert r.status_code == 409 and "Not saved" in r.text
    assert Gallery.load(door["gallery"]).find("Someone Else") is None
    # the very same photo again for the same person: already enrolled, nothing to save
    r = _upload(c, "Newcomer", photo(door["orl"], "s3", 0).read_bytes())
    assert "already enrolled" in r.text and 'id="save"' not in r.text

    page = c.get(f"/people/{person.id}/remove")
    assert "Remove Newcomer?" in page.text
    r = c.post(f"/people/{person.id}/remove", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    g = Gallery.load(door["gallery"])  # in the file when the response returned
    assert g.find("Newcomer") is None and g.find(person.id) is None
    remaining = np.concatenate([p.embeddings for p in g.people])
    assert not np.any(np.all(np.isclose(remaining, person.embeddings[0], atol=1e-6), axis=1))
    assert "Newcomer is removed" in c.get("/people").text


def test_rename_with_a_clash_is_refused_and_audited_when_done(c, door):
    page = c.get("/people/s1/rename")
    r = c.post("/people/s1/rename", data={"csrf": csrf_of(page.text), "name": "s2"})
    assert r.status_code == 409 and "already enrolled" in r.text
    r = c.post("/people/s1/rename", data={"csrf": csrf_of(page.text), "name": "Ada"})
    assert r.status_code == 303 and Gallery.load(door["gallery"]).find("s1").name == "Ada"
    r = c.post("/people/s1/rename", data={"csrf": csrf_of(page.text), "name": "s1"})
    events = c.get("/events").text
    assert "person_renamed" in events and "by alice" in events and "admin_login" in events


def test_snapshot_from_the_configured_camera(c, door):
    page = c.get("/people/add")
    r = c.post("/people/snapshot", data={"csrf": csrf_of(page.text), "name": "Visitor"})
    assert r.status_code == 200 and "passed every quality check" in r.text, r.text


def test_relay_test_pulses_the_configured_relay_and_is_audited(c, door):
    """The [relay] backend is "mock" (gpiozero's MockFactory): the measured pulse is the configured test length."""
    page = c.get("/status")
    assert "Relay test" in page.text and "Gallery" in page.text and "threshold" in page.text.lower()
    r = c.post("/relay-test", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    msg = c.get("/status").text
    held = float(msg.split("unlocked for ")[1].split(" s")[0])
    assert held == pytest.approx(0.3, abs=0.05)
    assert "relay_test" in c.get("/events").text


def test_events_page_filters_and_charts(c, door):
    from edgeface.device.audit import AuditLog
    from edgeface.device.events import Event

    with AuditLog(door["cfg"].audit.path) as log:
        log.record(Event("granted", 1.0, person_id="s2", person="s2", score=0.71))
        log.record(Event("unknown", 2.0, score=0.12))
        log.record(Event("denied", 3.0, person_id="s1", person="s1", score=0.41))
    r = c.get("/events")
    assert r.status_code == 200 and "<svg" in r.text and 'class="granted"' in r.text
    only = c.get("/events", params={"kind": "granted"}).text
    table = only.split('id="events"')[1].split("</table>")[0]
    assert "granted" in table and "unknown" not in table and "denied" not in table
    person = c.get("/events", params={"person": "s1"}).text.split('id="events"')[1].split("</table>")[0]
    assert "denied" in person and "granted" not in person
    future = c.get("/events", params={"since": "2999-01-01"}).text
    assert "No events match the filter" in future
    assert c.get("/events", params={"since": "yesterday"}).status_code == 400
    assert "<img" not in r.text  # save_faces is off: no face images


def test_security_headers_on_every_response(c, door):
    for path in ("/people", "/events", "/status", "/people/add", "/login", "/no-such-page"):
        r = c.get(path)
        assert r.headers["x-frame-options"] == "DENY", path
        assert "default-src 'none'" in r.headers["content-security-policy"], path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff"
    assert c.get("/static/style.css").status_code == 200


def test_error_pages_show_no_traceback(door, tmp_path):
    cfg = door["cfg"].model_copy(update={"admin": door["cfg"].admin.model_copy(
        update={"accounts": tmp_path / "broken.json"})})
    (tmp_path / "broken.json").write_text("{ not json")
    c = client(cfg)
    r = login(c)
    assert r.status_code == 500
    assert "Traceback" not in r.text and "broken.json" not in r.text and "JSONDecodeError" not in r.text
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    r = c.get("/no-such-page")
    assert r.status_code == 404 and "Traceback" not in r.text


def test_logout_ends_the_session(door):
    c = logged_in(door["cfg"])
    page = c.get("/people")
    r = c.post("/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 200 and "logged out" in r.text
    stale = client(door["cfg"])
    assert c.get("/people").status_code == 303 and stale.get("/people").status_code == 303


def run_cli(*args, stdin: str = ""):
    return subprocess.run([sys.executable, "-m", "edgeface.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_add_user_reads_the_password_from_stdin_and_stores_a_hash(door, tmp_path):
    from edgeface.device.admin.accounts import Accounts

    r = run_cli("admin", "add-user", "bob", "--config", str(door["config"]), stdin="a long passphrase\n")
    assert r.returncode == 0, r.stderr
    path = door["cfg"].admin.accounts
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert "a long passphrase" not in text and "$argon2id$" in text
    assert Accounts(path).verify("bob", "a long passphrase") and not Accounts(path).verify("bob", "wrong")
    assert json.loads(text)["users"]["alice"]  # the other account is kept
    r = run_cli("admin", "add-user", "carol", "--config", str(door["config"]), stdin="short\n")
    assert r.returncode == 1 and "at least" in r.stderr and "Traceback" not in r.stderr


def test_admin_refuses_another_address_without_tls(door):
    r = run_cli("admin", "--config", str(door["config"]), "--listen", "0.0.0.0:8099")
    assert r.returncode == 78 and "tls_cert" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("admin", "--config", str(door["config"]), "--listen", "nonsense")
    assert r.returncode == 78 and "HOST:PORT" in r.stderr
