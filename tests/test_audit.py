"""The audit log on real SQLite files: WAL mode, retention by rows and days, face crops only when asked,
and real write failures (a parent that is a file, a full database, a read-only connection, a corrupt
file) that are counted and logged once per burst, never raised. Tests run as root here, so a chmod'ed
directory alone would not fail; the cases below fail for root too (the chmod case runs where it can)."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time

import cv2
import numpy as np
import pytest

from edgeface.device import audit as audit_module
from edgeface.device.audit import AuditLog
from edgeface.device.events import Event


def granted(i: int, person="Ada Lovelace") -> Event:
    return Event("granted", t=i * 0.1, person_id="p1", person=person, score=0.71, margin=0.2, latency_ms=33.5)


def audit_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == audit_module.__name__ and r.levelno >= logging.ERROR]


def test_rows_round_trip_in_wal_mode(tmp_path):
    path = tmp_path / "var" / "audit.db"
    log = AuditLog(path)
    assert log.record(granted(1))
    assert log.record(Event("unlock", t=0.2, person="Ada Lovelace", duration_s=3.0))
    assert log.record(Event("camera_lost", t=0.3, detail="no frame within 2 s"))
    rows = log.events(10)
    assert [r["kind"] for r in rows] == ["granted", "unlock", "camera_lost"]
    r = rows[0]
    assert (r["person_id"], r["person"], r["score"], r["margin"], r["latency_ms"]) == ("p1", "Ada Lovelace", 0.71, 0.2, 33.5)
    assert r["time"].endswith("+00:00") and r["face"] is None
    assert rows[1]["duration_s"] == 3.0 and rows[2]["detail"] == "no frame within 2 s"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    other = sqlite3.connect(path)  # another reader sees the rows while the log is open: WAL
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
    other.close()
    assert (tmp_path / "var" / "audit.db-wal").exists()
    log.close()
    log.close()
    assert log.record(granted(2)) is False  # after close: refused, not raised


def test_retention_by_rows_keeps_the_newest(tmp_path):
    log = AuditLog(tmp_path / "a.db", max_rows=100, prune_every=10)
    for i in range(250):
        assert log.record(granted(i))
    assert log.count() <= 100 + 10
    log.prune()
    rows = log.events(1000)
    assert len(rows) == 100 and rows[-1]["id"] == 250 and rows[0]["id"] == 151
    log.close()


def test_retention_by_days(tmp_path, monkeypatch):
    now = time.time()
    log = AuditLog(tmp_path / "a.db", retention_days=30, prune_every=1000)
    monkeypatch.setattr(audit_module.time, "time", lambda: now - 31 * 86400)
    for i in range(5):
        log.record(granted(i, person="old"))
    monkeypatch.setattr(audit_module.time, "time", lambda: now - 29 * 86400)
    log.record(granted(5, person="recent"))
    monkeypatch.undo()
    log.record(granted(6, person="today"))
    assert log.count() == 7
    log.prune()
    assert [r["person"] for r in log.events()] == ["recent", "today"]
    log.close()
    reopened = AuditLog(tmp_path / "a.db", retention_days=1)  # retention also applies at open
    assert [r["person"] for r in reopened.events()] == ["today"]
    reopened.close()


def test_face_crops_only_when_asked_and_pruned_with_their_rows(tmp_path):
    crop = np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    off = AuditLog(tmp_path / "off.db")
    off.record(granted(0), face_crop=crop)
    assert off.events()[0]["face"] is None
    assert not (tmp_path / "off.db.faces").exists() and not any(p.suffix == ".png" for p in tmp_path.rglob("*"))
    off.close()

    faces = tmp_path / "faces"
    on = AuditLog(tmp_path / "on.db", max_rows=3, prune_every=1000, save_faces=True, faces_dir=faces)
    for i in range(5):
        on.record(granted(i), face_crop=crop)
    on.record(Event("camera_lost", t=1.0))  # no crop: no file
    names = [r["face"] for r in on.events()]
    assert names[:5] == [f"{i:010d}_granted.png" for i in range(1, 6)] and names[5] is None
    stored = cv2.imread(str(faces / names[0]))
    assert np.array_equal(stored, crop)  # lossless
    assert stat.S_IMODE(os.stat(faces / names[0]).st_mode) == 0o600
    on.prune()
    assert sorted(p.name for p in faces.iterdir()) == names[3:5]
    on.close()


def test_parent_that_is_a_file_counts_errors_and_logs_once(tmp_path, caplog):
    blocker = tmp_path / "var"
    blocker.write_text("a file where the directory should be")
    caplog.set_level(logging.INFO)
    log = AuditLog(blocker / "audit.db", reopen_s=0)
    results = [log.record(granted(i)) for i in range(5)]
    assert results == [False] * 5 and log.write_errors == 5
    assert len(audit_errors(caplog)) == 1  # one burst, one line
    blocker.unlink()  # the operator fixes it: the next record reopens and writes
    assert log.record(granted(5)) is True
    assert log.count() == 1 and any("open again" in r.getMessage() for r in caplog.records)
    log.close()


def test_full_database_is_counted_and_recovers(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    log = AuditLog(tmp_path / "a.db", prune_every=100_000)
    log.record(granted(0))
    pages = log._conn.execute("PRAGMA page_count").fetchone()[0]
    log._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full: SQLite's own SQLITE_FULL
    results = [log.record(Event("denied", t=i, detail="x" * 2000)) for i in range(50)]
    assert results.count(False) >= 40 and log.write_errors == results.count(False)
    assert len(audit_errors(caplog)) == 1 and "full" in audit_errors(caplog)[0]
    log._conn.execute("PRAGMA max_page_count = 1073741823")
    assert log.record(granted(1)) is True
    assert any("writing again" in r.getMessage() for r in caplog.records)
    log.close()


def test_read_only_database_is_counted(tmp_path, caplog):
    log = AuditLog(tmp_path / "a.db")
    log._conn.execute("PRAGMA query_only = ON")
    assert log.record(granted(0)) is False and log.record(granted(1)) is False
    assert log.write_errors == 2 and len(audit_errors(caplog)) == 1
    log.close()


def test_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a 0500 directory is still writable (covered by the tests above)")
        log = AuditLog(ro / "audit.db")
        assert log.record(granted(0)) is False and log.write_errors == 1
        log.close()
    finally:
        ro.chmod(0o700)


def test_corrupt_database_file_never_raises(tmp_path):
    path = tmp_path / "a.db"
    path.write_bytes(b"this is not an SQLite database" * 100)
    log = AuditLog(path)
    assert log.record(granted(0)) is False and log.write_errors == 1
    assert log.events() == [] and log.count() == 0
    log.close()


def test_a_bad_face_crop_is_counted_and_the_row_kept(tmp_path):
    log = AuditLog(tmp_path / "a.db", save_faces=True)
    assert log.record(granted(0), face_crop=np.zeros((0, 0, 3), np.uint8)) is True
    assert log.write_errors == 1 and [r["face"] for r in log.events()] == [None]
    assert log.record(granted(1)) is True
    log.close()


# --- the event record the audit log stores ------------------------------------------------------------------

def test_event_json_has_the_simulate_keys_and_is_strict_json():
    import json

    unlock = Event("unlock", t=12.3456789, person="Ada Lovelace", person_id="p1", duration_s=3.0)
    doc = unlock.to_json()
    assert {"event", "person", "score", "t", "duration"} <= doc.keys()
    assert doc["event"] == "unlock" and doc["duration"] == 3.0 and doc["t"] == pytest.approx(12.3457)
    denied = Event("denied", t=1.0, score=float("nan"), margin=float("inf")).to_json()
    assert denied["person"] is None and denied["score"] is None and denied["margin"] is None
    assert "duration" not in denied
    json.dumps(doc, allow_nan=False)
    json.dumps(denied, allow_nan=False)


def test_event_log_line_is_one_parseable_line():
    import shlex

    e = Event("granted", t=3.25, person='Ada "the Countess" L', score=0.7123, detail="a=b\nsecond line \\ end")
    line = e.log_line()
    assert "\n" not in line and line.startswith("event=granted t=3.250 ")
    fields = dict(part.split("=", 1) for part in shlex.split(line))
    assert fields["person"] == 'Ada "the Countess" L' and fields["score"] == "0.712"
    assert fields["detail"] == "a=b\\nsecond line \\ end"
    assert "margin" not in fields  # unset fields are left out
    assert Event("started", t=0.0).log_line() == "event=started t=0.000"
