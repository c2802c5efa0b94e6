"""``edgeface people set NAME ...``: edit one person's access record in the gallery file.

Every change is validated (badge digits, PIN length, schedule grammar, dates) before anything is written, and
a badge that another person already holds is refused. The PIN is read twice without echo (``getpass``) and
only its salted scrypt hash, keyed with the site's PIN secret (``--pin-secret FILE`` or the
systemd credential ``pin-secret``), is stored.
"""

from __future__ import annotations

import getpass
from datetime import timezone
from pathlib import Path

from ..errors import EdgefaceError
from ..gallery import Gallery, Person  # noqa: F401  (Gallery: the type edit() receives)
from .credentials import ATTRIBUTE, AccessDataError, AccessRecord, badge_number, hash_pin
from .schedule import parse_moment, parse_schedule


def edit_gallery(path: str | Path, edit) -> Person:
    """Apply ``edit(gallery) -> Person`` under the gallery's one locked writer (re-read under the lock, atomic
    0600 write): concurrent ``people set`` / ``enroll`` runs lose no update."""
    from ..gallery_writer import GalleryWriter

    with GalleryWriter.open(path) as gallery:
        return edit(gallery)


def read_pin() -> str:
    first = getpass.getpass("New PIN (4-12 digits): ")
    if getpass.getpass("Repeat the PIN: ") != first:
        raise EdgefaceError("the two PINs differ; nothing was changed")
    return first


def _updated(old: AccessRecord, args, pin: str | None, secret: bytes | None = None) -> dict:
    raw = old.to_attribute()
    try:
        if args.clear_badge:
            raw.pop("badges", None)
        if args.badge:
            raw["badges"] = sorted(set(raw.get("badges", [])) | {badge_number(b) for b in args.badge}, key=int)
        if args.clear_pin:
            raw.pop("pin", None)
        if pin is not None:
            raw["pin"] = hash_pin(pin, secret=secret)
        if args.schedule is not None:
            if args.schedule.strip():
                raw["schedule"] = parse_schedule(args.schedule, "--schedule").text
            else:
                raw.pop("schedule", None)
        if args.group is not None:
            groups = [g.strip() for g in args.group if g.strip()]
            raw["groups"] = groups
            if not groups:
                raw.pop("groups")
        for key in ("valid_from", "valid_until"):
            value = getattr(args, key)
            if value is None:
                continue
            if value.strip():
                parse_moment(value, timezone.utc, what=f"--{key.replace('_', '-')}")
                raw[key] = value.strip()
            else:
                raw.pop(key, None)
    except ValueError as exc:  # AccessDataError is an EdgefaceError; schedule/date problems are ValueError
        if isinstance(exc, AccessDataError):
            raise
        raise AccessDataError(str(exc)) from None
    return raw


def access_editor(args, pin: str | None = None, secret: bytes | None = None):
    """The change of ``args`` (the fields of ``people set``: name, badge, clear_badge, clear_pin, schedule, group,
    valid_from, valid_until) and ``pin`` (a new PIN, hashed here, keyed with the site's PIN ``secret``) as
    ``edit(gallery) -> Person``, for the one locked writer: :func:`edit_gallery` here, the admin page's
    ``change_gallery`` there. Everything is checked before the person is touched; a badge another person holds
    is refused."""

    def edit(gallery: Gallery) -> Person:
        person = gallery._get(args.name)
        old = AccessRecord.from_attributes(person.attributes, person.name)
        raw = _updated(old, args, pin, secret)
        AccessRecord.from_attributes({ATTRIBUTE: raw}, person.name)  # the result must parse as the gate parses it
        for other in gallery.people:
            if other is person:
                continue
            taken = set(AccessRecord.from_attributes(other.attributes, other.name).badges) & set(raw.get("badges", []))
            if taken:
                raise AccessDataError(f"badge {min(taken)} already belongs to {other.name!r}")
        if raw:
            person.attributes[ATTRIBUTE] = raw
        else:
            person.attributes.pop(ATTRIBUTE, None)
        return person

    return edit


def summary(person: Person) -> str:
    """``badges 12345; PIN set; schedule Mon-Fri 07:00-19:00`` (never the PIN's hash)."""
    raw = person.attributes.get(ATTRIBUTE, {})
    pin_state = "no PIN"
    if raw.get("pin"):
        pin_state = "PIN set" if raw["pin"].get("key_id") else \
            "PIN set WITHOUT a site PIN secret (this gallery will not be signed for doors: --pin-secret FILE)"
    parts = [f"badges {', '.join(raw['badges'])}" if raw.get("badges") else "no badge", pin_state]
    parts += [f"{k.replace('_', ' ')} {raw[k]}" for k in ("schedule", "groups", "valid_from", "valid_until") if raw.get(k)]
    return "; ".join(str(p) for p in parts)


def set_access(path: str | Path, args, pin: str | None = None) -> tuple[Person, str]:
    """``people set``: ``pin`` is read twice without echo when ``args.pin_prompt``."""
    from .credentials import find_pin_secret

    if pin is None and getattr(args, "pin_prompt", False):
        pin = read_pin()
    secret = find_pin_secret(getattr(args, "pin_secret", None)) if pin is not None else None
    person = edit_gallery(path, access_editor(args, pin, secret))
    return person, summary(person)
