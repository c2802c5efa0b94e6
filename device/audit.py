"""The audit log: every gate event as a row in SQLite (WAL mode), with bounded retention.

The door must keep working when its log cannot be written (SD card full, directory read-only, database
corrupted), so :meth:`AuditLog.record` never raises: a failed write is counted in ``write_errors`` and
logged once per burst of failures (one line when it starts failing, one when it recovers), and the database
is re-opened at most every ``reopen_s`` seconds while it is unavailable.

Retention: rows older than ``retention_days`` and beyond the newest ``max_rows`` are deleted at open and
every ``prune_every`` inserts (so the table holds at most ``max_rows + prune_every`` rows). Face crops are stored only when ``save_faces`` is True (privacy: off by
default), as 0600 PNG files in ``faces_dir`` (default: ``<db name>.faces/`` next to the database), named after
their row and deleted with it.

Sharing: the database is 0600, or 0640 when it is shared with a group (an existing file's group read bit is
kept, a new one in a shared directory gets it: the admin page reads it read-only, see docs/deployment.md 3a);
SQLite gives its -wal and -shm files the database's mode. Never any world bits.

Decisions that name nobody store who came closest in ``candidates`` (JSON text, best first). A database of
an older schema gets the new columns when it is opened (:data:`MIGRATIONS`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from edgeface.shared_files import apply_shared, shared_mode

from .events import Event, candidates_json

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,          -- wall clock, ISO 8601 UTC
    unix REAL NOT NULL,          -- wall clock as seconds since 1970 (retention by days)
    t REAL,                      -- seconds since the gate started (monotonic)
    kind TEXT NOT NULL,
    person_id TEXT,
    person TEXT,
    score REAL,
    margin REAL,
    latency_ms REAL,
    duration_s REAL,
    detail TEXT,
    face TEXT,                   -- file name of the saved face crop, if any
    candidates TEXT,             -- JSON: best and second-best person with scores (events that name nobody)
    rule TEXT                    -- the policy rule that decided (door, strict, threshold, ambiguous, lockout, ...)
);
CREATE INDEX IF NOT EXISTS events_unix ON events(unix);
"""

COLUMNS = ("id", "time", "unix", "t", "kind", "person_id", "person", "score", "margin", "latency_ms",
           "duration_s", "detail", "face")
#: columns added after the first schema: (name, SQL type); added to an older database when it is opened
MIGRATIONS = (("candidates", "TEXT"), ("rule", "TEXT"))


class AuditLog:
    def __init__(self, path: str | Path, retention_days: float = 90.0, max_rows: int = 100_000,
                 save_faces: bool = False, faces_dir: str | Path | None = None, prune_every: int = 100,
                 reopen_s: float = 30.0):
        self.path = Path(path)
        self.retention_days = float(retention_days)
        self.max_rows = int(max_rows)
        self.save_faces = bool(save_faces)
        self.faces_dir = Path(faces_dir) if faces_dir is not None else self.path.with_name(self.path.name + ".faces")
        self.prune_every = max(1, int(prune_every))
        self.reopen_s = float(reopen_s)
        self.write_errors = 0
        self.written = 0
        self._burst = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._last_open_try = float("-inf")
        self._since_prune = 0
        self._mode = 0o600
        with self._lock:
            self._try_open()

    # --- writing --------------------------------------------------------------------------------------------
    def record(self, event: Event, face_crop: np.ndarray | None = None) -> bool:
        """Store one event (and its face crop when ``save_faces``). Returns True if the row was written (a crop
        that could not be saved is counted in ``write_errors`` but keeps the row); never raises."""
        try:
            with self._lock:
                if self._closed:
                    return False
                if self._conn is None and not self._try_open():
                    self._failed("database unavailable")
                    return False
                cur = self._conn.execute(
                    "INSERT INTO events (time, unix, t, kind, person_id, person, score, margin, latency_ms, "
                    "duration_s, detail, candidates, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (event.wall, time.time(), _num(event.t), event.kind, event.person_id, event.person,
                     _num(event.score), _num(event.margin), _num(event.latency_ms), _num(event.duration_s),
                     event.detail,
                     None if event.candidates is None else json.dumps(candidates_json(event.candidates)),
                     event.rule),
                )
                self.written += 1
                self._succeeded()
                if self.save_faces and face_crop is not None:
                    try:  # the row is what matters: a crop that cannot be stored is counted, the row kept
                        name = self._save_face(cur.lastrowid, event.kind, face_crop)
                        self._conn.execute("UPDATE events SET face = ? WHERE id = ?", (name, cur.lastrowid))
                    except Exception as exc:
                        self._failed(f"face crop: {type(exc).__name__}: {exc}")
                self._since_prune += 1
                if self._since_prune >= self.prune_every:
                    self._prune()
                return True
        except Exception as exc:  # sqlite3.Error, OSError, MemoryError from a bad crop...: never the caller's problem
            with self._lock:
                self._failed(f"{type(exc).__name__}: {exc}")
                if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
                    self._drop_connection()  # corrupt or not a database: reopen later instead of failing forever
            return False

    def prune(self) -> None:
        """Apply retention now (also done automatically every ``prune_every`` inserts)."""
        try:
            with self._lock:
                if self._conn is not None:
                    self._prune()
        except Exception as exc:
            with self._lock:
                self._failed(f"prune: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_connection()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- reading (tests, diagnostics) -----------------------------------------------------------------------
    def events(self, limit: int = 100) -> list[dict]:
        """The newest ``limit`` rows, oldest first, as dicts keyed by :data:`COLUMNS` plus ``candidates``
        (a list, or None for events that name someone or were written before the column existed)."""
        columns = (*COLUMNS, "candidates", "rule")
        with self._lock:
            if self._conn is None:
                return []
            rows = self._conn.execute(
                f"SELECT {', '.join(columns)} FROM events ORDER BY id DESC LIMIT ?", (int(limit),)
            ).fetchall()
        out = [dict(zip(columns, row)) for row in reversed(rows)]
        for row in out:
            row["candidates"] = None if row["candidates"] is None else json.loads(row["candidates"])
        return out

    def count(self) -> int:
        with self._lock:
            if self._conn is None:
                return 0
            return self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # --- internals (called with the lock held) --------------------------------------------------------------
    def _try_open(self) -> bool:
        now = time.monotonic()
        if now - self._last_open_try < self.reopen_s:
            return False
        self._last_open_try = now
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create_shared()
            conn = sqlite3.connect(str(self.path), timeout=1.0, isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across crashes, no fsync per row
            conn.executescript(_SCHEMA)
            _migrate(conn)
            for path in (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))):
                try:  # names of people and times they came in: owner (and a sharing group) only, never world
                    os.chmod(path, self._mode)
                except OSError:
                    pass
            self._conn = conn
            self._prune()
            if self._burst:
                log.warning("audit log %s is open again", self.path)
            return True
        except Exception as exc:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
            self._conn = None
            self._failed(f"cannot open {self.path}: {type(exc).__name__}: {exc}", count=False)
            return False

    def _create_shared(self) -> None:
        """Create the database file (empty is a valid SQLite database) with its sharing before SQLite does,
        so no -wal or -shm is ever made with a wider mode: 0600, or 0640 with the group of a shared
        directory; an existing file keeps its group read bit (never group write, never world bits)."""
        self._mode, gid = shared_mode(self.path, 0o600, 0o040)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        try:
            apply_shared(fd, self._mode, gid, self.path)
        finally:
            os.close(fd)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _failed(self, reason: str, count: bool = True) -> None:
        if count:
            self.write_errors += 1
        if self._burst == 0:
            log.error("audit log %s: %s (the gate keeps running; further failures are counted, not logged)",
                      self.path, reason)
        self._burst += 1

    def _succeeded(self) -> None:
        if self._burst:
            log.warning("audit log %s: writing again after %d failed attempts", self.path, self._burst)
            self._burst = 0

    def _prune(self) -> None:
        self._since_prune = 0
        cutoff = time.time() - self.retention_days * 86400.0
        newest = self._conn.execute("SELECT MAX(id) FROM events").fetchone()[0] or 0
        where = "unix < ? OR id <= ?"
        args = (cutoff, newest - self.max_rows)
        faces = [r[0] for r in self._conn.execute(f"SELECT face FROM events WHERE ({where}) AND face IS NOT NULL", args)]
        self._conn.execute(f"DELETE FROM events WHERE {where}", args)
        for name in faces:
            try:
                (self.faces_dir / name).unlink()
            except FileNotFoundError:
                pass

    def _save_face(self, row_id: int, kind: str, crop: np.ndarray) -> str:
        import cv2

        ok, png = cv2.imencode(".png", np.ascontiguousarray(crop))
        if not ok:
            raise ValueError("face crop could not be encoded as PNG")
        group_read = self._mode & 0o040  # crops are shared exactly like the database
        if not self.faces_dir.is_dir():
            self.faces_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.faces_dir, 0o700 | (0o050 if group_read else 0))
        name = f"{row_id:010d}_{kind}.png"
        tmp = self.faces_dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600 | group_read)
        with os.fdopen(fd, "wb") as f:
            f.write(png.tobytes())
        os.replace(tmp, self.faces_dir / name)
        return name


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns of :data:`MIGRATIONS` that an older database lacks (another process may add one first)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    for name, sql_type in MIGRATIONS:
        if name in have:
            continue
        try:
            conn.execute(f"ALTER TABLE events ADD COLUMN {name} {sql_type}")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise


def _num(value) -> float | None:
    return None if value is None else float(value)
