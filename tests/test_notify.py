"""Notifier against a real unix datagram socket, as systemd would receive it."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from edgeface.device.notify import Notifier


def _receive(sock: socket.socket) -> bytes:
    sock.settimeout(2.0)
    return sock.recv(4096)


def _nothing_pending(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


@pytest.fixture
def listener(tmp_path):
    """A datagram socket bound to a path, like systemd's notify socket. Unix socket paths are limited to
    108 bytes, so a deep tmp_path falls back to a short temporary directory."""
    path = tmp_path / "notify.sock"
    short_dir = None
    if len(os.fsencode(path)) > 100:
        short_dir = tempfile.mkdtemp(prefix="efn")
        path = Path(short_dir) / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield sock, str(path)
    sock.close()
    path.unlink(missing_ok=True)
    if short_dir:
        os.rmdir(short_dir)


def test_each_message_is_one_exact_datagram(listener):
    sock, path = listener
    with Notifier.from_env({"NOTIFY_SOCKET": path}) as n:
        assert n.enabled
        assert n.ready() is True
        assert _receive(sock) == b"READY=1"
        n.ready(status="serving, 9.8 fps")
        assert _receive(sock) == b"READY=1\nSTATUS=serving, 9.8 fps"
        n.status("granted alice\n0.71")
        assert _receive(sock) == b"STATUS=granted alice 0.71"
        n.watchdog()
        assert _receive(sock) == b"WATCHDOG=1"
        n.stopping()
        assert _receive(sock) == b"STOPPING=1"
        n.extend_timeout(30)
        assert _receive(sock) == b"EXTEND_TIMEOUT_USEC=30000000"
        assert _nothing_pending(sock)


def test_reloading_carries_the_monotonic_clock(listener):
    sock, path = listener
    n = Notifier(path)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = _receive(sock).decode().split("\n")
    assert lines[0] == "RELOADING=1"
    key, value = lines[1].split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after
    assert len(lines) == 2
    n.close()


def test_abstract_namespace_socket():
    name = f"edgeface-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.enabled
        assert n.ready()
        assert _receive(sock) == b"READY=1"
        n.close()
    finally:
        sock.close()


def test_without_notify_socket_nothing_happens(listener):
    sock, _ = listener
    n = Notifier.from_env({"WATCHDOG_USEC": "10000000"})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    for send in (n.ready, n.watchdog, n.reloading, n.stopping, lambda: n.status("x")):
        assert send() is False
    assert _nothing_pending(sock)
    n.close()


def test_from_real_environment(listener, monkeypatch):
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    n = Notifier.from_env()
    assert n.watchdog_interval_s == 5.0
    n.watchdog()
    assert _receive(sock) == b"WATCHDOG=1"
    n.close()


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}, 1.5),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "ten"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(env, interval):
    n = Notifier.from_env({"NOTIFY_SOCKET": "/run/systemd/notify", **env})
    assert n.watchdog_interval_s == interval


def test_send_failure_is_logged_once_and_never_raises(tmp_path, caplog):
    n = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert n.enabled
    with caplog.at_level(logging.WARNING, logger="edgeface.device.notify"):
        assert n.ready() is False
        assert n.watchdog() is False
        assert n.stopping() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "nobody-listens.sock" in warnings[0].getMessage()
    n.close()


def test_unsupported_address_disables_notifications(caplog):
    with caplog.at_level(logging.WARNING, logger="edgeface.device.notify"):
        n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled
    assert n.ready() is False
    assert "vsock:2:1234" in caplog.text
