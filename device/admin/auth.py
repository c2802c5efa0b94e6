"""Sessions, CSRF tokens and login rate limits for the admin page.

* A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie (Secure unless the page is served
  with ``--insecure-http``) that expires after ``session_lifetime_s``, on the server as well as in the browser.
  Sessions live in memory: restarting the page logs everybody out.
* Every state-changing form carries the session's CSRF token; the login form, before there is a session, a
  token bound to a short-lived pre-login cookie (double submit). Tokens are compared in constant time.
* Failed logins are counted per (user, address): after ``max_failed_logins`` within ``login_window_s`` that
  pair is refused, even with the right password, until the window has passed.

Time is the monotonic clock (an NTP step neither extends nor ends a session).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

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


class LoginLimiter:
    """Failed logins per (user, address) in a sliding window."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_failures = int(max_failures)
        self.window_s = float(window_s)
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def blocked_for(self, user: str, address: str) -> float:
        """Seconds until ``user`` may try again from ``address`` (0: not blocked)."""
        with self._lock:
            q = self._recent((user, address))
            if len(q) < self.max_failures:
                return 0.0
            return max(0.0, q[0] + self.window_s - self.clock())

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            self._recent((user, address)).append(self.clock())

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user, address), None)
