"""The access CLIs: ``people set`` (badges, PIN prompt, schedule, validity), ``events`` filters and formats on a
real audit database, ``relay test`` on a MockFactory relay, ``camera check`` on a real video file."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import numpy as np
import pytest
from gatekit import background, write_config

from edgeface.cli import main
from edgeface.device.audit import AuditLog
from edgeface.device.events import Event
from edgeface.gallery import Gallery


@pytest.fixture
def gallery(tmp_path):
    g = Gallery.new("a" * 64, 4)
    g.add("Ada", np.eye(4)[:1], person_id="ada")
    g.add("Bob", np.eye(4)[1:2], person_id="bob")
    g.save(tmp_path / "p.gallery")
    return tmp_path / "p.gallery"


def test_people_set_badges_pin_schedule_and_clearing(gallery, monkeypatch, capsys):
    pins = iter(["4711", "4711"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(pins))
    assert main(["people", "set", "Ada", "--gallery", str(gallery), "--badge", "0012345", "--pin-prompt",
                 "--schedule", "Mon-Fri 07:00-19:00", "--valid-until", "2026-12-31"]) == 0
    rec = Gallery.load(gallery).find("Ada").attributes["access"]
    assert rec["badges"] == ["12345"] and rec["schedule"] == "Mon-Fri 07:00-19:00" and rec["valid_until"] == "2026-12-31"
    assert rec["pin"]["scheme"] == "scrypt" and "4711" not in gallery.read_bytes().decode("latin-1")
    assert main(["people", "set", "Bob", "--gallery", str(gallery), "--badge", "12345"]) == 1  # Ada's badge
    assert "already belongs to 'Ada'" in capsys.readouterr().err
    assert main(["people", "set", "Ada", "--gallery", str(gallery), "--schedule", "Mon 9-5"]) == 1
    assert main(["people", "set", "Ada", "--gallery", str(gallery), "--clear-pin", "--clear-badge"]) == 0
    rec = Gallery.load(gallery).find("Ada").attributes["access"]
    assert "pin" not in rec and "badges" not in rec and rec["schedule"]
    pins = iter(["1234", "4321"])
    assert main(["people", "set", "Bob", "--gallery", str(gallery), "--pin-prompt"]) == 1  # the two PINs differ
    assert "access" not in Gallery.load(gallery).find("Bob").attributes
    assert (gallery.stat().st_mode & 0o777) == 0o600


@pytest.fixture
def audit_db(tmp_path):
    db = tmp_path / "audit.db"
    with AuditLog(db) as log:
        for kind, person in (("granted", "Ada"), ("unlock", "Ada"), ("denied", "Bob"), ("door_forced", None),
                             ("granted", "Bob")):
            log.record(Event(kind, 1.0, person=person, person_id=person and person.lower(), score=0.5 if person else None))
    with sqlite3.connect(db) as c:  # one old row, for --since
        c.execute("UPDATE events SET unix = unix - 7200, time = '2000-01-01T00:00:00.000+00:00' WHERE id = 1")
    return db


def test_events_filters_and_formats(audit_db, capsys):
    assert main(["events", "--db", str(audit_db), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["granted", "unlock", "denied", "door_forced", "granted"]
    assert main(["events", "--db", str(audit_db), "--json", "--since", "1h", "--kind", "granted,denied"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["person"]) for r in rows] == [("denied", "Bob"), ("granted", "Bob")]
    assert main(["events", "--db", str(audit_db), "--csv", "--person", "ada"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["kind"] for r in rows] == ["granted", "unlock"] and rows[0]["person"] == "Ada"
    assert main(["events", "--db", str(audit_db), "--kind", "door_forced"]) == 0
    assert "door_forced" in capsys.readouterr().out
    assert main(["events", "--db", str(audit_db), "--since", "yesterday"]) == 1
    assert main(["events", "--db", str(audit_db.with_name("none.db"))]) == 1


def test_events_follow_prints_new_rows(audit_db, capsys):
    import threading
    import time

    def later():
        time.sleep(0.5)
        with AuditLog(audit_db) as log:
            log.record(Event("tamper", 2.0, detail="tamper switch triggered"))

    threading.Thread(target=later).start()
    assert main(["events", "--db", str(audit_db), "--kind", "tamper", "--json", "--follow", "--follow-seconds", "1.5"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["tamper"]


def _config(tmp_path, source, extra=""):
    return write_config(tmp_path / "gate.toml", tmp_path / "bundle", tmp_path / "p.gallery", source,
                        tmp_path / "yunet.onnx", f'[relay]\nbackend = "mock"\n[audit]\npath = "{tmp_path / "audit.db"}"\n' + extra)


def test_relay_test_pulses_once_and_is_audited(tmp_path, capsys, monkeypatch):
    pytest.importorskip("gpiozero")
    cfg = _config(tmp_path, "0")
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["relay", "test", "--config", str(cfg)]) == 1  # not a terminal and no --yes: refused
    assert not (tmp_path / "audit.db").exists()
    assert main(["relay", "test", "--config", str(cfg), "--pulse", "0.3", "--yes"]) == 0
    assert "pulsed relay mock pin 17" in capsys.readouterr().out
    with AuditLog(tmp_path / "audit.db") as log:
        (row,) = log.events()
    assert row["kind"] == "relay_test" and row["duration_s"] == pytest.approx(0.3, abs=0.05)
    assert main(["relay", "test", "--config", str(cfg), "--pulse", "20", "--yes"]) == 1


@pytest.mark.slow  # the empty camera is given the gate's 10 s open timeout
def test_camera_check_reports_a_video_and_fails_without_frames(tmp_path, yunet_path, orl_dir, capsys):
    import cv2

    frame = background()
    face = cv2.resize(cv2.imread(str(sorted((orl_dir / "s1").iterdir())[0])), (184, 224))
    frame[100:324, 200:384] = face
    video = tmp_path / "cam.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for _ in range(10):
        w.write(frame)
    w.release()
    cfg = write_config(tmp_path / "gate.toml", tmp_path / "b", tmp_path / "g", video, yunet_path)
    snap = tmp_path / "snap.jpg"
    assert main(["camera", "check", "--config", str(cfg), "--seconds", "1", "--json", "--snapshot", str(snap)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["width"], report["height"]) == (640, 480) and report["frames"] == 10
    assert report["frames_with_face"] == 10 and report["detector_ms_median"] > 0 and snap.stat().st_size > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = write_config(tmp_path / "bad.toml", tmp_path / "b", tmp_path / "g", empty, yunet_path)
    text = cfg.read_text().replace('source = "', 'read_timeout_s = 0.5\nretry_initial_s = 0.2\nretry_max_s = 0.2\nsource = "')
    cfg.write_text(text)
    assert main(["camera", "check", "--config", str(cfg), "--seconds", "1"]) == 1
    assert "no frame" in capsys.readouterr().err
