"""Admin accounts: a JSON file of names and argon2id hashes, written atomically with mode 0600.

There is no default account and no registration: accounts are created on the command line
(``edgeface admin add-user NAME``). A damaged accounts file is an error, never an empty file that lets
nobody (or anybody) in.
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


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) parameters


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

    def verify(self, name: str, password: str) -> bool:
        """True when ``name`` exists and ``password`` is its password. An unknown name costs a hash as well, so
        the time taken does not tell which names exist."""
        from argon2.exceptions import InvalidHashError, VerificationError

        entry = self._read().get(name)
        hasher = _hasher()
        if entry is None:
            hasher.hash(password)
            return False
        try:
            return hasher.verify(entry["hash"], password)
        except (VerificationError, InvalidHashError, KeyError, TypeError):
            return False
