"""sd_notify(3) in a few lines of socket code: tell systemd the gate is ready, alive, reloading or stopping.

systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for the abstract namespace) to a
``Type=notify`` service; each notification is one datagram of ``KEY=VALUE`` lines. ``WATCHDOG_USEC`` is the
watchdog timeout; ``WATCHDOG_PID``, when set, names the process the watchdog is meant for.

Without ``NOTIFY_SOCKET`` every method is a silent no-op, so the gate runs the same by hand, in tests and under
systemd. A failed send is logged once and never raises: the door loop must not die because systemd is busy.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: a send to a busy systemd waits at most this long, so the door loop is never held up for longer
SEND_TIMEOUT_S = 1.0


def _address(path: str) -> str | None:
    """The socket address for ``NOTIFY_SOCKET``: ``@name`` is the abstract namespace (a leading NUL byte)."""
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    return None  # e.g. systemd 254+ "vsock:..." addresses, which a gate on a Pi or Jetson never gets


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    """``WATCHDOG_USEC`` as sd_watchdog_enabled(3) reads it: None when unset, invalid, zero, or meant for
    another process (``WATCHDOG_PID`` names a different pid)."""
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != pid:
                return None
        except ValueError:
            return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


class Notifier:
    """Sends service state to systemd over ``NOTIFY_SOCKET``; does nothing where there is none."""

    def __init__(self, socket_path: str | None = None, watchdog_usec: int | None = None):
        self.socket_path = socket_path or None
        self._address = _address(self.socket_path) if self.socket_path else None
        if self.socket_path and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a path or @abstract name; systemd notifications are off", self.socket_path)
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, pid: int | None = None) -> "Notifier":
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (default: ``os.environ``)."""
        environ = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        return cls(environ.get("NOTIFY_SOCKET"), _watchdog_usec(environ, pid))

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify (the gate runs under a ``Type=notify`` unit)."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half the watchdog timeout, as sd_watchdog_enabled(3) advises;
        None when systemd expects no keep-alive from this process."""
        if not self.enabled or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2e6

    # -- the messages the gate sends -------------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) finished: camera, model and gallery loaded and one inference ran."""
        return self.notify("READY=1", *([_status(status)] if status is not None else []))

    def status(self, text: str) -> bool:
        """A one-line state shown by ``systemctl status`` (frame rate, last decision)."""
        return self.notify(_status(text))

    def watchdog(self) -> bool:
        """Keep-alive: send only while frames arrive and inferences complete, so a stall lets the watchdog fire."""
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """A reload began (SIGHUP). ``MONOTONIC_USEC`` is what systemd 253+ ``Type=notify-reload`` requires
        to match the reload to this message; older systemd ignores it. Follow with ``ready()``."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """Shutdown began; the relay is being released."""
        return self.notify("STOPPING=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (a slow first model load on a Pi)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    # -- transport -------------------------------------------------------------------------------------

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram. True when sent; False when disabled or the send failed."""
        if self._address is None or not fields:
            return False
        data = "\n".join(fields).encode("utf-8")
        try:
            with self._lock:
                if self._sock is None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    sock.settimeout(SEND_TIMEOUT_S)
                    self._sock = sock
                self._sock.sendto(data, self._address)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %s: %s (further failures are not logged)", self.socket_path, exc)
            else:
                log.debug("cannot notify systemd at %s: %s", self.socket_path, exc)
            return False

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Notifier(socket_path={self.socket_path!r}, watchdog_usec={self.watchdog_usec!r})"


def _status(text: str) -> str:
    """One ``STATUS=`` line: a newline would end the field and start a bogus assignment."""
    return "STATUS=" + " ".join(str(text).splitlines())
