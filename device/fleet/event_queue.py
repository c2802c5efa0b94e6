"""The door's outbox: events waiting to go upstream, in SQLite on disk, bounded.

Each event gets a unique ``id`` (a random UUID: unique across doors and restarts) and a per-door ``seq`` (SQLite
AUTOINCREMENT: it only goes up, also across restarts, so a collector can tell a gap from a duplicate). Rows stay
until the broker acknowledged their QoS 1 PUBLISH; a message acknowledged but not yet deleted when the door
stops is sent again at the next start, so delivery is at least once and a collector removes duplicates by
``id`` (:class:`edgeface.device.fleet.publisher.EventFollower`). Beyond ``max_events`` the oldest rows are
dropped and counted in ``dropped`` (a door offline for weeks must not fill its SD card).

Like the audit log, the queue never raises into the gate: a failed write is counted in ``write_errors``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL        -- the event as JSON, without seq (added when sent)
);
"""


class EventQueue:
    def __init__(self, path: str | Path, max_events: int = 10_000) -> None:
        self.path = Path(path)
        self.max_events = int(max_events)
        self.dropped = 0
        self.write_errors = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        try:
            self.path.chmod(0o600)
        except OSError:
            pass

    def put(self, message: dict) -> str | None:
        """Queue one event (a JSON-ready dict); returns its new id, None if it could not be stored."""
        event_id = uuid.uuid4().hex
        try:
            payload = json.dumps({"id": event_id, **message}, separators=(",", ":"))
            with self._lock:
                self._conn.execute("INSERT INTO outbox (id, payload) VALUES (?, ?)", (event_id, payload))
                excess = self._count() - self.max_events
                if excess > 0:
                    self._conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                                       (excess,))
                    self.dropped += excess
            return event_id
        except (sqlite3.Error, TypeError, ValueError) as exc:
            self.write_errors += 1
            log.error("fleet outbox %s: event not queued: %s", self.path, exc)
            return None

    def peek(self, limit: int, exclude: set[int] | frozenset = frozenset()) -> list[tuple[int, str]]:
        """Up to ``limit`` oldest (seq, JSON with seq) not in ``exclude``."""
        if limit <= 0:
            return []
        with self._lock:
            rows = self._conn.execute("SELECT seq, payload FROM outbox ORDER BY seq LIMIT ?",
                                      (limit + len(exclude),)).fetchall()
        out = []
        for seq, payload in rows:
            if seq in exclude:
                continue
            out.append((seq, payload[:-1] + f',"seq":{seq}}}'))
            if len(out) == limit:
                break
        return out

    def done(self, seqs) -> None:
        seqs = list(seqs)
        if not seqs:
            return
        try:
            with self._lock:
                self._conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        except sqlite3.Error as exc:  # sent again later: the collector drops the duplicate
            self.write_errors += 1
            log.error("fleet outbox %s: %s", self.path, exc)

    def _count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
