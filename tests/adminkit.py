"""Test helpers for the admin page: a door (bundle around the reference ONNX, a gallery of real faces, a clip
for the camera, a gate config with an [admin] section and one account) under a tmp dir, and a logged-in
Starlette TestClient. Nothing from ../shared is copied into the repository."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from fleetkit import free_port
from gatekit import Appearance, compose_video, enroll, make_bundle, write_config

PASSWORD = "correct horse battery"
THRESHOLD = 0.40


def photo(root: Path, ident: str, i: int) -> Path:
    return sorted((root / ident).iterdir())[i]


def make_door(tmp: Path, reference_onnx: Path, detector, orl_dir: Path, admin: str = "", people=("s1",),
              bundle: Path | None = None, key: str = "onnx_fp32") -> dict:
    """A door with ``people`` (ORL identities, photo 0 each) enrolled and an account ``alice``; the model is the
    reference ONNX in a calibrated bundle, or ``bundle`` (e.g. the default dlib one) with model ``key``."""
    from edgeface.config import load_config
    from edgeface.device.admin.accounts import Accounts

    bundle = bundle or make_bundle(tmp / "bundle", reference_onnx, THRESHOLD)
    gallery = tmp / "people.gallery"
    enroll(gallery, bundle, detector, {p: photo(orl_dir, p, 0) for p in people}, key=key)
    clip = tmp / "door.avi"
    compose_video(clip, [Appearance("s5", photo(orl_dir, "s5", 1), 1.0, 300, (0.4, 0.3), (0.5, 0.4))], fps=5.0,
                  gap_s=0.0)  # the first frame shows a face (the snapshot)
    extra = f"""
[relay]
backend = "mock"
pulse_s = 0.5

[audit]
path = "{tmp / 'audit.db'}"

[admin]
accounts = "{tmp / 'admin' / 'accounts.json'}"
log = "{tmp / 'admin' / 'admin.db'}"
relay_test_s = 0.3
{admin}
"""
    config = write_config(tmp / "gate.toml", bundle, gallery, clip, detector.model_path, extra, key=key)
    cfg = load_config(config)
    Accounts(cfg.admin.accounts).add("alice", PASSWORD)
    return dict(tmp=tmp, bundle=bundle, gallery=gallery, clip=clip, config=config, cfg=cfg)


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def client(cfg, detector=None, address: str = "127.0.0.1", **kw):
    from starlette.testclient import TestClient

    from edgeface.device.admin.app import create_app

    app = create_app(cfg, **kw)  # ``detector`` is unused: the page's model object builds its own from [detector]
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False, follow_redirects=False,
                      client=(address, 50000))


def login(c, user: str = "alice", password: str = PASSWORD):
    page = c.get("/login")
    return c.post("/login", data={"csrf": csrf_of(page.text), "username": user, "password": password})


def logged_in(cfg, detector=None, **kw):
    c = client(cfg, detector, **kw)
    r = login(c)
    assert r.status_code == 303 and r.headers["location"] == "/people", r.text
    return c


@contextmanager
def served(app):
    """``app`` served by a real uvicorn on a free localhost port, in a thread: yields its URL; stopped after."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{srv.config.port}"
    finally:
        srv.should_exit = True
        thread.join(10)
