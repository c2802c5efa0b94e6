"""A person's access record: badge numbers, a salted PIN hash, a schedule, groups and validity dates.

It lives in the gallery file, in the person's ``attributes["access"]`` (JSON, covered by the gallery's sha256),
and is written by ``edgeface people set``. Format::

    {"badges": ["12345"],                       # canonical decimal badge numbers (no leading zeros)
     "pin": {"scheme": "scrypt", "n": 16384, "r": 8, "p": 1, "salt": "<32 hex>", "hash": "<64 hex>"},
     "schedule": "Mon-Fri 07:00-19:00",         # optional, see edgeface.access.schedule
     "groups": ["staff"],                       # optional, schedules per group in the config's [access] schedules
     "valid_from": "2026-01-01", "valid_until": "2026-12-31T18:00"}   # optional, local to [access] timezone

The PIN itself is never stored: only ``hashlib.scrypt`` of it with a per-person random salt, compared in
constant time (``hmac.compare_digest``). A record that does not parse is an :class:`AccessDataError`: the gate
refuses to start on that gallery (a SIGHUP keeps the previous one), so a damaged record never opens a door.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from ..errors import EdgefaceError
from .schedule import Schedule, parse_moment, parse_schedule

#: the key of ``Person.attributes`` this feature owns
ATTRIBUTE = "access"
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 1 << 14, 8, 1, 32
PIN_RE = re.compile(r"^\d{4,12}$")
BADGE_RE = re.compile(r"^\d{1,20}$")


class AccessDataError(EdgefaceError):
    """A person's access record (badge, PIN hash, schedule, validity) is malformed."""


def badge_number(text: str | int) -> str:
    """The canonical form of a badge number: decimal digits without leading zeros ("0012345" -> "12345"),
    which is how a Wiegand frame's number and a keyboard-wedge reader's digits compare."""
    s = str(text).strip()
    if not BADGE_RE.match(s):
        raise AccessDataError(f"badge {text!r}: a badge number is 1-20 decimal digits")
    return str(int(s))


def hash_pin(pin: str, salt: bytes | None = None) -> dict:
    """The stored form of a PIN (4-12 digits): scrypt with a fresh 16-byte salt."""
    if not PIN_RE.match(str(pin)):
        raise AccessDataError("a PIN is 4 to 12 digits")
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(str(pin).encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN)
    return {"scheme": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex(), "hash": digest.hex()}


def check_pin(pin: str, stored: dict) -> bool:
    """True when ``pin`` hashes to ``stored`` (constant-time compare of the digests)."""
    try:
        digest = hashlib.scrypt(str(pin).encode(), salt=bytes.fromhex(stored["salt"]), n=int(stored["n"]),
                                r=int(stored["r"]), p=int(stored["p"]), dklen=len(bytes.fromhex(stored["hash"])))
        return hmac.compare_digest(digest, bytes.fromhex(stored["hash"]))
    except (KeyError, TypeError, ValueError):
        return False


def _check_pin_record(pin, who: str) -> None:
    if not isinstance(pin, dict) or pin.get("scheme") != "scrypt":
        raise AccessDataError(f"{who}: the PIN record is not a scrypt hash")
    try:
        ok = (bytes.fromhex(pin["salt"]) and len(bytes.fromhex(pin["hash"])) >= 16
              and all(isinstance(pin[k], int) and pin[k] > 0 for k in ("n", "r", "p")))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise AccessDataError(f"{who}: the PIN record lacks a valid salt, hash or scrypt parameters")


@dataclass(frozen=True)
class AccessRecord:
    """One person's parsed access record (empty when the person has none: face only, any time)."""

    badges: tuple[str, ...] = ()
    pin: dict | None = None
    schedule: Schedule | None = None
    groups: tuple[str, ...] = ()
    valid_from: str | None = None
    valid_until: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_attributes(cls, attributes: dict, who: str = "person") -> "AccessRecord":
        raw = (attributes or {}).get(ATTRIBUTE)
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise AccessDataError(f"{who}: attributes.{ATTRIBUTE} is not a JSON object")
        known = {"badges", "pin", "schedule", "groups", "valid_from", "valid_until"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AccessDataError(f"{who}: unknown access field(s) {', '.join(unknown)}")
        badges = raw.get("badges", [])
        groups = raw.get("groups", [])
        if not isinstance(badges, list) or not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise AccessDataError(f"{who}: badges and groups must be lists")
        try:
            canon = tuple(badge_number(b) for b in badges)
        except AccessDataError as exc:
            raise AccessDataError(f"{who}: {exc}") from None
        pin = raw.get("pin")
        if pin is not None:
            _check_pin_record(pin, who)
        try:
            schedule = parse_schedule(raw["schedule"], f"{who}: schedule") if raw.get("schedule") else None
            for key in ("valid_from", "valid_until"):
                if raw.get(key) is not None:
                    parse_moment(raw[key], timezone.utc, what=f"{who}: {key}")
        except ValueError as exc:
            raise AccessDataError(str(exc)) from None
        return cls(canon, pin, schedule, tuple(groups), raw.get("valid_from"), raw.get("valid_until"))

    def to_attribute(self) -> dict:
        out: dict = {}
        if self.badges:
            out["badges"] = list(self.badges)
        if self.pin is not None:
            out["pin"] = self.pin
        if self.schedule is not None:
            out["schedule"] = self.schedule.text
        if self.groups:
            out["groups"] = list(self.groups)
        for key in ("valid_from", "valid_until"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def refusal(self, now: datetime, zone: tzinfo, group_schedules: dict[str, Schedule]) -> str | None:
        """Why this person may not enter at the aware instant ``now`` (``not_yet_valid``, ``expired``,
        ``outside_schedule``), or None. The person's own schedule wins; else any of their groups' schedules
        allows; a person in groups of which none has a schedule is refused (a typo must not mean 24/7); no
        schedule and no groups: any time."""
        local = now.astimezone(zone)
        if self.valid_from is not None and local < parse_moment(self.valid_from, zone):
            return "not_yet_valid"
        if self.valid_until is not None and local >= parse_moment(self.valid_until, zone, end_of_day=True):
            return "expired"
        if self.schedule is not None:
            return None if self.schedule.allows(local) else "outside_schedule"
        if self.groups:
            known = [group_schedules[g] for g in self.groups if g in group_schedules]
            return None if any(s.allows(local) for s in known) else "outside_schedule"
        return None
