"""Admin accounts: a JSON file of names and argon2id hashes, written atomically with mode 0600.

There is no default account and no registration: accounts are created on the command line
(``edgeface admin add-user NAME``). A damaged accounts file is an error, never an empty file that lets
nobody (or anybody) in.

Hashes are argon2id with OWASP's parameters for it (19 MiB, 2 passes, one lane: :data:`ARGON2`): one lane means
one thread, so a password check never takes more than one core from the door, and 19 MiB bounds its memory. A
hash made with other parameters (argon2-cffi's default, 64 MiB and 4 lanes, before) still verifies and is
replaced by one with these at the next successful login.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.fileutil import atomic_write_bytes

FORMAT = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10


class AccountError(EdgefaceError):
    """The accounts file cannot be read or written, or a name or password is not acceptable."""


#: argon2id parameters of new hashes (OWASP password storage: m = 19 MiB, t = 2, p = 1)
ARGON2 = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher(**ARGON2)


class Accounts:
    """The accounts file at ``path``; :meth:`verify` re-reads it, so a user added on the command line can log in
    without restarting the page."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AccountError(f"{self.path}: cannot read the accounts file: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("users"), dict):
            raise AccountError(f"{self.path}: not an edgeface accounts file (format {FORMAT})")
        return data["users"]

    def names(self) -> list[str]:
        return sorted(self._read())

    def add(self, name: str, password: str) -> None:
        """Create ``name`` or set a new password for it."""
        if not NAME_RE.match(name):
            raise AccountError(f"{name!r} is not a valid account name (letters, digits, . _ @ -; at most 64)")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
        users = self._read()
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        users[name] = {"hash": _hasher().hash(password), "created": users.get(name, {}).get("created", now),
                       "updated": now}
        body = json.dumps({"format": FORMAT, "users": users}, indent=1, sort_keys=True).encode()
        atomic_write_bytes(self.path, body, mode=0o600)

    def entry(self, name: str) -> dict | None:
        """The stored entry of ``name`` (its hash), or None for an unknown name."""
        return self._read().get(name)

    def upgrade(self, name: str, password: str) -> bool:
        """After a successful login: store a new hash of ``password`` when ``name``'s was made with other
        parameters than :data:`ARGON2`. True when it was replaced."""
        entry = self.entry(name)
        try:
            if entry is None or not _hasher().check_needs_rehash(entry["hash"]):
                return False
        except Exception:  # an unreadable hash does not verify anyway
            return False
        self.add(name, password)
        return True

    @staticmethod
    def check(entry: dict, password: str) -> bool:
        """``password`` against an entry's argon2 hash (the hash's own memory and time cost)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return _hasher().verify(entry["hash"], password)
        except (VerificationError, InvalidHashError, KeyError, TypeError):
            return False

    def verify(self, name: str, password: str) -> bool:
        """True when ``name`` exists and ``password`` is its password (the command line's check; the page goes
        through :class:`PasswordChecks`). An unknown name costs a hash as well."""
        entry = self.entry(name)
        if entry is None:
            _hasher().hash(password)
            return False
        return self.check(entry, password)


#: argon2 checks the page runs at once: each takes the hash's memory (64 MiB with argon2-cffi's defaults) and
#: its threads, so this bounds the page's memory and CPU whatever arrives
HASH_SLOTS = 1
#: logins that may wait for a slot; more at once are answered "busy" straight away, with nothing computed
HASH_QUEUE = 8


class PasswordChecks:
    """The page's password checks, bounded: they run on ``slots`` threads of their own at the lowest priority
    (niceness 19: the door's loop, and the rest of the page, come first), at most ``queue`` more wait, and
    beyond that :meth:`verify` answers None (busy) at once.

    An unknown name computes nothing: it holds a slot for as long as a real verification took recently (the
    first one measures it with a real hash), so it costs neither memory nor CPU, and known and unknown names
    queue and answer alike: the time taken does not tell which names exist."""

    def __init__(self, accounts: Accounts, slots: int = HASH_SLOTS, queue: int = HASH_QUEUE) -> None:
        import threading
        from collections import Counter
        from concurrent.futures import ThreadPoolExecutor

        self.accounts = accounts
        self.capacity = int(slots) + int(queue)
        self.stats: Counter[str] = Counter()
        self._pool = ThreadPoolExecutor(max_workers=int(slots), thread_name_prefix="password-check",
                                        initializer=_lowest_priority)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._typical_s: float | None = None

    def verify(self, name: str, password: str) -> bool | None:
        """True (the right password), False (wrong name or password), None (busy: nothing was checked). Blocks
        while the check waits and runs: call it in a worker thread."""
        with self._lock:
            if self._in_flight >= self.capacity:
                self.stats["busy"] += 1
                return None
            self._in_flight += 1
        try:
            return self._pool.submit(self._check, name, password).result()
        finally:
            with self._lock:
                self._in_flight -= 1

    def _check(self, name: str, password: str) -> bool:
        import time

        entry = self.accounts.entry(name)
        t0 = time.monotonic()
        if entry is None:
            self.stats["unknown"] += 1
            if self._typical_s is None:
                _hasher().hash(password)
                self._learn(time.monotonic() - t0)
            else:
                time.sleep(self._typical_s)
            return False
        self.stats["hashed"] += 1
        ok = self.accounts.check(entry, password)
        self._learn(time.monotonic() - t0)
        return ok

    def _learn(self, seconds: float) -> None:
        self._typical_s = seconds if self._typical_s is None else 0.8 * self._typical_s + 0.2 * seconds


def _lowest_priority() -> None:
    """Niceness 19 for the calling thread (Linux: niceness is per thread; argon2 with one lane hashes on it)."""
    import os
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (OSError, AttributeError):
        pass
