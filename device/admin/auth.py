"""Sessions, CSRF tokens and login rate limits for the admin page.

* A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie (Secure unless the page is served
  with ``--insecure-http``) that expires after ``session_lifetime_s``, on the server as well as in the browser.
  Sessions live in memory: restarting the page logs everybody out.
* Every state-changing form carries the session's CSRF token; the login form, before there is a session, a
  token bound to a short-lived pre-login cookie (double submit). Tokens are compared in constant time.
* Failed logins are counted per user name (from any address) and per address (whatever the name; an IPv6
  address counts as its /64): after ``max_failed_logins`` failures of one name, or
  ``max_failed_logins_per_address`` from one address, within ``login_window_s``, that name (from every address,
  even with the right password) or that address is refused until the window has passed. An attempt is counted
  *before* its password is checked and uncounted when it succeeds, so a burst of concurrent guesses cannot
  slip past the limit, and a process killed mid-check keeps it. The counts are kept in the ``[admin] log``
  database (table ``login_failures``), so restarting the page does not clear them; they are timed on the wall
  clock for that reason (a clock step moves a window's end, never the count). Unknown names are counted like
  known ones: the answers do not tell which names exist.

Sessions are timed on the monotonic clock (an NTP step neither extends nor ends a session).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

SESSION_COOKIE = "edgeface_session"
LOGIN_COOKIE = "edgeface_login"
LOGIN_COOKIE_S = 900


@dataclass
class Session:
    token: str
    user: str
    csrf: str
    expires: float
    pending: dict = field(default_factory=dict)  # enrollments checked but not saved yet: id -> data


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class Sessions:
    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic):
        self.lifetime_s = float(lifetime_s)
        self.clock = clock
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str) -> Session:
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), self.clock() + self.lifetime_s)
        with self._lock:
            self._drop_expired()
            self._by_token[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._by_token.get(token)
            if s is not None and self.clock() >= s.expires:
                del self._by_token[token]
                return None
            return s

    def end(self, token: str | None) -> Session | None:
        with self._lock:
            return self._by_token.pop(token, None) if token else None

    def _drop_expired(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._by_token.items() if now >= s.expires]:
            del self._by_token[token]


#: at most this many names and addresses are tracked at once; beyond, every attempt is refused (fail secure)
MAX_TRACKED = 20_000


def address_key(address: str) -> str:
    """What the per-address limit counts: the address, an IPv6 one as its /64 (one host owns a whole /64)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return str(address)
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginLimiter:
    """Failed logins per user name and per address in a sliding window, kept in SQLite (``db``; None: memory only).

    :meth:`begin` counts an attempt before its password is checked (or refuses it); :meth:`succeeded` takes the
    count back. A database that cannot be written is logged and the limits go on in memory."""

    def __init__(self, max_failures: int, window_s: float, db: str | Path | None = None,
                 max_per_address: int | None = None, clock: Callable[[], float] = time.time):
        self.max_failures = int(max_failures)
        self.max_per_address = int(max_per_address if max_per_address is not None else 4 * self.max_failures)
        self.window_s = float(window_s)
        self.clock = clock
        self._users: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._inserts = 0
        if db is not None:
            self._open(Path(db))

    # -- public -------------------------------------------------------------------------------------------
    def begin(self, user: str, address: str) -> tuple[float, tuple | None]:
        """(0, ticket) with the attempt counted as a failure, or (seconds to wait, None) when the name or the
        address is limited (nothing counted)."""
        now = self.clock()
        key = address_key(address)
        with self._lock:
            wait = max(self._wait(self._users, user, self.max_failures, now),
                       self._wait(self._addresses, key, self.max_per_address, now))
            if wait > 0:
                return wait, None
            if (user not in self._users and len(self._users) >= MAX_TRACKED) or (
                    key not in self._addresses and len(self._addresses) >= MAX_TRACKED):
                self._expire(now)
                if len(self._users) >= MAX_TRACKED or len(self._addresses) >= MAX_TRACKED:
                    return self.window_s, None
            self._users.setdefault(user, deque()).append(now)
            self._addresses.setdefault(key, deque()).append(now)
            return 0.0, (now, self._store(now, user, key))

    def succeeded(self, user: str, address: str, ticket: tuple) -> None:
        """The attempt :meth:`begin` counted (``ticket``) was the right password: it is not a failure."""
        key = address_key(address)
        t, row = ticket
        with self._lock:
            for table, k in ((self._users, user), (self._addresses, key)):
                q = table.get(k)
                if q is not None:
                    try:
                        q.remove(t)
                    except ValueError:  # already expired
                        pass
                    if not q:
                        del table[k]
            if row is not None:
                self._sql("DELETE FROM login_failures WHERE id = ?", (row,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- internals ----------------------------------------------------------------------------------------
    def _wait(self, table: dict, key: str, limit: int, now: float) -> float:
        q = table.get(key)
        if not q:
            return 0.0
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del table[key]
            return 0.0
        if len(q) < limit:
            return 0.0
        return max(0.0, q[-limit] + self.window_s - now) or 1e-3

    def _expire(self, now: float) -> None:
        for table in (self._users, self._addresses):
            for k in [k for k, q in table.items() if not q or q[-1] <= now - self.window_s]:
                del table[k]

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=5.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS login_failures (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "unix REAL NOT NULL, user TEXT NOT NULL, address TEXT NOT NULL)")
            now = self.clock()
            conn.execute("DELETE FROM login_failures WHERE unix <= ?", (now - self.window_s,))
            rows = conn.execute("SELECT unix, user, address FROM login_failures ORDER BY unix").fetchall()
        except sqlite3.Error as exc:
            log.error("login limits: cannot use %s (%s): the limits are kept in memory only", path, exc)
            return
        for unix, user, key in rows[-MAX_TRACKED:]:
            self._users.setdefault(user, deque()).append(float(unix))
            self._addresses.setdefault(key, deque()).append(float(unix))
        self._conn = conn

    def _store(self, now: float, user: str, key: str) -> int | None:
        cur = self._sql("INSERT INTO login_failures (unix, user, address) VALUES (?, ?, ?)", (now, user, key))
        self._inserts += 1
        if self._inserts % 100 == 0:
            self._sql("DELETE FROM login_failures WHERE unix <= ?", (now - self.window_s,))
        return None if cur is None else cur.lastrowid

    def _sql(self, query: str, args: tuple):
        if self._conn is None:
            return None
        try:
            return self._conn.execute(query, args)
        except sqlite3.Error as exc:  # the limits go on in memory; the page stays up
            log.error("login limits: database write failed: %s", exc)
            return None
