"""Reading the gate's audit database read-only (SQLite ``mode=ro``): filtered events, daily counts, status facts.

The admin page never writes the gate's audit database; a missing or unreadable one reads as "no events" with
the reason shown, never as an error page.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ..audit import COLUMNS

DECISIONS = ("granted", "denied", "unknown")


@dataclass
class EventFilter:
    person: str = ""
    kind: str = ""
    since: str = ""   # YYYY-MM-DD or an ISO time, UTC
    until: str = ""
    limit: int = 200

    def where(self) -> tuple[str, list]:
        clauses, args = [], []
        if self.person:
            clauses.append("(person = ? OR person_id = ?)")
            args += [self.person, self.person]
        if self.kind:
            clauses.append("kind = ?")
            args.append(self.kind)
        if self.since:
            clauses.append("time >= ?")
            args.append(self.since)
        if self.until:
            clauses.append("time < ?")
            args.append(_day_after(self.until))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _day_after(text: str) -> str:
    """An ``until`` date includes that whole day."""
    try:
        return (date.fromisoformat(text) + timedelta(days=1)).isoformat()
    except ValueError:
        return text


class EventsDB:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.problem = ""

    def _query(self, sql: str, args=()) -> list[tuple]:
        self.problem = ""
        if not self.path.exists():
            self.problem = f"no audit database at {self.path} yet (the gate has not run)"
            return []
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
        except sqlite3.Error as exc:
            self.problem = f"cannot open the audit database: {exc}"
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            self.problem = f"cannot read the audit database: {exc}"
            return []
        finally:
            conn.close()

    def events(self, f: EventFilter) -> list[dict]:
        where, args = f.where()
        rows = self._query(f"SELECT {', '.join(COLUMNS)} FROM events{where} ORDER BY id DESC LIMIT ?",
                           args + [int(f.limit)])
        return [dict(zip(COLUMNS, r)) for r in rows]

    def kinds(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT kind FROM events ORDER BY kind")]

    def daily_counts(self, f: EventFilter, days: int = 14) -> list[tuple[str, dict[str, int]]]:
        """Per UTC day (the last ``days``, oldest first): counts of granted / denied / unknown decisions."""
        today = datetime.now(timezone.utc).date()
        first = today - timedelta(days=days - 1)
        where, args = EventFilter(f.person, f.kind, max(f.since, first.isoformat()), f.until).where()
        kinds = ",".join("?" * len(DECISIONS))
        rows = self._query(f"SELECT substr(time, 1, 10), kind, COUNT(*) FROM events{where}"
                           f"{' AND' if where else ' WHERE'} kind IN ({kinds}) GROUP BY 1, 2",
                           args + list(DECISIONS))
        out = {(first + timedelta(days=i)).isoformat(): dict.fromkeys(DECISIONS, 0) for i in range(days)}
        for day, kind, n in rows:
            if day in out:
                out[day][kind] = int(n)
        return list(out.items())

    def last(self, kinds: tuple[str, ...]) -> dict | None:
        rows = self._query(f"SELECT {', '.join(COLUMNS)} FROM events WHERE kind IN ({','.join('?' * len(kinds))}) "
                           "ORDER BY id DESC LIMIT 1", kinds)
        return dict(zip(COLUMNS, rows[0])) if rows else None


def chart(days: list[tuple[str, dict[str, int]]], width: int = 640, height: int = 160) -> dict:
    """Bars for a server-rendered SVG: one group per day, granted and refused (denied + unknown) side by side."""
    top = max([max(c["granted"], c["denied"] + c["unknown"]) for _, c in days] + [1])
    plot_h = height - 30
    step = width / max(1, len(days))
    bar = max(2.0, step * 0.35)
    bars = []
    for i, (day, c) in enumerate(days):
        x = i * step + step * 0.1
        for j, (label, n) in enumerate((("granted", c["granted"]), ("refused", c["denied"] + c["unknown"]))):
            h = plot_h * n / top
            bars.append({"x": round(x + j * bar, 1), "y": round(plot_h - h + 5, 1), "w": round(bar, 1),
                         "h": round(h, 1), "cls": label, "title": f"{day}: {n} {label}"})
    labels = [{"x": round(i * step + step / 2, 1), "text": day[5:]} for i, (day, _) in enumerate(days)]
    return {"width": width, "height": height, "bars": bars, "labels": labels, "top": top, "base": plot_h + 5}
