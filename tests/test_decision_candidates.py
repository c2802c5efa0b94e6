"""Events that name nobody explain themselves: unknown, denied ambiguous and no_decision carry the best and
second-best gallery candidates with scores, in the JSON line, the log line and the audit database.

Real faces through the real gate in simulation (door clips composed from ORL photos, as in test_gate_e2e).
"""

from __future__ import annotations

import io
import json
import random

import pytest
from gatekit import Appearance, compose_video, make_bundle, write_config
from gatekit import enroll as enroll_people

from edgeface.device.candidates import TopCandidates
from edgeface.gallery import Gallery

THRESHOLD = 0.40
POLICY = """
[policy]
k = 3
n = 5
face_gap_s = 0.8
max_fps = 5.0
lockout_unknown = 10

[relay]
backend = "mock"
pulse_s = 0.2
"""
NAMING_NOBODY = ("unknown", "denied", "no_decision")


def _photo(root, ident, i):
    return sorted((root / ident).iterdir())[i]


def test_top_candidates_are_the_two_best_persons_by_their_best_score():
    """Against brute force on random streams: two slots give exactly the top two per-person maxima."""
    rng = random.Random(0)
    for _ in range(200):
        top, best = TopCandidates(), {}
        for _ in range(rng.randint(0, 30)):
            pid, score = f"p{rng.randint(0, 6)}", rng.uniform(-1, 1)
            top.add(pid, pid.upper(), score)
            best[pid] = max(best.get(pid, -2.0), score)
        want = sorted(best.items(), key=lambda kv: -kv[1])[:2]
        assert [(c["person_id"], c["score"]) for c in top.as_list()] == want
        assert all(c["person"] == c["person_id"].upper() for c in top.as_list())
    top = TopCandidates()
    top.add(None, None, 0.9)  # nobody enrolled: no candidate
    top.add("a", "A", float("nan"))
    assert top.as_list() == ()


@pytest.fixture(scope="module")
def door(tmp_path_factory, orl_dir, reference_onnx, detector):
    tmp = tmp_path_factory.mktemp("candidates")
    bundle = make_bundle(tmp / "bundle", reference_onnx, THRESHOLD)
    # s4's one photo under two names: every s4 frame is above the threshold for both, with margin 0
    people = {"s1": _photo(orl_dir, "s1", 0), "s2": _photo(orl_dir, "s2", 0), "s4": _photo(orl_dir, "s4", 0),
              "s4 twin": _photo(orl_dir, "s4", 0)}
    gallery = tmp / "people.gallery"
    enroll_people(gallery, bundle, detector, people)
    apps = [
        Appearance("stranger:s7", _photo(orl_dir, "s7", 1), 2.2, 240, (0.2, 0.3), (0.4, 0.4)),   # unknown
        Appearance("s4", _photo(orl_dir, "s4", 2), 2.2, 260, (0.6, 0.3), (0.5, 0.4)),            # ambiguous
        Appearance("stranger:s9", _photo(orl_dir, "s9", 2), 0.6, 250, (0.4, 0.5), (0.45, 0.5)),  # short, unknown
    ]
    video = tmp / "door.avi"
    compose_video(video, apps, fps=10.0, gap_s=1.0)
    empty = tmp / "empty.gallery"
    Gallery(Gallery.load(gallery).fingerprint, 128, []).save(empty)
    return dict(tmp=tmp, bundle=bundle, gallery=gallery, video=video, empty=empty,
                config=write_config(tmp / "gate.toml", bundle, gallery, video, detector.model_path, POLICY))


def _run(door, gallery, audit_path):
    from edgeface.device.audit import AuditLog
    from edgeface.device.simulate import run_simulation, simulation_config

    cfg = simulation_config(door["video"], gallery=gallery, config=door["config"])
    out, log = io.StringIO(), io.StringIO()
    gate = run_simulation(cfg, json_out=out, log_out=log, audit=AuditLog(audit_path))  # the gate closes it
    assert gate.exit_code == 0
    with AuditLog(audit_path) as audit:
        rows = audit.events(1000)
    return [json.loads(line) for line in out.getvalue().splitlines()], log.getvalue().splitlines(), rows


def test_unknown_ambiguous_and_no_decision_name_who_came_closest(door):
    events, log_lines, rows = _run(door, door["gallery"], door["tmp"] / "audit.db")
    kinds = [e["event"] for e in events]
    assert "granted" not in kinds
    enrolled = {"s1", "s2", "s4", "s4 twin"}

    unknown = [e for e in events if e["event"] == "unknown"]
    assert unknown, kinds
    for e in unknown:  # the stranger s7: both candidates are enrolled people, best first, below the threshold
        c = e["candidates"]
        assert len(c) == 2 and {x["person"] for x in c} <= enrolled and c[0]["person"] != c[1]["person"]
        assert c[0]["score"] >= c[1]["score"] and c[0]["score"] == pytest.approx(e["score"], abs=1e-4)
        assert c[0]["score"] < THRESHOLD
        assert e["person"] is None

    ambiguous = [e for e in events if e["event"] == "denied" and e.get("detail") == "ambiguous"]
    assert ambiguous, kinds
    for e in ambiguous:  # s4 under two names: the two names, both above the threshold, the same score
        c = e["candidates"]
        assert {x["person"] for x in c} == {"s4", "s4 twin"}
        assert min(x["score"] for x in c) >= THRESHOLD
        assert c[0]["score"] == pytest.approx(c[1]["score"], abs=1e-3)

    # the short appearance (s9, 0.6 s) is an attempt too, whatever its length, and says so
    short = [e for e in unknown if "appearance ended after" in (e.get("detail") or "")]
    assert short, kinds
    assert all(e["rule"] == "threshold" for e in unknown)

    # the journal line says the same
    for line in log_lines:
        if line.startswith("event=unknown") or "detail=ambiguous" in line:
            assert " best=" in line and " best_score=" in line and " second=" in line and " second_score=" in line
    assert any(line.startswith("event=denied") and ("best=s4" in line or 'best="s4 twin"' in line)
               for line in log_lines)

    # ... and the audit database, row for row
    explained = [r for r in rows if r["kind"] in NAMING_NOBODY]
    assert [r["candidates"] for r in explained] == [e["candidates"] for e in events if e["event"] in NAMING_NOBODY]
    assert all(r["candidates"] is None for r in rows if r["kind"] in ("started", "stopping"))


def test_nobody_enrolled_says_so(door):
    events, log_lines, rows = _run(door, door["empty"], door["tmp"] / "audit-empty.db")
    named = [e for e in events if e["event"] in NAMING_NOBODY]
    assert named
    for e in named:
        assert e["candidates"] == []
        assert "nobody is enrolled" in e["detail"]
        assert "matched face frame" not in e["detail"]
    assert not any("matched face frame" in line for line in log_lines)
    assert [r["candidates"] for r in rows if r["kind"] in NAMING_NOBODY] == [[] for _ in named]
