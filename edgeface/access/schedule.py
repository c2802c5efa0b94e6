"""Who may enter when: weekly schedules ("Mon-Fri 07:00-19:00; Sat 09:00-13:00") and validity dates, on the
local wall clock of an IANA time zone (zoneinfo).

Grammar: rules separated by ``;``; a rule is days then one or more time ranges, e.g. ``Mon-Fri 07:00-12:00
13:00-19:00``, ``Sat,Sun 10:00-14:00``, ``Daily 00:00-24:00``. Days: Mon Tue Wed Thu Fri Sat Sun, ranges may
wrap (``Fri-Mon``), ``Daily`` is every day. A range's end is exclusive, ``24:00`` is the end of the day, and a
range that ends before it starts runs past midnight (``Fri 22:00-06:00`` also allows Saturday 00:00-06:00).

The check uses the *local* time of day in the zone, so "07:00" means 07:00 on the wall both in winter (CET) and
in summer (CEST). A local time that does not exist (the skipped hour in spring) cannot occur, since the instant
is converted from UTC; one that exists twice (the repeated hour in autumn) is allowed or refused the same both
times, as its wall time is the same.

Dates and moments (validity dates, ``gate --simulate --clock``) are instants, compared in UTC
(:func:`parse_moment`, :func:`local_instant`). A local time written without an offset that the zone's clocks
skip or repeat is read by one rule:

* **skipped** (spring forward; in Europe/Berlin 02:00-02:59 on the last Sunday of March): the moment of the jump,
  when the wall clock passes it (01:59:59 CET is followed by 03:00:00 CEST, so ``02:30`` is 03:00 CEST);
* **repeated** (fall back; 02:00-02:59 twice on the last Sunday of October): for ``valid_until`` its *first*
  occurrence (CEST), for ``valid_from`` its *second* (CET): a validity period never includes an instant that
  either reading would leave out (fail secure); ``--clock`` and any other moment: the first occurrence, as the
  clock first shows it. A moment written with an offset (``2026-10-25T02:30+01:00``) is exactly that instant.

Only wall-clock *decisions* use this: a relay pulse is timed on the monotonic clock, so a wall-clock jump
(NTP, a manual change) can move a person into or out of their schedule, never lengthen a pulse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def check_timezone(name: str) -> ZoneInfo:
    """The zone called ``name``; ValueError (a config error) when zoneinfo does not know it."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin): {exc}") from None


@dataclass(frozen=True)
class Schedule:
    """Allowed minutes of the week: ``spans[d]`` are (start, end) minutes of weekday ``d`` (0 = Monday)."""

    text: str
    spans: tuple[tuple[tuple[int, int], ...], ...]

    def allows(self, local: datetime) -> bool:
        """True when the local wall time ``local`` (aware or naive, already in the schedule's zone) is inside."""
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.spans[local.weekday()])


def _minutes(h: str, m: str, what: str) -> int:
    hh, mm = int(h), int(m)
    if mm > 59 or hh > 24 or (hh == 24 and mm):
        raise ValueError(f"{what}: {h}:{m} is not a time of day")
    return hh * 60 + mm


def _days(token: str, what: str) -> list[int]:
    out: list[int] = []
    for part in token.lower().split(","):
        if part in ("daily", "all", "mon-sun"):
            out.extend(range(7))
            continue
        a, _, b = part.partition("-")
        if a[:3] not in DAYS or (b and b[:3] not in DAYS) or len(a) < 3:
            raise ValueError(f"{what}: {part!r} is not a day or day range (Mon, Tue, ... Sun, e.g. Mon-Fri)")
        i = DAYS.index(a[:3])
        j = DAYS.index(b[:3]) if b else i
        out.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
    return out


def parse_schedule(text: str, what: str = "schedule") -> Schedule:
    """Parse the grammar above; ValueError naming the bad part."""
    spans: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    rules = [r.strip() for r in str(text).split(";") if r.strip()]
    if not rules:
        raise ValueError(f"{what}: empty schedule (e.g. 'Mon-Fri 07:00-19:00')")
    for rule in rules:
        tokens = rule.split()
        if len(tokens) < 2:
            raise ValueError(f"{what}: {rule!r} needs days and at least one time range, e.g. 'Mon-Fri 07:00-19:00'")
        days = _days(tokens[0], what)
        for tr in tokens[1:]:
            m = _TIME.match(tr)
            if not m:
                raise ValueError(f"{what}: {tr!r} is not a time range HH:MM-HH:MM")
            start, end = _minutes(m[1], m[2], what), _minutes(m[3], m[4], what)
            if start == end or start == 24 * 60:
                raise ValueError(f"{what}: {tr!r} is an empty range")
            for d in days:
                if end > start:
                    spans[d].append((start, end))
                else:  # past midnight: the rest of day d, then the start of the next day
                    spans[d].append((start, 24 * 60))
                    if end:
                        spans[(d + 1) % 7].append((0, end))
    return Schedule(str(text), tuple(tuple(sorted(s)) for s in spans))


def local_instant(naive: datetime, zone: tzinfo, repeated: str = "first") -> datetime:
    """The UTC instant of the local wall time ``naive`` in ``zone`` by the rule above: a skipped time is the moment
    of the jump; a repeated one its ``"first"`` or ``"second"`` occurrence."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():  # an ordinary time: one instant
        return first.astimezone(timezone.utc)
    a, b = first.astimezone(timezone.utc), second.astimezone(timezone.utc)
    if a.astimezone(zone).replace(tzinfo=None) == naive:  # shown twice by the wall clock
        return min(a, b) if repeated == "first" else max(a, b)
    # skipped: the jump lies between the two readings; find the first instant with the new offset (whole seconds)
    lo, hi = min(a, b), max(a, b)
    after = lo.astimezone(zone).utcoffset()
    while (hi - lo).total_seconds() > 1:
        mid = lo + timedelta(seconds=int((hi - lo).total_seconds() // 2))
        if mid.astimezone(zone).utcoffset() == after:
            lo = mid
        else:
            hi = mid
    return hi


def parse_moment(text: str, zone: tzinfo, end_of_day: bool = False, what: str = "date",
                 repeated: str = "first") -> datetime:
    """``2026-12-31`` or ``2026-12-31T18:00`` (local in ``zone`` unless it carries an offset) as an aware UTC
    datetime (:func:`local_instant`: a skipped local time is the moment of the jump, a repeated one its
    ``repeated`` occurrence). A bare date means its first moment, or with ``end_of_day`` the first moment of the
    next day (``--valid-until 2026-12-31`` includes the 31st)."""
    s = str(text).strip()
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            moment = datetime.combine(d + timedelta(days=1) if end_of_day else d, time(0))
        else:
            moment = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc)
    return local_instant(moment, zone, repeated)
