"""1:1 verification on real faces: a door clip of enrolled people (real ORL / celeba-loose photos, the reference
MobileFaceNet, YuNet) where each arrives with a badge or PIN claim, through the real gate in simulation
(``--credentials`` on video time); and ``calibrate --mode verify`` storing the 1:1 threshold separately."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from gatekit import Appearance, compose_video, enroll, make_bundle, write_config

from edgeface.access.credentials import ATTRIBUTE, hash_pin
from edgeface.config import load_config
from edgeface.gallery import Gallery

THRESHOLD = 0.40  # the reference model's measured threshold (tests/test_gate_e2e.py)
POLICY = """
[policy]
k = 3
n = 5
face_gap_s = 0.8
max_fps = 5.0
[relay]
backend = "mock"
pulse_s = 0.2
[access]
mode = "{mode}"
claim_window_s = 1.8
verify_threshold = {threshold}
timezone = "Europe/Berlin"
"""


def _photo(root: Path, ident: str, i: int) -> Path:
    return sorted((root / ident).iterdir())[i]


@pytest.fixture(scope="module")
def door(tmp_path_factory, orl_dir, celeba_dir, reference_onnx, detector):
    tmp = tmp_path_factory.mktemp("access_verify")
    bundle = make_bundle(tmp / "bundle", reference_onnx, THRESHOLD)
    celeb = sorted(p.name for p in celeba_dir.iterdir())
    gallery_path = tmp / "people.gallery"
    enroll(gallery_path, bundle, detector, {"s1": _photo(orl_dir, "s1", 0), "s2": _photo(orl_dir, "s2", 0),
                                            celeb[0]: _photo(celeba_dir, celeb[0], 0)})
    g = Gallery.load(gallery_path)
    for pid, badge, pin in (("s1", "0000101", "1111"), ("s2", "0000202", "2222"), (celeb[0], "0000303", "3333")):
        g.find(pid).attributes[ATTRIBUTE] = {"badges": [str(int(badge))], "pin": hash_pin(pin)}
    g.save(gallery_path)
    apps = [  # who really walks up
        Appearance("s1", _photo(orl_dir, "s1", 2), 1.5, 260, (0.1, 0.3), (0.5, 0.4)),
        Appearance(celeb[0], _photo(celeba_dir, celeb[0], 1), 1.5, 300, (0.3, 0.1), (0.6, 0.5)),
        Appearance("s2", _photo(orl_dir, "s2", 3), 2.0, 220, (0.9, 0.6), (0.6, 0.5)),
        Appearance("s1", _photo(orl_dir, "s1", 2), 1.5, 250, (0.6, 0.4), (0.3, 0.3)),
        Appearance("stranger:s7", _photo(orl_dir, "s7", 1), 2.0, 240, (0.8, 0.2), (0.5, 0.3)),
    ]
    video = tmp / "door.avi"
    spans = compose_video(video, apps, fps=10.0, gap_s=1.0)
    return dict(tmp=tmp, bundle=bundle, gallery=gallery_path, video=video, spans=spans, celeb=celeb[0])


def _simulate(door, mode: str, claims: list[dict], name: str) -> list[dict]:
    from edgeface.device.simulate import run_simulation, simulation_config

    cfg_path = write_config(door["tmp"] / f"{name}.toml", door["bundle"], door["gallery"], door["video"],
                            Path(load_config_detector()), POLICY.format(mode=mode, threshold=THRESHOLD))
    creds = door["tmp"] / f"{name}.jsonl"
    creds.write_text("".join(json.dumps(c) + "\n" for c in claims))
    out = io.StringIO()
    cfg = simulation_config(door["video"], config=cfg_path)
    gate = run_simulation(cfg, json_out=out, credentials=creds)
    assert gate.exit_code == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def load_config_detector():
    from conftest import YUNET

    return YUNET


def _at(span) -> float:
    return round(span.t0 + 0.3, 2)


@pytest.mark.slow
def test_face_and_badge_unlocks_exactly_the_honest_claims(door):
    s = door["spans"]
    claims = [{"t": _at(s[0]), "badge": "0000101"},  # s1 with s1's badge: honest
              {"t": _at(s[1]), "badge": "0000101"},  # celeb with s1's badge
              {"t": _at(s[2]), "badge": "0000202"},  # s2 with s2's badge: honest
              {"t": _at(s[3]), "badge": "0000202"},  # s1 with s2's badge
              {"t": _at(s[4]), "badge": "0000101"}]  # a stranger with a valid badge
    events = _simulate(door, "face_and_badge", claims, "badge")
    granted = [(e["person"], e["t"]) for e in events if e["event"] == "granted"]
    assert [p for p, _ in granted] == ["s1", "s2"], events
    assert s[0].t0 <= granted[0][1] <= s[0].t1 and s[2].t0 <= granted[1][1] <= s[2].t1
    denied = [e for e in events if e["event"] == "denied" and e.get("detail", "").startswith("badge")]
    assert len(denied) == 3 and all("no matching face within claim_window_s" in e["detail"] for e in denied)
    assert [e["person"] for e in denied] == ["s1", "s2", "s1"]  # the claimed (badge) person, audited
    unlocks = [e for e in events if e["event"] == "unlock"]
    assert len(unlocks) == 2


@pytest.mark.slow
def test_face_and_pin_never_unlocks_a_correct_pin_with_the_wrong_face(door):
    s = door["spans"]
    claims = [{"t": _at(s[0]), "pin": "2222"},   # s1 types s2's (correct) PIN
              {"t": _at(s[1]), "pin": "1111"},   # celeb types s1's PIN
              {"t": _at(s[2]), "pin": "2222"},   # s2 types their own PIN: the positive control
              {"t": _at(s[3]), "pin": "9999"},   # s1 types a PIN nobody has
              {"t": _at(s[4]), "pin": "1111"}]   # a stranger types s1's PIN
    events = _simulate(door, "face_and_pin", claims, "pin")
    assert [e["person"] for e in events if e["event"] == "granted"] == ["s2"], events
    pin_denials = [e for e in events if e["event"] == "denied" and e.get("detail", "").startswith("PIN")]
    assert len(pin_denials) == 4, [e.get("detail") for e in events if e["event"] == "denied"]
    assert not any("2222" in json.dumps(e) or "1111" in json.dumps(e) for e in events)  # a PIN is never logged


@pytest.mark.slow
def test_face_alone_opens_nothing_in_a_1to1_mode(door):
    events = _simulate(door, "face_and_badge", [], "none")
    assert not [e for e in events if e["event"] in ("granted", "unlock")]


@pytest.mark.slow
def test_calibrate_verify_stores_a_separate_1to1_threshold(door, orl_dir, tmp_path, reference_onnx):
    from facekit import orl_subset

    from edgeface.bundle import Bundle
    from edgeface.cli import main
    from edgeface.thresholds import resolve

    data = orl_subset(orl_dir, tmp_path / "cal", identities=10, per_identity=4)  # 720 impostor pairs
    bundle = make_bundle(tmp_path / "bundle", reference_onnx, THRESHOLD)
    rc = main(["calibrate", "--mode", "verify", "--bundle", str(bundle), "--data", str(data), "--far", "1e-2",
               "--detector-model", str(load_config_detector()), "--json", str(tmp_path / "cal.json")])
    assert rc == 0
    b = Bundle.load(bundle)
    v = b.threshold("onnx_fp32:verify")
    assert v is not None and v.far == 1e-2 and v.fnir is None and 0 < v.tar <= 1
    assert b.threshold("onnx_fp32").value == THRESHOLD  # the 1:N threshold is untouched
    report = json.loads((tmp_path / "cal.json").read_text())
    assert report["mode"] == "verify" and report["achieved_far"] <= 1e-2 and report["fnir"] is None
    cfg = load_config(write_config(tmp_path / "g.toml", bundle, tmp_path / "x.gallery", "0", load_config_detector()))
    th = resolve(b, "onnx_fp32", cfg.policy, cfg.access)
    assert (th.verify.value, th.verify.source) == (v.value, "1:1 calibrated at FAR 0.01")


@pytest.mark.slow
def test_pin_guessing_with_an_employees_face_ends_in_a_lockout_at_the_real_gate(door):
    """Issue 23's attack through the real gate: s1's face at the camera and a PIN every 0.1 s, then the right
    one. Three wrong PINs are denied, a lockout event names s1, the right PIN is denied while locked; s2 with
    their own PIN is still let in."""
    s = door["spans"]
    t0 = _at(s[0])
    claims = [{"t": round(t0 + 0.1 * i, 2), "pin": f"{9000 + i}"} for i in range(11)]
    claims += [{"t": round(t0 + 1.15, 2), "pin": "1111"},  # s1's own PIN, after the lockout
               {"t": _at(s[2]), "pin": "2222"},            # s2's own PIN: the positive control
               {"t": _at(s[3]), "pin": "1111"}]            # s1 back with the right PIN, still locked
    events = _simulate(door, "face_and_pin", claims, "pin_guess")
    assert [e["person"] for e in events if e["event"] == "granted"] == ["s2"], events
    lockouts = [e for e in events if e["event"] == "lockout"]
    assert len(lockouts) == 1 and lockouts[0]["person"] == "s1" and lockouts[0]["rule"] == "pin_attempts"
    wrong = [e for e in events if e["event"] == "denied" and e.get("rule") == "pin"]
    locked = [e for e in events if e["event"] == "denied" and e.get("rule") == "lockout" and e["person"] == "s1"]
    assert len(wrong) == 3 and len(locked) >= 2  # the right PIN at s[0] and at s[3] among them
    assert [e["person"] for e in events if e["event"] == "unlock"] == ["s2"]
    assert not any("1111" in json.dumps(e) for e in events)


@pytest.mark.slow
def test_ten_swipes_of_one_badge_unlock_once_at_the_real_gate(door):
    s = door["spans"]
    claims = [{"t": round(_at(s[2]) + 0.3 * i, 2), "badge": "0000202"} for i in range(10)]  # 2.7 s of swipes
    events = _simulate(door, "face_or_badge", claims, "swipes")
    s2 = [e for e in events if e.get("person") == "s2" and e["event"] in ("granted", "denied", "unlock")]
    assert [e["event"] for e in s2].count("unlock") == 1, s2
    assert [e["event"] for e in s2].count("granted") == 1
    assert all(e.get("rule") == "cooldown" for e in s2 if e["event"] == "denied")
