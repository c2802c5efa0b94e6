"""Times on the admin page: the audit database keeps UTC (ISO 8601), a facility manager reads the door's own
time, in the zone of the config's ``[access] timezone`` (the zone its schedules are written in; UTC by default).
Days (the filters, the chart, "who came in today") are that zone's days, from local midnight to local midnight."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


class LocalClock:
    def __init__(self, zone: str = "UTC"):
        self.zone = zone
        self.tz = ZoneInfo(zone)

    def local(self, iso: str | None) -> datetime | None:
        """The stored UTC time in this zone (None for a missing or unreadable one)."""
        if not iso:
            return None
        try:
            t = datetime.fromisoformat(iso)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return t.astimezone(self.tz)

    def show(self, iso: str | None) -> str:
        """``2026-12-06 10:42:13`` in this zone ("" for a missing time)."""
        t = self.local(iso)
        return "" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")

    def day_of(self, iso: str | None) -> str:
        """The local day of a stored time, ``YYYY-MM-DD``."""
        t = self.local(iso)
        return "" if t is None else t.date().isoformat()

    def today(self) -> date:
        return datetime.now(self.tz).date()

    def start_utc(self, day: date) -> str:
        """The UTC instant of local midnight at the start of ``day``, as the audit database writes times (so the
        strings compare in time order)."""
        start = datetime.combine(day, time(0), tzinfo=self.tz).astimezone(timezone.utc)
        return start.isoformat(timespec="milliseconds")

    def end_utc(self, day: date) -> str:
        """The UTC instant of local midnight at the end of ``day`` (exclusive)."""
        return self.start_utc(day + timedelta(days=1))
