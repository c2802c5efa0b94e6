"""``edgeface admin --config FILE [--listen 127.0.0.1:8080]``: the door's local admin web page;
``edgeface admin add-user NAME --config FILE``: create an account (or set a new password).

Nothing heavy is imported at module level: starlette, uvicorn and argon2 (the ``admin`` extra) load in ``run``.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

NAME = "admin"
HELP = "the door's local admin web page (people, enrollment, events, status), or add-user"
USAGE = """%(prog)s --config FILE [--listen HOST:PORT] [--insecure-http]     (serve the page)
       %(prog)s add-user NAME --config FILE                                (create an account)"""
DESCRIPTION = """The door's local admin web page, behind a login: people (add from a photo or the door camera, badges,
PINs, schedules, remove, rename), who came in today, events, status and a relay test.

  edgeface admin add-user alice --config /etc/edgeface/gate.toml     # first, an account (asks for its password)
  edgeface admin --config /etc/edgeface/gate.toml                     # then serve the page on 127.0.0.1:8080
  ssh -L 8080:127.0.0.1:8080 pi@door                                  # and open http://127.0.0.1:8080 from a laptop

On a door, `edgeface install-service --admin` runs it as the service edgeface-admin (docs/deployment.md, 3a).
It listens on localhost by default, at niceness 10 (the door's loop comes first). Another address needs [admin]
tls_cert and tls_key in the config, or
--insecure-http (passwords and cookies then cross the network in clear: a warning is printed).
add-user prompts for the password, or reads one line from stdin when stdin is not a terminal."""

DEFAULT_LISTEN = "127.0.0.1:8080"
#: the page's niceness (at least): the door's loop, at 0, always gets the CPU first, whatever the page is asked to do
ADMIN_NICE = 10


def lower_priority(nice: int = ADMIN_NICE) -> int:
    """Run this process at niceness ``nice`` or lower priority (threads started afterwards inherit it; the unit
    file's Nice= does the same under systemd). Returns the niceness now in force."""
    import os

    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        return os.getpriority(os.PRIO_PROCESS, 0)
    except OSError:
        return nice


def add_arguments(p) -> None:
    p.add_argument("--config", metavar="FILE", help="gate config (TOML) with an [admin] section")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"address to serve on (default {DEFAULT_LISTEN})")
    p.add_argument("--insecure-http", action="store_true", help="serve plain HTTP on a non-localhost address (not recommended)")
    sub = p.add_subparsers(dest="admin_action", metavar="add-user", title="action (optional)",
                           description="without one, edgeface admin serves the page")
    add = sub.add_parser("add-user", help="create an admin account or set a new password")
    add.add_argument("name", help="account name")
    add.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="gate config (TOML)")


def parse_listen(text: str) -> tuple[str, int]:
    from edgeface.errors import ConfigError

    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_password() -> str:
    import getpass

    from edgeface.errors import EdgefaceError

    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise EdgefaceError("the passwords differ")
    if not password:
        raise EdgefaceError("no password given")
    return password


def run(args) -> int:
    from edgeface.config import load_config
    from edgeface.errors import ConfigError
    from edgeface.extras import require

    require("admin", "edgeface admin")  # starlette turns a missing jinja2 or python-multipart into an assert

    if not args.config:
        raise ConfigError("edgeface admin needs --config FILE (the gate config with an [admin] section)")
    cfg = load_config(args.config)
    if args.admin_action == "add-user":
        from edgeface.device.admin.accounts import Accounts

        Accounts(cfg.admin.accounts).add(args.name, read_password())
        print(f"account {args.name} saved in {cfg.admin.accounts} (mode 0600)")
        return 0
    host, port = parse_listen(args.listen)
    tls = cfg.admin.tls_cert is not None
    if not is_loopback(host) and not tls:
        if not args.insecure_http:
            raise ConfigError(f"--listen {args.listen}: another address than localhost needs [admin] tls_cert and "
                              "tls_key in the config (or --insecure-http)")
        print(f"edgeface admin: WARNING: serving plain HTTP on {host}:{port}: passwords and session cookies cross "
              "the network unencrypted; set [admin] tls_cert and tls_key", file=sys.stderr)
    lower_priority()  # before any thread starts: uvicorn's, the hashing threads, onnxruntime's all inherit it
    import uvicorn

    from edgeface.device.admin.app import create_app

    app = create_app(cfg, secure_cookies=tls or is_loopback(host), hsts=tls)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False, proxy_headers=False,
                ssl_certfile=str(cfg.admin.tls_cert) if tls else None,
                ssl_keyfile=str(cfg.admin.tls_key) if tls else None)
    return 0
