"""Reading the gate's audit database read-only (SQLite ``mode=ro``): filtered events, daily counts, status facts.

The admin page never writes the gate's audit database; a missing or unreadable one reads as "no events" with
the reason shown, never as an error page.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ..audit import COLUMNS

DECISIONS = ("granted", "denied", "unknown")


@dataclass
class EventFilter:
    person: str = ""
    kind: str = ""
    limit: int = 200
    start: str = ""   # an instant, as the database writes times (UTC ISO 8601): from it (inclusive)...
    end: str = ""     # ...to this one (exclusive); the page turns local days into these (LocalClock)

    def where(self) -> tuple[str, list]:
        clauses, args = [], []
        if self.person:
            clauses.append("(person = ? OR person_id = ?)")
            args += [self.person, self.person]
        if self.kind:
            clauses.append("kind = ?")
            args.append(self.kind)
        if self.start:
            clauses.append("time >= ?")
            args.append(self.start)
        if self.end:
            clauses.append("time < ?")
            args.append(self.end)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class EventsDB:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.problem = ""

    def _query(self, sql: str, args=(), names: list | None = None) -> list[tuple]:
        """Rows of ``sql``; with ``names``, the list receives the result's column names."""
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
            cursor = conn.execute(sql, args)
            if names is not None:
                names.extend(d[0] for d in cursor.description or ())
            return cursor.fetchall()
        except sqlite3.Error as exc:
            self.problem = f"cannot read the audit database: {exc}"
            return []
        finally:
            conn.close()

    def events(self, f: EventFilter) -> list[dict]:
        """Newest first: every column the database has (``candidates`` and ``rule`` where its schema has them;
        ``candidates`` parsed from its JSON, [] when absent or unreadable)."""
        where, args = f.where()
        names: list[str] = []
        rows = self._query(f"SELECT * FROM events{where} ORDER BY id DESC LIMIT ?", args + [int(f.limit)], names)
        out = []
        for r in rows:
            row = dict.fromkeys((*COLUMNS, "candidates", "rule"))
            row.update(zip(names, r))
            row["candidates"] = _candidates(row["candidates"])
            out.append(row)
        return out

    def kinds(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT kind FROM events ORDER BY kind")]

    def daily_counts(self, f: EventFilter, days: int = 14, clock=None) -> list[tuple[str, dict[str, int]]]:
        """Per day of ``clock`` (a :class:`.localtime.LocalClock`; UTC without one), the last ``days``, oldest
        first: counts of granted / denied / unknown decisions."""
        from .localtime import LocalClock

        clock = clock or LocalClock("UTC")
        today = clock.today()
        first = today - timedelta(days=days - 1)
        start = max(f.start, clock.start_utc(first)) if f.start else clock.start_utc(first)
        where, args = EventFilter(f.person, f.kind, start=start, end=f.end).where()
        kinds = ",".join("?" * len(DECISIONS))
        rows = self._query(f"SELECT time, kind FROM events{where}{' AND' if where else ' WHERE'} kind IN ({kinds})",
                           args + list(DECISIONS))
        out = {(first + timedelta(days=i)).isoformat(): dict.fromkeys(DECISIONS, 0) for i in range(days)}
        for when, kind in rows:
            day = clock.day_of(when)
            if day in out:
                out[day][kind] += 1
        return list(out.items())

    def last(self, kinds: tuple[str, ...]) -> dict | None:
        rows = self._query(f"SELECT {', '.join(COLUMNS)} FROM events WHERE kind IN ({','.join('?' * len(kinds))}) "
                           "ORDER BY id DESC LIMIT 1", kinds)
        return dict(zip(COLUMNS, rows[0])) if rows else None


def _candidates(text) -> list[dict]:
    """The ``candidates`` column (JSON, best first) as a list; [] when absent or unreadable."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


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
