"""The admin page in a real browser: headless Chromium (the OS package) driven by Selenium against uvicorn on
127.0.0.1 and a random port. Log in, enroll a real face, see it in the list, run ``edgeface gate --simulate`` on
a clip of that person, see the grant on the events page, remove the person, log out. A screenshot of every page
goes to ``screenshots/admin/`` (ignored by git) to be looked at."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from adminkit import PASSWORD, make_door, photo, served
from browserkit import needs_browser, start_browser, wait_url
from gatekit import Appearance, compose_video

from edgeface.gallery import Gallery

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("EDGEFACE_SCREENSHOTS", ROOT / "screenshots" / "admin"))

pytestmark = [pytest.mark.slow, needs_browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory, reference_onnx, detector, orl_dir):
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    pytest.importorskip("uvicorn", reason="the admin extra is not installed")
    from edgeface.device.admin.app import create_app

    door = make_door(tmp_path_factory.mktemp("admin_browser"), reference_onnx, detector, orl_dir, people=("s2",))
    with served(create_app(door["cfg"])) as url:
        yield dict(door, url=url, orl=orl_dir)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def test_enroll_grant_remove_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    d, url = browser, server["url"]
    find = d.find_element
    d.get(url + "/people")
    assert d.current_url.endswith("/login")
    shot(d, "01-login")
    find(By.ID, "username").send_keys("alice")
    find(By.ID, "password").send_keys("not the password")
    find(By.ID, "login").click()
    assert "Wrong name or password" in find(By.ID, "message").text
    find(By.ID, "password").send_keys(PASSWORD)
    find(By.ID, "login").click()
    assert wait_url(d, "/people").endswith("/people"), d.page_source[:2000]
    cookie = d.get_cookie("edgeface_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    shot(d, "02-people")

    # enroll a real face (ORL s1) from a photo: checked first, then saved
    d.get(url + "/people/add")
    shot(d, "03-add")
    find(By.ID, "name").send_keys("Ada Lovelace")
    find(By.ID, "photo").send_keys(str(photo(server["orl"], "s1", 0)))
    find(By.ID, "check").click()
    assert "passed every quality check" in find(By.ID, "verdict").text
    assert "Identity checks passed" in find(By.ID, "identity").text
    shot(d, "04-verdict")
    find(By.ID, "save").click()
    assert "Ada Lovelace is enrolled" in find(By.ID, "flash").text
    assert "Ada Lovelace" in find(By.ID, "people").text
    shot(d, "05-people-enrolled")
    person = Gallery.load(server["gallery"]).find("Ada Lovelace")
    assert person is not None

    # a photo that fails the quality gate is explained in words
    blank = tmp_path / "wall.png"
    import cv2

    from edgeface.device.scene import background

    cv2.imwrite(str(blank), background(4))
    d.get(url + "/people/add")
    find(By.ID, "name").send_keys("Nobody")
    find(By.ID, "photo").send_keys(str(blank))
    find(By.ID, "check").click()
    assert "no face found" in find(By.ID, "verdict").text
    shot(d, "06-verdict-refused")

    # the door sees Ada: gate --simulate on a clip of another photo of her, events into the audit database
    clip = tmp_path / "ada.avi"
    compose_video(clip, [Appearance("Ada Lovelace", photo(server["orl"], "s1", 2), 1.5, 260, (0.2, 0.3), (0.5, 0.4))],
                  fps=10.0, gap_s=1.0)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "edgeface.cli", "gate", "--simulate", str(clip), "--config",
                           str(server["config"]), "--audit-db", str(server["cfg"].audit.path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    grants = [e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "granted"]
    assert [g["person"] for g in grants] == ["Ada Lovelace"]

    d.get(url + "/events?kind=granted")
    table = find(By.ID, "events").text
    assert "granted" in table and "Ada Lovelace" in table
    d.get(url + "/events")
    assert find(By.ID, "chart").find_elements(By.CSS_SELECTOR, "rect.granted")
    assert "person_added" in find(By.ID, "admin-events").text
    shot(d, "07-events")
    d.get(url + "/status")
    status = find(By.ID, "status").text
    assert "unlock" in status or "granted" in status
    assert "2 people" in status
    shot(d, "08-status")

    # remove her, with a confirmation; every embedding leaves the file
    d.get(url + f"/people/{person.id}/remove")
    shot(d, "09-remove-confirm")
    find(By.ID, "confirm-remove").click()
    assert "Ada Lovelace is removed" in find(By.ID, "flash").text
    assert Gallery.load(server["gallery"]).find(person.id) is None
    assert "Ada Lovelace" not in find(By.ID, "people").text
    shot(d, "10-people-removed")

    find(By.ID, "logout").click()
    assert "You are logged out" in find(By.ID, "message").text
    shot(d, "11-logged-out")
    d.get(url + "/people")
    assert d.current_url.endswith("/login")
