"""Login limits of the admin page against the attacks of issue 23: per user name across addresses, per address
across names, kept across a restart (the [admin] log database), counted before the hash so a concurrent burst
cannot slip past, a bounded number of argon2 checks at a time, unknown names computing nothing. The page is the
real Starlette app with real argon2 accounts (no model needed: only /login is used)."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("starlette", reason="the admin extra (starlette, uvicorn, jinja2, argon2-cffi) is not installed")

from adminkit import PASSWORD, csrf_of  # noqa: E402

from edgeface.config import parse_config  # noqa: E402


def make_cfg(tmp_path, extra: str = ""):
    from edgeface.device.admin.accounts import Accounts

    cfg = parse_config(f"""
[model]
bundle = "{tmp_path / 'bundle'}"
gallery = "{tmp_path / 'people.gallery'}"
[camera]
source = "0"
[audit]
path = "{tmp_path / 'audit.db'}"
[admin]
accounts = "{tmp_path / 'admin' / 'accounts.json'}"
log = "{tmp_path / 'admin' / 'admin.db'}"
max_failed_logins = 5
max_failed_logins_per_address = 10
{extra}
""")
    accounts = Accounts(cfg.admin.accounts)
    for name in ("admin", "alice"):
        accounts.add(name, PASSWORD)
    return cfg


def page(cfg, address: str):
    from starlette.testclient import TestClient

    from edgeface.device.admin.app import create_app

    app = create_app(cfg)
    return app, TestClient(app, base_url="https://testserver", raise_server_exceptions=False,
                           follow_redirects=False, client=(address, 50000))


def attempt(c, user: str, password: str) -> int:
    token = csrf_of(c.get("/login").text)
    return c.post("/login", data={"csrf": token, "username": user, "password": password}).status_code


def test_the_right_password_from_a_new_address_is_refused_while_the_name_is_locked(tmp_path):
    """Issue 23: 20 guesses against `admin` from 4 addresses, then the right password from a 5th, succeeded."""
    cfg = make_cfg(tmp_path)
    codes = [attempt(page(cfg, f"10.0.0.{1 + i % 4}")[1], "admin", f"guess {i}") for i in range(20)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert attempt(page(cfg, "10.0.0.5")[1], "admin", PASSWORD) == 429
    assert attempt(page(cfg, "10.0.0.5")[1], "alice", PASSWORD) == 303  # another name is not held up


def test_one_address_guessing_over_many_names_is_limited(tmp_path):
    """Issue 23: 200 attempts over 40 user names from one address were never limited."""
    cfg = make_cfg(tmp_path)
    app, c = page(cfg, "192.0.2.7")
    codes = [attempt(c, f"user{i % 40}", "guess") for i in range(200)]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
    assert app.state.admin.checks.stats["hashed"] + app.state.admin.checks.stats["unknown"] == 10
    assert attempt(c, "alice", PASSWORD) == 429  # even the right password, from that address
    assert attempt(page(cfg, "192.0.2.8")[1], "alice", PASSWORD) == 303
    # an IPv6 host owns its /64: hopping addresses inside it does not help
    v6 = [attempt(page(cfg, f"2001:db8:1:2::{i:x}")[1], f"name{i}", "guess") for i in range(1, 13)]
    assert v6[:10] == [401] * 10 and v6[10:] == [429, 429]


def test_the_limits_survive_a_restart(tmp_path):
    """Issue 23: after 6 failures a restart cleared the limit. The counts are in the [admin] log database."""
    cfg = make_cfg(tmp_path)
    _, c = page(cfg, "10.0.0.1")
    assert [attempt(c, "admin", "wrong") for _ in range(5)] == [401] * 5
    _, c = page(cfg, "10.0.0.9")  # a new app on the same files: what a restart of the page gives
    assert attempt(c, "admin", PASSWORD) == 429
    import sqlite3

    rows = sqlite3.connect(cfg.admin.log).execute("SELECT user FROM login_failures").fetchall()
    assert [r[0] for r in rows] == ["admin"] * 5


def test_a_successful_login_is_not_counted_and_the_window_ends(tmp_path):
    from edgeface.device.admin.auth import LoginLimiter

    now = [1000.0]
    limiter = LoginLimiter(2, 60.0, db=tmp_path / "limits.db", clock=lambda: now[0])
    for _ in range(5):  # five right passwords in a row
        wait, ticket = limiter.begin("alice", "10.0.0.1")
        assert wait == 0
        limiter.succeeded("alice", "10.0.0.1", ticket)
    assert limiter.begin("alice", "10.0.0.1")[0] == 0 and limiter.begin("alice", "10.0.0.2")[0] == 0
    wait, _ = limiter.begin("alice", "10.0.0.3")
    assert wait == pytest.approx(60.0)
    now[0] += 60.0
    assert limiter.begin("alice", "10.0.0.3")[0] == 0 and limiter.begin("alice", "10.0.0.5")[0] == 0
    again = LoginLimiter(2, 60.0, db=tmp_path / "limits.db", clock=lambda: now[0])  # restarted
    assert again.begin("alice", "10.0.0.4")[0] > 0


def test_a_concurrent_burst_is_counted_before_hashing(tmp_path):
    """40 wrong passwords for one name at once: each attempt is counted before its hash, so at most
    max_failed_logins hashes are computed and the rest are refused without one."""
    cfg = make_cfg(tmp_path)
    app, _ = page(cfg, "10.0.0.1")
    from starlette.testclient import TestClient

    codes, start = [], threading.Barrier(40)

    def one(i):
        c = TestClient(app, base_url="https://testserver", raise_server_exceptions=False, follow_redirects=False,
                       client=(f"10.1.{i}.1", 50000))
        token = csrf_of(c.get("/login").text)
        start.wait()
        codes.append(c.post("/login", data={"csrf": token, "username": "admin", "password": f"x{i}"}).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = app.state.admin.checks.stats
    assert sorted(set(codes)) <= [401, 429, 503] and codes.count(401) <= 5, codes
    assert stats["hashed"] <= 5 and stats["hashed"] == codes.count(401)


def test_password_checks_are_bounded_and_unknown_names_compute_nothing(tmp_path, monkeypatch):
    from edgeface.device.admin.accounts import Accounts, PasswordChecks

    accounts = Accounts(tmp_path / "accounts.json")
    accounts.add("alice", PASSWORD)
    checks = PasswordChecks(accounts, slots=1, queue=1)
    assert checks.verify("alice", PASSWORD) is True and checks.verify("alice", "wrong") is False
    hashed = checks.stats["hashed"]
    import argon2

    calls = []
    real_hash = argon2.PasswordHasher.hash
    monkeypatch.setattr(argon2.PasswordHasher, "hash", lambda self, pw, **kw: calls.append(pw) or real_hash(self, pw))
    assert [checks.verify(f"nobody{i}", "guess") for i in range(3)] == [False] * 3
    assert calls == [] and checks.stats["hashed"] == hashed  # no hash, no 64 MiB, for a name that does not exist
    # one check running, one waiting: a third is answered "busy" at once
    release, entered = threading.Event(), threading.Event()
    real_check = Accounts.check

    def slow_check(entry, password):
        entered.set()
        release.wait(10)
        return real_check(entry, password)

    monkeypatch.setattr(Accounts, "check", staticmethod(slow_check))
    results = []
    running = threading.Thread(target=lambda: results.append(checks.verify("alice", PASSWORD)))
    running.start()
    assert entered.wait(10)
    waiting = threading.Thread(target=lambda: results.append(checks.verify("alice", "wrong")))
    waiting.start()
    for _ in range(200):
        if checks._in_flight == 2:
            break
        threading.Event().wait(0.01)
    assert checks.verify("alice", PASSWORD) is None and checks.stats["busy"] == 1
    release.set()
    running.join()
    waiting.join()
    assert sorted(results) == [False, True]


def test_a_busy_page_answers_503_and_counts_nothing(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path)
    app, c = page(cfg, "10.0.0.1")
    monkeypatch.setattr(app.state.admin.checks, "verify", lambda name, password: None)
    assert [attempt(c, "admin", PASSWORD) for _ in range(8)] == [503] * 8  # nothing checked: nothing counted
    monkeypatch.undo()
    assert attempt(c, "admin", PASSWORD) == 303


def logged_in_page(cfg, address: str = "127.0.0.1"):
    app, c = page(cfg, address)
    assert attempt(c, "alice", PASSWORD) == 303
    token = csrf_of(c.get("/people/add").text)
    return app, c, token


def test_a_png_bomb_is_refused_from_its_header_before_the_model_is_even_built(tmp_path):
    """Issue 23: an 874 KB PNG of 30000 x 30000 px took the page to 5,351 MiB for 13.9 s before a 422. The one
    photo reader refuses it from its header; the page asks it before building the model (a bundle is not even
    needed to say no)."""
    from hostilekit import png_bomb

    cfg = make_cfg(tmp_path)
    app, c, token = logged_in_page(cfg)
    bomb = png_bomb(30000, 30000)
    assert len(bomb) < 1 << 20
    r = c.post("/people/add", data={"csrf": token, "name": "Bomb"}, files={"photo": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 422 and "megapixels a photo may have" in r.text
    assert app.state.admin.enroller._recognizer is None  # no model was loaded for it


def test_gif_tiff_and_a_cut_jpeg_are_refused_by_the_page_as_by_the_cli(tmp_path, celeba_dir):
    """One reader, one set of formats: GIF and TIFF are refused (415); a JPEG cut short with its end marker put
    back (libjpeg fills the rest grey) is corrupt (422). No model is needed to say so."""
    from hostilekit import as_format, cut_jpeg

    cfg = make_cfg(tmp_path)
    app, c, token = logged_in_page(cfg)
    jpeg = sorted((celeba_dir / "07201").glob("*.jpg"))[0].read_bytes()
    for fmt in ("GIF", "TIFF"):
        r = c.post("/people/add", data={"csrf": token, "name": "Ada"},
                   files={"photo": ("ada.jpg", as_format(jpeg, fmt), "image/jpeg")})
        assert r.status_code == 415 and f"{fmt} images are not accepted" in r.text, r.text
    r = c.post("/people/add", data={"csrf": token, "name": "Ada"},
               files={"photo": ("ada.jpg", cut_jpeg(jpeg), "image/jpeg")})
    assert r.status_code == 422 and "corrupt or truncated" in r.text
    assert app.state.admin.enroller._recognizer is None


def test_a_chunked_upload_without_length_stops_at_the_limit(tmp_path):
    """Issue 23: a chunked 300 MiB upload without Content-Length was spooled to /tmp in full before the 413. Now
    the page stops reading when the body passes upload_max_bytes (plus the form around it)."""
    import asyncio

    from hostilekit import stream_upload

    from edgeface.device.admin.app import UPLOAD_FORM_BYTES

    cfg = make_cfg(tmp_path, "upload_max_bytes = 2000000")
    app, c, token = logged_in_page(cfg)
    cookies = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    for total in (300 << 20, 3_000_000):
        out = asyncio.run(stream_upload(app, "/people/add", [(b"cookie", cookies.encode())],
                                        {"csrf": token, "name": "Big"}, "big.png", total))
        assert out["status"] == 413 and "too large" in out["body"], out["status"]
        assert out["read"] <= 2_000_000 + UPLOAD_FORM_BYTES + (64 << 10)  # read up to the limit, not 300 MiB
    # any other form: at most 1 MiB, declared or not (a form that takes no file says so sooner: 400)
    for path in ("/login", "/people/s1/rename"):
        out = asyncio.run(stream_upload(app, path, [(b"cookie", cookies.encode())], {"csrf": token, "name": "x"},
                                        "x.png", 50 << 20))
        assert out["status"] in (400, 413) and out["read"] <= (1 << 20) + (64 << 10), (path, out["status"])


def test_hashes_take_one_lane_and_19_mib_and_old_ones_are_upgraded_at_login(tmp_path):
    """A check never takes more than one core (one lane = one thread) nor more than 19 MiB; an account hashed with
    argon2-cffi's defaults (64 MiB, 4 lanes) still logs in and gets the lighter hash then."""
    import json

    from argon2 import PasswordHasher
    from argon2 import extract_parameters

    cfg = make_cfg(tmp_path)
    path = cfg.admin.accounts
    doc = json.loads(path.read_text())
    params = extract_parameters(doc["users"]["alice"]["hash"])
    assert (params.parallelism, params.memory_cost, params.time_cost) == (1, 19 * 1024, 2)
    doc["users"]["alice"]["hash"] = PasswordHasher().hash(PASSWORD)  # the old default
    path.write_text(json.dumps(doc))
    assert extract_parameters(doc["users"]["alice"]["hash"]).parallelism == 4
    _, c = page(cfg, "10.0.0.1")
    assert attempt(c, "alice", PASSWORD) == 303
    params = extract_parameters(json.loads(path.read_text())["users"]["alice"]["hash"])
    assert (params.parallelism, params.memory_cost) == (1, 19 * 1024)
    assert attempt(page(cfg, "10.0.0.2")[1], "alice", PASSWORD) == 303
