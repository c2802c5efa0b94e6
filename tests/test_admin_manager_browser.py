"""A facility manager's morning on the admin page, in a real browser (headless Chromium from the OS package, driven
by Selenium, against uvicorn): the door (``gate --simulate`` with the audit database) lets in an employee and sees
a visitor step in and out three times; "Today" lists who came in, in the door's time zone; the events page shows
the visitor once, with who came closest and how often they came back; the employee gets a badge, a PIN and a
schedule on the page; a new photo's verdict shows the face the door found; a photo of someone enrolled, under
another name, is headed "refused"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from adminkit import PASSWORD, make_door, photo, served
from gatekit import Appearance, compose_video
from browserkit import needs_browser, wait_url
from test_admin_browser import browser, shot  # noqa: F401 (fixture)

from edgeface.access.credentials import AccessRecord, check_pin
from edgeface.gallery import Gallery

ZONE = "America/New_York"

pytestmark = [pytest.mark.slow, needs_browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory, reference_onnx, detector, orl_dir):
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    pytest.importorskip("uvicorn", reason="the admin extra is not installed")
    from edgeface.device.admin.app import create_app

    tmp = tmp_path_factory.mktemp("admin_manager_browser")
    secret = tmp / "pin-secret"  # the site's PIN secret, as `edgeface keys pin-secret` writes it: the page keys PINs with it
    secret.write_text(os.urandom(32).hex() + "\n")
    secret.chmod(0o600)
    door = make_door(tmp, reference_onnx, detector, orl_dir,
                     admin=f'\n[access]\ntimezone = "{ZONE}"\npin_secret_file = "{secret}"', people=("s2",))
    with served(create_app(door["cfg"])) as url:
        yield dict(door, url=url, orl=orl_dir, pin_secret=secret)


def simulate(server, tmp_path) -> list[dict]:
    """s2 (enrolled) walks up once; s7 (a visitor) steps in and out of view three times."""
    orl = server["orl"]
    clip = tmp_path / "morning.avi"
    visitor = [Appearance("stranger:s7", photo(orl, "s7", i), 1.5, 260, (0.3, 0.3), (0.4, 0.35), gap_after=2.5)
               for i in (1, 2, 3)]
    compose_video(clip, [Appearance("s2", photo(orl, "s2", 3), 1.5, 260, (0.2, 0.3), (0.5, 0.4)), *visitor],
                  fps=10.0, gap_s=2.5)
    proc = subprocess.run([sys.executable, "-m", "edgeface.cli", "gate", "--simulate", str(clip), "--config",
                           str(server["config"]), "--audit-db", str(server["cfg"].audit.path)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_a_facility_managers_morning_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    events = simulate(server, tmp_path)
    unknown = [e for e in events if e["event"] == "unknown"]
    assert [e["person"] for e in events if e["event"] == "unlock"] == ["s2"]
    assert len(unknown) == 3 and sum("not counted again" in (e.get("detail") or "") for e in unknown) == 2, unknown

    d, url = browser, server["url"]
    find = d.find_element
    d.get(url + "/login")
    find(By.ID, "username").send_keys("alice")
    find(By.ID, "password").send_keys(PASSWORD)
    find(By.ID, "login").click()
    assert wait_url(d, "/people").endswith("/people")

    # who came in today, in the door's zone
    find(By.LINK_TEXT, "Today").click()
    assert wait_url(d, "/today").endswith("/today")
    assert ZONE in find(By.TAG_NAME, "h1").text
    came = find(By.ID, "came-in").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in came] == ["s2"]
    assert find(By.ID, "refused").text.startswith("Faces the door did not recognise: 1 (and 2 repeats of the same face)")
    shot(d, "m01-today")

    # the visitor is one row, with who came closest and how often they came back
    d.get(url + "/events")
    assert f"Time ({ZONE})" in find(By.ID, "events").find_element(By.TAG_NAME, "thead").text
    rows = [r for r in find(By.ID, "events").find_elements(By.CSS_SELECTOR, "tbody tr")
            if "kind-unknown" in r.get_attribute("class")]
    assert len(rows) == 1
    assert "nobody; closest s2 (" in rows[0].text
    assert "and 2 more times until" in rows[0].text and "not counted as a new attempt" in rows[0].text
    shot(d, "m02-events")

    # a badge, a PIN and a schedule for s2, on the page
    d.get(url + "/people")
    find(By.CSS_SELECTOR, "#person-s2 a[href='/people/s2/access']").click()
    assert wait_url(d, "/people/s2/access").endswith("/access")
    find(By.ID, "badges").send_keys("0012345")
    find(By.ID, "new-pin").send_keys("4711")
    find(By.ID, "new-pin-again").send_keys("4711")
    find(By.ID, "schedule").send_keys("Mon-Fri 07:00-19:00")
    shot(d, "m03-access")
    find(By.ID, "save-access").click()
    assert "s2: badges 12345; PIN set; schedule Mon-Fri 07:00-19:00; PIN changed" in find(By.ID, "flash").text
    row = find(By.ID, "person-s2").text
    assert "badge 12345" in row and "PIN set" in row and "Mon-Fri 07:00-19:00" in row
    person = Gallery.load(server["gallery"]).find("s2")
    rec = AccessRecord.from_attributes(person.attributes, person.name)
    secret = bytes.fromhex(server["pin_secret"].read_text().strip())
    assert rec.badges == ("12345",) and rec.pin.get("key_id") and check_pin("4711", rec.pin, secret)
    assert not check_pin("4711", rec.pin)  # keyed with the site's secret: the gallery alone does not check it
    shot(d, "m04-people")

    # a new person's photo: the verdict shows the face the door found (inline, decoded by the browser)
    d.get(url + "/people/add")
    find(By.ID, "name").send_keys("Grace Hopper")
    find(By.ID, "photo").send_keys(str(photo(server["orl"], "s4", 0)))
    find(By.ID, "check").click()
    assert find(By.ID, "heading").text == "Grace Hopper: the photo can be used"
    face = find(By.ID, "face")
    assert face.get_attribute("src").startswith("data:image/png;base64,")
    assert d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", face) >= 112
    shot(d, "m05-verdict-face")

    # s2's own photo under another name: refused, and the heading says so
    d.get(url + "/people/add")
    find(By.ID, "name").send_keys("Not s2")
    find(By.ID, "photo").send_keys(str(photo(server["orl"], "s2", 0)))
    find(By.ID, "check").click()
    assert find(By.ID, "heading").text == "Not s2: refused by the identity checks"
    assert "Refused by the identity checks" in find(By.ID, "identity").text
    shot(d, "m06-verdict-refused")
