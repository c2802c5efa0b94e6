"""An audit database of the first schema (no ``candidates`` column) still opens, keeps its rows and gets the
new column; the database shares with a group exactly as its file says, never with the world."""

from __future__ import annotations

import grp
import os
import sqlite3
import stat
import time

import pytest

from edgeface.device.audit import AuditLog
from edgeface.device.events import Event, now_wall

#: the schema the gate wrote before decisions carried candidates (device/audit.py up to f6e02bd~1)
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    unix REAL NOT NULL,
    t REAL,
    kind TEXT NOT NULL,
    person_id TEXT,
    person TEXT,
    score REAL,
    margin REAL,
    latency_ms REAL,
    duration_s REAL,
    detail TEXT,
    face TEXT
);
CREATE INDEX IF NOT EXISTS events_unix ON events(unix);
"""
CANDIDATES = [{"person": "Ada", "person_id": "a1", "score": 0.3812}, {"person": "Bob", "person_id": "b2", "score": 0.2}]


def _old_database(path):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO events (time, unix, t, kind, person, score, detail) VALUES "
                 "(?, ?, 1.0, 'unknown', NULL, 0.31, NULL)", (now_wall(), time.time()))
    conn.commit()
    conn.close()


def _columns(path):
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(events)")]


def test_an_old_schema_database_opens_and_gets_the_candidates_column(tmp_path):
    db = tmp_path / "audit.db"
    _old_database(db)
    assert "candidates" not in _columns(db)
    with AuditLog(db) as audit:
        assert audit.record(Event("unknown", 2.0, score=0.3812, candidates=CANDIDATES))
        assert audit.write_errors == 0
        rows = audit.events()
    assert "candidates" in _columns(db)
    assert [(r["kind"], r["score"], r["candidates"]) for r in rows] == [
        ("unknown", 0.31, None), ("unknown", 0.3812, CANDIDATES)]
    with AuditLog(db) as audit:  # opening the migrated database again changes nothing
        assert len(audit.events()) == 2
    assert _columns(db).count("candidates") == 1


def _a_group():
    for name in ("nogroup", "users"):
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            pass
    pytest.skip("no group nogroup or users on this machine")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root here")
def test_a_shared_audit_database_keeps_group_read_never_world(tmp_path):
    gid = _a_group()
    shared = tmp_path / "state"
    shared.mkdir()
    os.chown(shared, -1, gid)
    os.chmod(shared, 0o2770)
    db = shared / "audit.db"
    with AuditLog(db, save_faces=True) as audit:  # new, in a shared directory: 0640, the directory's group
        import numpy as np
        audit.record(Event("unknown", 1.0), face_crop=np.zeros((112, 112, 3), np.uint8))
        for path in (db, db.with_name("audit.db-wal"), db.with_name("audit.db-shm")):
            assert _mode(path) == 0o640 and os.stat(path).st_gid == gid, path
        assert _mode(audit.faces_dir) & 0o077 == 0o050
        assert all(_mode(p) == 0o640 for p in audit.faces_dir.iterdir())

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with AuditLog(private / "audit.db"):  # a private directory: 0600
        assert _mode(private / "audit.db") == 0o600

    old = tmp_path / "old.db"  # an old 0666 database: world bits dropped, group read kept, group write not
    _old_database(old)
    os.chown(old, -1, gid)
    os.chmod(old, 0o666)
    with AuditLog(old):
        assert _mode(old) == 0o640 and os.stat(old).st_gid == gid
