"""Hostile configs: every GPIO line exists and is used once, a GPIO library must load for real GPIO lines, every
number is finite and bounded; validate-config and the gate agree (exit 78, one line, no traceback)."""

from __future__ import annotations

import pytest

from edgeface.bundle import Bundle, Threshold
from edgeface.cli import main

from gatekit import enroll, make_bundle, write_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory, reference_onnx, orl_dir, detector, yunet_path):
    tmp = tmp_path_factory.mktemp("config_limits")
    bundle = make_bundle(tmp / "bundle", reference_onnx, 0.42)
    b = Bundle.load(bundle)
    b.meta.thresholds["onnx_fp32"] = Threshold(value=0.42, far=1e-3, data="test",
                                               points=[(0.30, 1e-2), (0.36, 3e-3), (0.42, 1e-3), (0.47, 1e-4)])
    b.save()
    gallery = tmp / "people.efg"
    enroll(gallery, bundle, detector, {"s1": orl_dir / "s1" / "1.png"})
    n = [0]

    def config(extra=""):
        if "[relay]" not in extra:
            extra = '[relay]\nbackend = "mock"\n' + extra
        n[0] += 1
        return write_config(tmp / f"gate{n[0]}.toml", bundle, gallery, orl_dir / "s1", yunet_path, extra)
    config.bundle = bundle
    return config


@pytest.mark.parametrize("extra, msg", [
    ('[access.feedback]\ndenied_pin = 17\n', "access.feedback.denied_pin = 17 is GPIO17, which relay.pin already uses"),
    ('[access.door]\nexit_pin = "BOARD11"\n', "access.door.exit_pin = 'BOARD11' is GPIO17, which relay.pin already"),
    ('[access]\nmode = "face_or_badge"\n[access.wiegand]\nd0_pin = 5\nd1_pin = 5\n',
     "access.wiegand.d1_pin = 5 is GPIO5, which access.wiegand.d0_pin already uses"),
    ('[access]\nmode = "face_or_badge"\n[access.wiegand]\nd0_pin = 999\nd1_pin = 6\n',
     "access.wiegand.d0_pin = 999 is not a GPIO pin"),
    ('[access.feedback]\ngranted_pin = -3\n', "access.feedback.granted_pin = -3 is not a GPIO pin"),
    ('[access.door]\ncontact_pin = 22\ntamper_pin = "GPIO22"\n', "tamper_pin = 'GPIO22' is GPIO22, which access.door.contact_pin"),
])
def test_validate_config_and_the_gate_agree_on_gpio_lines(setup, capsys, extra, msg):
    """Every GPIO line exists and is used once: validate-config and the gate both exit 78 with one line (the gate
    used to crash with a traceback and exit 1, so systemd restarted it in a loop)."""
    path = setup('[relay]\nbackend = "mock"\npin = 17\n' + extra)
    for argv in (["validate-config", str(path)], ["gate", "--config", str(path)]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 78 and msg in err and "Traceback" not in err, (argv, err)


def test_a_wiegand_reader_on_the_simulated_board_runs(setup, capsys):
    path = setup('[relay]\nbackend = "mock"\n[access]\nmode = "face_or_badge"\n[access.wiegand]\nd0_pin = 5\nd1_pin = 6\n'
                 '[access.feedback]\ngranted_pin = "BOARD13"\n')
    assert main(["validate-config", str(path)]) == 0
    assert main(["gate", "--config", str(path)]) == 0  # the clip is replayed to its end
    assert "Traceback" not in capsys.readouterr().err


def test_gpio_lines_without_a_gpio_library_are_refused_at_validate_time(setup, capsys):
    import warnings

    from gpiozero import Device

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            Device.ensure_pin_factory()
            pytest.skip("a GPIO library works on this machine")
        except Exception:
            pass
    for extra in ('[relay]\nbackend = "gpiozero"\n',
                  '[relay]\nbackend = "gpiozero"\n[access]\nmode = "face_or_badge"\n[access.wiegand]\nd0_pin = 5\nd1_pin = 6\n'):
        for argv in (["validate-config", str(setup(extra))], ["gate", "--config", str(setup(extra))]):
            rc = main(argv)
            err = capsys.readouterr().err
            assert rc == 78 and "no GPIO library works on this machine" in err and "Traceback" not in err, err


@pytest.mark.parametrize("extra, msg", [
    ("[admin]\nlogin_window_s = inf\n", "admin.login_window_s: Input should be a finite number"),
    ("[admin]\nmax_failed_logins = 1000000\n", "admin.max_failed_logins: Input should be less than or equal to"),
    ("[audit]\nretention_days = nan\n", "audit.retention_days: Input should be a finite number"),
    ("[camera]\nfps = inf\n", "camera.fps: Input should be a finite number"),
    ("[access]\npin_window_s = inf\n", "access.pin_window_s: Input should be a finite number"),
    ('[fleet]\nbroker = "mqtt://127.0.0.1:1"\nsite = "hq"\ndoor = "d1"\nmax_gallery_mb = inf\n',
     "fleet.max_gallery_mb: Input should be a finite number"),
    ('[fleet]\nbroker = "mqtt://127.0.0.1:1"\nsite = "hq"\ndoor = "d1"\nmax_gallery_mb = 1e9\n',
     "fleet.max_gallery_mb: Input should be less than or equal to 1024"),
])
def test_every_number_is_finite_and_bounded(setup, capsys, extra, msg):
    path = setup(extra)
    if "[camera]" in extra:  # the config already has a [camera] table: put the key into it
        path.write_text(path.read_text().replace(extra, "").replace("[camera]\n", extra, 1))
    for argv in (["validate-config", str(path)], ["gate", "--config", str(path)]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 78 and msg in err and "Traceback" not in err, (argv, err)


def test_seal_bundle_refuses_a_threshold_outside_a_sane_range_for_its_scorer(setup, tmp_path, capsys):
    """Issue 23: seal-bundle re-sealed a threshold of -0.5 silently. A sealed threshold must be above the scorer's
    chance level, agree with its own calibration points, and state a FAR in (0, 1)."""
    import json
    import math
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(setup.bundle, bundle)
    meta = bundle / "edgeface.json"
    good = json.loads(meta.read_text())

    def seal(value=None, far=None):
        raw = json.loads(json.dumps(good))
        t = raw["thresholds"]["onnx_fp32"]
        t["value"] = t["value"] if value is None else value
        t["far"] = t["far"] if far is None else far
        meta.write_text(json.dumps(raw))
        rc = main(["seal-bundle", str(bundle)])
        return rc, capsys.readouterr()

    before = meta.read_bytes()
    for value, far, msg in ((-0.5, None, "at or below 0"), (0.0, None, "at or below 0"),
                            (0.30, None, "accepts a FAR of about 0.01"), (None, 0.0, "greater than 0"),
                            (None, 1.5, "less than 1"), (None, math.nan, "finite number")):
        rc, cap = seal(value, far)
        assert rc == 1 and msg in cap.err and "Traceback" not in cap.err, (value, far, cap.err)
        with pytest.raises(Exception):
            Bundle.load(bundle)  # nothing was sealed: the edited file still fails its integrity check
    rc, cap = seal(0.47)  # stricter than calibrated: FAR 1e-4 by its points, fine
    assert rc == 0 and "threshold[onnx_fp32] = 0.4700" in cap.out
    assert Bundle.load(bundle).meta.thresholds["onnx_fp32"].value == 0.47
    assert before != meta.read_bytes()
