"""The run summary: ``gate --simulate`` ends with one summary event whose counts agree with the events before
it, the same figures appear once as a human line on stderr, and the daemon logs one every interval."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from gatekit import Appearance, compose_video, enroll, make_bundle, write_config

from edgeface.config import load_config

THRESHOLD = 0.40  # the reference model's (as in test_gate_e2e)
KEYS = {"event", "frames", "face_frames", "latency_ms", "face_latency_ms", "stages_ms", "decisions", "unlocks"}
POLICY = """
[policy]
k = 3
n = 5
face_gap_s = 0.8

[relay]
backend = "mock"
pulse_s = 0.2
"""


@pytest.fixture(scope="module")
def door(tmp_path_factory, orl_dir, celeba_dir, reference_onnx, detector):
    tmp = tmp_path_factory.mktemp("summary")
    bundle = make_bundle(tmp / "bundle", reference_onnx, THRESHOLD)
    gallery = tmp / "people.gallery"
    enroll(gallery, bundle, detector, {"s1": sorted((orl_dir / "s1").iterdir())[0]})
    celeb = sorted(p.name for p in celeba_dir.iterdir())
    apps = [Appearance("s1", sorted((orl_dir / "s1").iterdir())[2], 1.6, 260, (0.2, 0.3), (0.5, 0.4)),
            Appearance("stranger:s9", sorted((orl_dir / "s9").iterdir())[1], 1.6, 240, (0.7, 0.2), (0.5, 0.3)),
            Appearance(f"stranger:{celeb[4]}", sorted((celeba_dir / celeb[4]).iterdir())[0], 1.6, 300,
                       (0.4, 0.5), (0.5, 0.4))]
    video = tmp / "door.avi"
    compose_video(video, apps, fps=5.0, gap_s=1.2)
    config = write_config(tmp / "gate.toml", bundle, gallery, video, detector.model_path, POLICY)
    return dict(tmp=tmp, bundle=bundle, gallery=gallery, video=video, config=config)


def _check(summary: dict, events: list[dict]) -> None:
    assert set(summary) == KEYS
    assert set(summary["latency_ms"]) == set(summary["face_latency_ms"]) == {"p50", "p95"}
    assert set(summary["stages_ms"]) == {"detect", "landmarks", "align", "embed", "match"}
    assert set(summary["decisions"]) == {"granted", "denied", "unknown", "no_decision"}
    for kind, n in summary["decisions"].items():
        assert n == sum(e["event"] == kind for e in events), kind
    assert summary["unlocks"] == sum(e["event"] == "unlock" for e in events)


def test_simulate_ends_with_a_summary_that_agrees_with_its_events(door):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "edgeface.cli", "gate", "--simulate", str(door["video"]),
                           "--config", str(door["config"])], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    summary, events = lines[-1], lines[:-1]
    assert summary["event"] == "summary" and events[-1]["event"] == "stopping"
    assert sum(e["event"] == "summary" for e in lines) == 1
    _check(summary, events)
    assert summary["unlocks"] == 1 and summary["decisions"]["granted"] == 1  # s1 once, the strangers never
    assert 0 < summary["face_frames"] < summary["frames"]  # the clip has empty wall between the people
    lat, face = summary["latency_ms"], summary["face_latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] and 0 < face["p50"] <= face["p95"]
    assert face["p50"] >= summary["stages_ms"]["embed"] > 0  # a face frame includes its embedding
    assert all(v is not None and v >= 0 for v in summary["stages_ms"].values())
    # the same figures, once, in a line for a person on stderr
    human = [line for line in proc.stderr.splitlines() if line.startswith("summary:")]
    assert len(human) == 1, proc.stderr[-2000:]
    h = human[0]
    assert f"{summary['frames']} frames, {summary['face_frames']} with a face" in h
    assert f"p95 {face['p95']:.1f} ms" in h and f"embed {summary['stages_ms']['embed']:.1f}" in h
    assert f"{summary['decisions']['granted']} granted" in h and f"unlocks {summary['unlocks']}" in h


@pytest.mark.slow
def test_the_daemon_logs_a_summary_every_interval(door):
    """Real-time replay (the daemon's clock): a summary every audit.summary_every_min, each for its interval;
    together they account for every processed frame and every decision."""
    from edgeface.device.simulate import run_simulation, simulation_config

    cfg = simulation_config(door["video"], config=door["config"])
    cfg = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"summary_every_min": 2.0 / 60})})
    log, out = io.StringIO(), io.StringIO()
    gate = run_simulation(cfg, realtime=True, json_out=out, log_out=log)
    assert gate.exit_code == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    summaries = [e for e in lines if e["event"] == "summary"]
    events = [e for e in lines if e["event"] != "summary"]
    assert len(summaries) >= 3, [s["frames"] for s in summaries]  # ~9 s of video, one every 2 s, and the last
    assert sum(s["frames"] for s in summaries) == gate.stats["processed"]
    total = {k: sum(s["decisions"][k] for s in summaries) for k in summaries[0]["decisions"]}
    _check({**summaries[-1], "decisions": total, "unlocks": sum(s["unlocks"] for s in summaries)}, events)
    human = [line for line in log.getvalue().splitlines() if line.startswith("summary:")]
    assert len(human) == len(summaries)
    assert all(re.search(r"summary: \d+ frames, \d+ with a face; frame->decision p50", h) for h in human)
    assert load_config(door["config"]).audit.summary_every_min == 10.0  # the default
