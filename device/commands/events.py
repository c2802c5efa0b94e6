"""``edgeface events [--config FILE | --db audit.db] [--since 1h] [--person NAME] [--kind granted,denied]
[--json|--csv] [--follow]``: read the gate's audit database.

The database is opened read-only (``mode=ro``), so this can run beside the gate. Schema: docs/device.md.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

NAME = "events"
HELP = "show gate events from the audit database (filters, JSON/CSV, --follow)"
FIELDS = ("id", "time", "kind", "person", "person_id", "score", "margin", "duration_s", "detail")
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", type=Path, help="gate config whose [audit] path to read")
    src.add_argument("--db", type=Path, help="audit database (default /var/lib/edgeface/audit.db)")
    p.add_argument("--since", help="only newer events: 90s, 30m, 1h, 2d, 1w or an ISO time (UTC if no offset)")
    p.add_argument("--person", help="only events of this person (display name or id)")
    p.add_argument("--kind", help="only these kinds, comma-separated (granted,denied,unlock,door_forced,...)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (newest) events (default 1000)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    p.add_argument("--follow", action="store_true", help="keep printing new events as they arrive (Ctrl-C ends)")
    p.add_argument("--follow-seconds", type=float, default=None, help=argparse.SUPPRESS)  # tests


def since_unix(text: str, now: datetime | None = None) -> float:
    from edgeface.errors import EdgefaceError

    now = now or datetime.now(timezone.utc)
    m = _AGO.match(text.strip())
    if m:
        return (now - timedelta(seconds=float(m[1]) * _UNIT[m[2]])).timestamp()
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise EdgefaceError(f"--since {text!r}: use 90s, 30m, 1h, 2d, 1w or an ISO time like 2026-12-05T10:00") from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def query(conn, args, after_id: int = 0, limit: int | None = None) -> list[dict]:
    where, params = ["id > ?"], [after_id]
    if args.since:
        where.append("unix >= ?")
        params.append(since_unix(args.since))
    if args.person:
        where.append("(person = ? OR person_id = ?)")
        params += [args.person, args.person]
    if args.kind:
        kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        params += kinds
    sql = f"SELECT {', '.join(FIELDS)} FROM events WHERE {' AND '.join(where)} ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = conn.execute(sql, params).fetchall()
    return [dict(zip(FIELDS, r)) for r in reversed(rows)]


def run(args) -> int:
    import csv
    import json
    import sqlite3
    import sys
    import time

    from edgeface.errors import EdgefaceError

    if args.config is not None:
        from edgeface.config import load_config

        db = load_config(args.config).audit.path
    else:
        db = args.db or Path("/var/lib/edgeface/audit.db")
    if not Path(db).is_file():
        raise EdgefaceError(f"{db}: no audit database (the gate creates it on its first event)")
    try:
        conn = sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True, timeout=2.0)
        rows = query(conn, args, limit=args.limit)
    except sqlite3.Error as exc:
        raise EdgefaceError(f"{db}: cannot read the audit database: {exc}") from None
    writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS) if args.csv else None
    if writer:
        writer.writeheader()

    def show(batch):
        for r in batch:
            if args.json:
                print(json.dumps(r, ensure_ascii=False))
            elif writer:
                writer.writerow(r)
            else:
                who = f" {r['person']}" if r["person"] else ""
                score = f" score={r['score']:.3f}" if r["score"] is not None else ""
                dur = f" duration={r['duration_s']:.2f}s" if r["duration_s"] is not None else ""
                detail = f"  ({r['detail']})" if r["detail"] else ""
                print(f"{r['time']}  {r['kind']:<15}{who}{score}{dur}{detail}")
        sys.stdout.flush()

    show(rows)
    if not args.follow:
        return 0
    last = rows[-1]["id"] if rows else (conn.execute("SELECT MAX(id) FROM events").fetchone()[0] or 0)
    end = None if args.follow_seconds is None else time.monotonic() + args.follow_seconds
    try:
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
            try:
                batch = query(conn, args, after_id=last)
            except sqlite3.Error:
                continue  # the gate is writing a checkpoint: try again
            if batch:
                show(batch)
                last = batch[-1]["id"]
    except KeyboardInterrupt:
        pass
    return 0
