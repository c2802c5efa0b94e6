"""validate-config runs the gate's pre-flight; every config or file problem at gate start exits 78.
Thresholds are refused when meaningless, and below the calibrated one unless acknowledged; edgeface.json
is covered by an integrity sha256 (every field tampered in turn is refused); degraded models need consent."""

from __future__ import annotations

import json
import math

import pytest

from edgeface.bundle import Bundle, Threshold
from edgeface.cli import main
from edgeface.errors import ChecksumError, ConfigError

from gatekit import enroll, make_bundle, write_config


@pytest.fixture
def setup(tmp_path, reference_onnx, orl_dir, detector, yunet_path):
    bundle = make_bundle(tmp_path / "bundle", reference_onnx, 0.42)
    b = Bundle.load(bundle)
    b.meta.thresholds["onnx_fp32"] = Threshold(value=0.42, far=1e-3, data="test",
                                               points=[(0.30, 1e-2), (0.36, 3e-3), (0.42, 1e-3), (0.47, 1e-4)])
    b.save()
    gallery = tmp_path / "people.efg"
    enroll(gallery, bundle, detector, {"s1": orl_dir / "s1" / "1.png"})

    def config(extra="", **kw):
        if "[relay]" not in extra:  # no GPIO hardware here: the simulated board (a real gpiozero backend is refused)
            extra = '[relay]\nbackend = "mock"\n' + extra
        return write_config(tmp_path / "gate.toml", kw.get("bundle", bundle), kw.get("gallery", gallery),
                            orl_dir / "s1", yunet_path, extra)
    config.bundle = bundle
    return config


def _validate(path, capsys):
    rc = main(["validate-config", str(path)])
    return rc, capsys.readouterr()


def test_validate_config_runs_the_gate_preflight(setup, tmp_path, capsys):
    rc, cap = _validate(setup('[relay]\nbackend = "mock"\npin = 17\n'), capsys)
    assert rc == 0 and "door 0.4200 (calibrated at FAR" in cap.out and "1 enrolled" in cap.out
    for extra, kw, msg in [('[relay]\npin = "seventeen"\n', {}, "not a GPIO pin"),
                           ('[relay]\npin = "BOARD1"\n', {}, "not a GPIO pin"),
                           ('[relay]\nbackend = "jetson"\npin = 3\n', {}, "Jetson 40-pin header"),
                           ("", {"bundle": tmp_path / "absent"}, "bundle not found"),
                           ("", {"gallery": tmp_path / "absent.efg"}, "no gallery file"),
                           ("[policy]\nthreshold = -1.0\n", {}, "below the bundle's calibrated threshold"),
                           ("[policy]\nthreshold = nan\n", {}, "finite number"),
                           ("[policy]\nthreshold = 5\n", {}, "less than or equal to 1")]:
        rc, cap = _validate(setup(extra, **kw), capsys)
        assert rc == 78 and msg in cap.err, (extra, kw, cap.err)
        assert "Traceback" not in cap.err


def test_validate_config_names_the_relay_line_once(setup, capsys):
    """gpiozero names the line itself ("GPIO17"): the summary says "mock GPIO17", and the pin as written when
    it was written otherwise."""
    rc, cap = _validate(setup('[relay]\nbackend = "mock"\npin = 17\n'), capsys)
    assert rc == 0 and "relay mock GPIO17, model" in cap.out and "GPIOGPIO" not in cap.out
    rc, cap = _validate(setup('[relay]\nbackend = "mock"\npin = "BOARD11"\n'), capsys)
    assert rc == 0 and "relay mock GPIO17 (pin 'BOARD11'), model" in cap.out


def test_a_lower_threshold_needs_acknowledgement_and_is_warned(setup, capsys):
    rc, cap = _validate(setup("[policy]\nthreshold = 0.33\n"), capsys)
    assert rc == 78 and "below the bundle's calibrated threshold 0.4200" in cap.err
    assert "it corresponds to FAR about" in cap.err and "accept_lower_threshold" in cap.err
    rc, cap = _validate(setup("[policy]\nthreshold = 0.33\naccept_lower_threshold = true\n"), capsys)
    assert rc == 0 and "LOWER THRESHOLD THAN CALIBRATED" in cap.err
    rc, cap = _validate(setup("[policy]\nthreshold = 0.5\n"), capsys)  # stricter is always fine
    assert rc == 0


def test_gate_start_problems_exit_78(setup, tmp_path, capsys):
    assert main(["gate", "--config", str(setup('[relay]\npin = "seventeen"\n'))]) == 78
    assert main(["gate", "--config", str(setup('[relay]\nbackend = "mock"\n', gallery=tmp_path / "none.efg"))]) == 78
    assert "no gallery file" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-5", "5", "nan", "inf"])
def test_simulate_refuses_a_meaningless_threshold(setup, orl_dir, value, capsys):
    rc = main(["gate", "--simulate", str(orl_dir / "s1"), "--config", str(setup('[relay]\nbackend = "mock"\n')),
               "--threshold", value])
    assert rc == 78 and "cosine similarity" in capsys.readouterr().err


def _tamper(value):
    """A different value of the same JSON kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return -1.0 if value != -1.0 else 0.5
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value[:-1] if value else [0]
    if isinstance(value, dict):
        return {**value, "tampered": 1} if not value else {k: _tamper(v) for k, v in value.items()}
    return "x"


def _leaves(raw, path=()):
    if isinstance(raw, dict) and raw:
        for k, v in raw.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(raw, list) and raw:
        for i, v in enumerate(raw):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def test_every_edgeface_json_field_tampered_in_turn_is_refused(setup, capsys):
    meta = setup.bundle / "edgeface.json"
    pristine = meta.read_text()
    raw = json.loads(pristine)
    assert Bundle.load(setup.bundle).threshold("onnx_fp32").value == 0.42
    paths = [p for p in _leaves(raw) if p[0] != "integrity"] + [(k,) for k in raw] + [("integrity",)]
    refused = 0
    for path in paths:
        edited = json.loads(pristine)
        node = edited
        for k in path[:-1]:
            node = node[k]
        if path == ("integrity",) or len(path) == 1 and path[0] in raw and not isinstance(raw[path[0]], (str, int, float)):
            del node[path[-1]]  # a whole field removed
        else:
            node[path[-1]] = _tamper(node[path[-1]])
        meta.write_text(json.dumps(edited, indent=2))
        try:
            Bundle.load(setup.bundle)
        except ChecksumError as exc:
            assert "integrity sha256" in str(exc)
            refused += 1
    meta.write_text(pristine)
    with capsys.disabled():
        print(f"\nedgeface.json tampering: {refused} of {len(paths)} edits refused")
    assert refused == len(paths) and len(paths) > 20
    # the threshold edit from the issue, through the gate's pre-flight: 78, never a gate on threshold -1
    edited = json.loads(pristine)
    edited["thresholds"]["onnx_fp32"]["value"] = -1.0
    meta.write_text(json.dumps(edited))
    rc, cap = _validate(setup('[relay]\nbackend = "mock"\n'), capsys)
    assert rc == 78 and "edited or damaged" in cap.err


def test_seal_bundle_accepts_a_checked_edit(setup, capsys):
    meta = setup.bundle / "edgeface.json"
    raw = json.loads(meta.read_text())
    raw["name"] = "front door"
    meta.write_text(json.dumps(raw))
    with pytest.raises(ChecksumError):
        Bundle.load(setup.bundle)
    assert main(["seal-bundle", str(setup.bundle)]) == 0
    assert Bundle.load(setup.bundle).meta.name == "front door"
    raw = json.loads(meta.read_text())
    raw["thresholds"]["onnx_fp32"]["value"] = math.inf
    meta.write_text(json.dumps(raw))
    assert main(["seal-bundle", str(setup.bundle)]) == 1  # sealing never accepts a meaningless threshold
    assert "thresholds.onnx_fp32.value" in capsys.readouterr().err


def test_a_degraded_model_needs_acknowledgement(setup, capsys):
    b = Bundle.load(setup.bundle)
    b.meta.notes["parity"] = {"degraded": ["onnx_fp32: mean cosine to the reference 0.9000 < 0.98"]}
    b.save()
    rc, cap = _validate(setup('[relay]\nbackend = "mock"\n'), capsys)
    assert rc == 78 and "DEGRADED" in cap.err and "accept_degraded" in cap.err
    path = setup('[relay]\nbackend = "mock"\n')
    path.write_text(path.read_text().replace("threads = 1", "threads = 1\naccept_degraded = true"))
    rc, cap = _validate(path, capsys)
    assert rc == 0 and "DEGRADED" in cap.err
    assert main(["info", str(setup.bundle)]) == 0
    out = capsys.readouterr().out
    assert "default model: onnx_fp32" in out and "DEGRADED" in out and "threshold[onnx_fp32] = 0.4200" in out


@pytest.mark.slow
def test_calibrate_stores_far_points_that_tell_the_far_of_a_lower_threshold(tmp_path, reference_onnx, orl_dir,
                                                                          yunet_path, capsys):
    from edgeface.thresholds import far_at

    bundle = make_bundle(tmp_path / "b", reference_onnx, None)
    assert main(["calibrate", "--bundle", str(bundle), "--data", str(orl_dir), "--far", "1e-3",
                 "--max-identities", "16", "--per-identity", "5", "--detector-model", str(yunet_path)]) == 0
    cap = capsys.readouterr()
    assert "WARNING: expected TAR" not in cap.err  # the reference model on ORL is far from useless
    cal = Bundle.load(bundle).threshold("onnx_fp32")
    fars = [f for _, f in cal.points]
    assert len(cal.points) >= 4 and fars == sorted(fars, reverse=True)
    assert far_at(cal, cal.value) == "FAR at most 0.001"
    lower = far_at(cal, cal.points[0][0])  # the loosest stored point: FAR about 0.1
    assert lower.startswith("FAR about") or lower.startswith("FAR between"), lower

