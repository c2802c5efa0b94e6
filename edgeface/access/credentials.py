"""A person's access record: badge numbers, a salted PIN hash, a schedule, groups and validity dates.

It lives in the gallery file, in the person's ``attributes["access"]`` (JSON, covered by the gallery's sha256),
and is written by ``edgeface people set``. Format::

    {"badges": ["12345"],                       # canonical decimal badge numbers (no leading zeros)
     "pin": {"scheme": "scrypt-hmac-sha256", "key_id": "<16 hex>", "n": 16384, "r": 8, "p": 1,
             "salt": "<32 hex>", "hash": "<64 hex>"},
     "schedule": "Mon-Fri 07:00-19:00",         # optional, see edgeface.access.schedule
     "groups": ["staff"],                       # optional, schedules per group in the config's [access] schedules
     "valid_from": "2026-01-01", "valid_until": "2026-12-31T18:00"}   # optional, local to [access] timezone

The PIN itself is never stored. A PIN has only 10^4-10^12 values, so a salted hash alone does not protect it: anyone
holding the gallery (every door, every MQTT subscriber of the site's gallery, ``people list --json``) could try
them all offline (a 4-digit PIN fell in 405 s on 2 cores against scrypt n=16384). So the stored value is
**keyed** with the site's **PIN secret** (32 random bytes, ``edgeface keys pin-secret``), which never travels in
the gallery: ``HMAC-SHA256(secret, scrypt(pin, salt))``, compared in constant time (``hmac.compare_digest``).
The secret is held by the desk (``people set --pin-secret FILE``) and by each door (``[access] pin_secret_file``
or the systemd credential ``pin-secret``, e.g. ``LoadCredentialEncrypted=``); ``key_id`` names it, so a door
with another secret says so. A gallery with an unkeyed (scheme ``scrypt``) PIN is never signed or published
(:func:`unkeyed_pins`); a stand-alone door still checks such legacy records. A record that does not parse is an
:class:`AccessDataError`: the gate refuses to start on that gallery (a SIGHUP keeps the previous one), so a damaged
record never opens a door.
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


LEGACY_SCHEME, KEYED_SCHEME = "scrypt", "scrypt-hmac-sha256"
SECRET_BYTES = 32
#: the systemd credential name a door and the desk look for in $CREDENTIALS_DIRECTORY
SECRET_CREDENTIAL = "pin-secret"


def secret_id(secret: bytes) -> str:
    """Names a PIN secret without revealing it (16 hex digits of a domain-separated sha256)."""
    return hashlib.sha256(b"edgeface-pin-secret\n" + secret).hexdigest()[:16]


def new_pin_secret() -> str:
    """A fresh site PIN secret, as written to its file: 64 hex digits and a newline."""
    return os.urandom(SECRET_BYTES).hex() + "\n"


def load_pin_secret(path) -> bytes:
    """The secret in ``path`` (64 hex digits); refused when other users may read it."""
    from pathlib import Path

    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text().strip()
    except OSError as exc:
        raise AccessDataError(f"PIN secret {path}: {exc.strerror or exc} (edgeface keys pin-secret --out FILE)") from None
    except UnicodeDecodeError:
        text = ""  # not hex digits: refused below
    if mode & 0o007:
        raise AccessDataError(f"PIN secret {path} is readable by every user (mode {mode:o}): chmod o-rwx it")
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != SECRET_BYTES:
        raise AccessDataError(f"PIN secret {path}: not {SECRET_BYTES * 2} hex digits (edgeface keys pin-secret)")
    return secret


def find_pin_secret(path=None) -> bytes | None:
    """``path`` if given, else the systemd credential ``$CREDENTIALS_DIRECTORY/pin-secret`` if present, else None."""
    from ..fileutil import systemd_credential

    path = path if path is not None else systemd_credential(SECRET_CREDENTIAL)
    return None if path is None else load_pin_secret(path)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(str(pin).encode(), salt=salt, n=n, r=r, p=p, dklen=dklen)


def hash_pin(pin: str, salt: bytes | None = None, secret: bytes | None = None) -> dict:
    """The stored form of a PIN (4-12 digits): scrypt with a fresh 16-byte salt, keyed with the site's PIN
    ``secret`` (HMAC-SHA256). Without a secret: the legacy unkeyed form, which is never signed or published."""
    if not PIN_RE.match(str(pin)):
        raise AccessDataError("a PIN is 4 to 12 digits")
    salt = os.urandom(16) if salt is None else salt
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN)
    if secret is None:
        return {"scheme": LEGACY_SCHEME, "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex(),
                "hash": digest.hex()}
    keyed = hmac.new(secret, digest, hashlib.sha256).digest()
    return {"scheme": KEYED_SCHEME, "key_id": secret_id(secret), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": salt.hex(), "hash": keyed.hex()}


def check_pin(pin: str, stored: dict, secret: bytes | None = None) -> bool:
    """True when ``pin`` hashes to ``stored`` (constant-time compare of the digests). A keyed record needs the
    same ``secret`` it was made with."""
    try:
        want = bytes.fromhex(stored["hash"])
        if stored.get("scheme") == KEYED_SCHEME:
            if secret is None or stored.get("key_id") != secret_id(secret):
                return False
            digest = _scrypt(pin, bytes.fromhex(stored["salt"]), int(stored["n"]), int(stored["r"]),
                             int(stored["p"]), SCRYPT_LEN)
            return hmac.compare_digest(hmac.new(secret, digest, hashlib.sha256).digest(), want)
        digest = _scrypt(pin, bytes.fromhex(stored["salt"]), int(stored["n"]), int(stored["r"]), int(stored["p"]),
                         len(want))
        return hmac.compare_digest(digest, want)
    except (KeyError, TypeError, ValueError):
        return False


def unkeyed_pins(gallery) -> list[str]:
    """Names of the people whose stored PIN is not keyed with a site secret (it could be recovered offline)."""
    out = []
    for p in gallery.people:
        raw = (p.attributes or {}).get(ATTRIBUTE)
        pin = raw.get("pin") if isinstance(raw, dict) else None
        if pin is not None and not (isinstance(pin, dict) and pin.get("scheme") == KEYED_SCHEME):
            out.append(p.name)
    return out


def redacted(attributes: dict) -> dict:
    """A person's attributes for display: a PIN record shows only that a PIN is set, and with which secret."""
    raw = (attributes or {}).get(ATTRIBUTE)
    if not isinstance(raw, dict) or not isinstance(raw.get("pin"), dict):
        return attributes
    pin = raw["pin"]
    shown = {"set": True, "scheme": pin.get("scheme")}
    if pin.get("key_id"):
        shown["key_id"] = pin["key_id"]
    return {**attributes, ATTRIBUTE: {**raw, "pin": shown}}


def _check_pin_record(pin, who: str) -> None:
    if not isinstance(pin, dict) or pin.get("scheme") not in (LEGACY_SCHEME, KEYED_SCHEME):
        raise AccessDataError(f"{who}: the PIN record is not a scrypt hash")
    if pin["scheme"] == KEYED_SCHEME and not (isinstance(pin.get("key_id"), str) and len(pin["key_id"]) == 16):
        raise AccessDataError(f"{who}: the keyed PIN record lacks the id of its secret")
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
        ``outside_schedule``), or None. Validity dates are instants (a repeated local hour: the later reading
        of ``valid_from``, the earlier of ``valid_until``; :mod:`edgeface.access.schedule`). The person's own schedule wins; else any of their groups' schedules
        allows; a person in groups of which none has a schedule is refused (a typo must not mean 24/7); no
        schedule and no groups: any time."""
        local = now.astimezone(zone)
        if self.valid_from is not None and local < parse_moment(self.valid_from, zone, repeated="second"):
            return "not_yet_valid"
        if self.valid_until is not None and local >= parse_moment(self.valid_until, zone, end_of_day=True):
            return "expired"
        if self.schedule is not None:
            return None if self.schedule.allows(local) else "outside_schedule"
        if self.groups:
            known = [group_schedules[g] for g in self.groups if g in group_schedules]
            return None if any(s.allows(local) for s in known) else "outside_schedule"
        return None
