"""Expected errors are one line, never a traceback (issue 23): ``gate --simulate`` on a garbage, empty or
header-only video or an empty folder, and ``fleet publish`` when the broker goes away mid-publish (a real
Mosquitto, killed). Each runs as its own process, as a person would run it, and its stderr is read whole."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from edgeface.gallery import Gallery


def cli(*args, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeface.cli", *map(str, args)], capture_output=True, text=True,
                          errors="replace", timeout=timeout, env=env or {**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def door(tmp_path_factory, reference_onnx):
    from gatekit import make_bundle

    from edgeface.bundle import Bundle

    tmp = tmp_path_factory.mktemp("expected_errors")
    bundle = make_bundle(tmp / "bundle", reference_onnx, 0.40)
    gallery = tmp / "people.gallery"
    Gallery.new(Bundle.load(bundle).fingerprint("onnx_fp32"), 128).save(gallery)
    return tmp, bundle, gallery


def _video(path):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for i in range(20):
        writer.write(np.full((240, 320, 3), 10 * i, np.uint8))
    writer.release()
    return path.read_bytes()


def test_gate_simulate_on_an_unreadable_input_is_one_line(door, yunet_path):
    tmp, bundle, gallery = door
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGEFACE_YUNET": str(yunet_path)}
    video = _video(tmp / "ok.avi")
    inputs = {"garbage.avi": np.random.default_rng(0).bytes(100_000), "empty.avi": b"", "header.avi": video[:4096]}
    for name, data in inputs.items():
        (tmp / name).write_bytes(data)
    (tmp / "empty_folder").mkdir()
    for name, why in (("garbage.avi", "cannot decode this video"), ("empty.avi", "cannot decode this video"),
                      ("header.avi", "cannot decode this video"), ("empty_folder", "no images")):
        r = cli("gate", "--simulate", tmp / name, "--bundle", bundle, "--gallery", gallery, env=env)
        assert r.returncode == 1 and "Traceback" not in r.stderr, (name, r.stderr)
        assert f"gate failed: {tmp / name}: " in r.stderr and why in r.stderr, (name, r.stderr)
        # nothing else on stderr: OpenCV's own AVI reader printed raw container bytes for a cut-off file
        stray = [line for line in r.stderr.splitlines() if not line.startswith(("WARNING ", "ERROR ", "summary: "))]
        assert stray == [], (name, stray)
    r = cli("gate", "--simulate", tmp / "ok.avi", "--bundle", bundle, "--gallery", gallery, env=env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr  # the positive control: a real clip


@pytest.mark.slow
def test_fleet_publish_when_the_broker_goes_away_mid_publish_is_one_line(tmp_path):
    pytest.importorskip("paho.mqtt")
    from fleetkit import Mosquitto

    g = Gallery.new("f" * 64, 512)
    rng = np.random.default_rng(0)
    for i in range(100):
        g.add(f"P{i}", rng.standard_normal((100, 512)))
    g.save(tmp_path / "big.gallery")  # 20 MB: long enough to be cut off
    assert cli("keys", "generate", "--out", tmp_path / "keys").returncode == 0
    broker = Mosquitto(tmp_path / "mqtt").start()
    log = tmp_path / "mqtt" / "mosquitto.log"
    try:
        p = subprocess.Popen([sys.executable, "-m", "edgeface.cli", "fleet", "publish", "--gallery",
                              str(tmp_path / "big.gallery"), "--key", str(tmp_path / "keys" / "gallery_signing.key"),
                              "--broker", broker.url, "--site", "hq", "--timeout", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while "New client connected" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and p.poll() is None, "the publisher never connected"
            time.sleep(0.01)
        broker.kill()  # kill -9 as soon as the publisher is in
        out, err = p.communicate(timeout=60)
    finally:
        broker.stop()
    assert p.returncode == 1 and "Traceback" not in err, err
    assert "edgeface: error: publishing to" in err and len(err.strip().splitlines()) <= 3, err
