"""One model object with the default model (dlib's ResNet, int8, calibrated): the same photo enrolled by the CLI,
by the admin page and installed through the fleet's hand-off gives the same embedding and the same door scores;
and in a real browser, a person enrolled on the page is let in by the door."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from adminkit import PASSWORD, csrf_of, logged_in, make_door, photo
from browserkit import needs_browser, start_browser, wait_url
from gatekit import Appearance, compose_video

from edgeface.cli import main
from edgeface.gallery import Gallery

pytestmark = pytest.mark.slow

KEY = "onnx_int8"


@pytest.fixture(scope="module")
def dlib_door(tmp_path_factory, dlib_bundle, orl_dir, detector):
    root = tmp_path_factory.mktemp("dlib_admin_door")
    return make_door(root, None, detector, orl_dir, people=("s2",), bundle=dlib_bundle, key=KEY)


def _embedding(gallery_path: Path, name: str) -> np.ndarray:
    person = Gallery.load(gallery_path).find(name)
    assert person is not None, f"{name} is not in {gallery_path}"
    return person.embeddings[0]


def test_cli_page_and_fleet_handoff_give_the_same_embedding_and_door_scores(dlib_door, orl_dir, yunet_path,
                                                                             tmp_path):
    from edgeface.config import load_config
    from edgeface.device.daemon import build_gate

    source = photo(orl_dir, "s3", 0)
    # 1. edgeface enroll
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(source, folder / "Ada.png")
    cli_gallery = tmp_path / "cli.gallery"
    assert main(["enroll", "--bundle", str(dlib_door["bundle"]), "--model", KEY, "--photos", str(folder),
                 "--gallery", str(cli_gallery), "--detector-model", str(yunet_path)]) == 0
    # 2. the admin page: upload, check, save
    c = logged_in(dlib_door["cfg"])
    token = csrf_of(c.get("/people/add").text)
    r = c.post("/people/add", data={"csrf": token, "name": "Ada"},
               files={"photo": ("ada.png", source.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    token = r.text.split('name="token" value="')[1].split('"')[0]
    save = c.post("/people/save", data={"csrf": csrf_of(r.text), "token": token})
    assert save.status_code == 303, save.text
    cli_emb, page_emb = _embedding(cli_gallery, "Ada"), _embedding(dlib_door["gallery"], "Ada")
    np.testing.assert_array_equal(cli_emb, page_emb)  # bit for bit: the same reader, detector, chip, model, mirror

    # 3. the fleet's hand-off: the CLI's gallery handed to a running door (Gate.offer_gallery, what the fleet
    #    subscriber calls once a signed gallery is verified and installed) scores a probe exactly as the door
    #    that loaded the page's gallery from its file
    cfg = load_config(dlib_door["config"])
    page_gate = build_gate(cfg, simulated=True, json_out=None, log_out=None)
    fleet_gate = build_gate(cfg, simulated=True, json_out=None, log_out=None)
    try:
        fleet_gate.offer_gallery(Gallery.load(cli_gallery), "version 1 (test hand-off)")
        fleet_gate._take_mail()
        assert fleet_gate.events[-1].kind == "gallery_installed"
        rec = page_gate.runtime.recognizer
        probe = rec.observe(rec.read_photo(photo(orl_dir, "s3", 4)))
        assert probe.usable
        a = page_gate.runtime.matcher.match(probe.embedding)
        b = fleet_gate.runtime.matcher.match(probe.embedding)
        # the same embeddings, bit for bit (above); the scores to float32 rounding: a gallery of 2 people and one of 1
        # are multiplied by different BLAS kernels (in a clone under /tmp they differed by 6e-8)
        assert a.name == b.name == "Ada" and a.score == pytest.approx(b.score, abs=1e-6)
        assert a.score >= page_gate.runtime.thresholds.door.value  # and the door would let her in
        assert fleet_gate.runtime.access is not page_gate.runtime.access  # its own rules, built with the gallery
    finally:
        page_gate.relay.close()
        fleet_gate.relay.close()


@needs_browser
def test_a_person_enrolled_on_the_page_in_a_real_browser_is_let_in_by_the_door(dlib_door, orl_dir, tmp_path,
                                                                                tmp_path_factory):
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    pytest.importorskip("uvicorn", reason="the admin extra is not installed")
    from adminkit import served
    from selenium.webdriver.common.by import By

    from edgeface.device.admin.app import create_app

    with served(create_app(dlib_door["cfg"])) as url:
        d = start_browser(tmp_path_factory.mktemp("chromium-dlib"))
        try:
            d.get(url + "/login")
            d.find_element(By.ID, "username").send_keys("alice")
            d.find_element(By.ID, "password").send_keys(PASSWORD)
            d.find_element(By.ID, "login").click()
            assert wait_url(d, "/people").endswith("/people")
            d.get(url + "/people/add")
            d.find_element(By.ID, "name").send_keys("Grace Hopper")
            d.find_element(By.ID, "photo").send_keys(str(photo(orl_dir, "s7", 0)))
            d.find_element(By.ID, "check").click()
            d.find_element(By.ID, "save").click()
            assert "Grace Hopper" in d.find_element(By.ID, "people").text
        finally:
            d.quit()
    # the door: a clip of another photo of her and of a stranger, through the real CLI
    clip = tmp_path / "door.avi"
    compose_video(clip, [Appearance("Grace Hopper", photo(orl_dir, "s7", 3), 2.0, 260, (0.2, 0.3), (0.5, 0.4)),
                         Appearance("stranger:s9", photo(orl_dir, "s9", 3), 2.0, 260, (0.6, 0.3), (0.4, 0.4))],
                  fps=10.0, gap_s=1.5)
    proc = subprocess.run([sys.executable, "-m", "edgeface.cli", "gate", "--simulate", str(clip), "--config",
                           str(dlib_door["config"])], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [e["person"] for e in events if e["event"] == "granted"] == ["Grace Hopper"]
    assert [e["event"] for e in events].count("unlock") == 1
