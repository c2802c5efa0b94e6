"""The admin page as a facility manager uses it (Starlette TestClient over the real app, real faces, the real audit
writer): who came in on a day, local times of the door's zone, the closest person on a refused face, repeated
attempts of one face folded into one row, the detected face on the verdict page, the verdict's heading, and
badges, PIN and schedule edited on the page (the same code as ``edgeface people set``)."""

from __future__ import annotations

import base64
import html
import re

import cv2
import numpy as np
import pytest
from adminkit import csrf_of, logged_in, make_door, photo

from edgeface.access.credentials import AccessRecord, check_pin
from edgeface.gallery import Gallery

pytest.importorskip("starlette", reason="the admin extra (starlette, uvicorn, jinja2, argon2-cffi) is not installed")

ZONE = "Asia/Kolkata"  # UTC+05:30 all year: local days and UTC days differ by a known amount
REPEAT = "same face as an earlier attempt (not counted again)"


@pytest.fixture(scope="module")
def door(tmp_path_factory, reference_onnx, detector, orl_dir):
    d = make_door(tmp_path_factory.mktemp("admin_manager"), reference_onnx, detector, orl_dir,
                  admin=f'\n[access]\ntimezone = "{ZONE}"\n[access.schedules]\nstaff = "Mon-Fri 07:00-19:00"',
                  people=("s1", "s2"))
    d["orl"] = orl_dir
    from edgeface.device.audit import AuditLog
    from edgeface.device.events import Event

    with AuditLog(d["cfg"].audit.path) as log:
        # 1 March 2026, UTC; in Kolkata s2's visit is late on the 1st, s1's two are on the 2nd
        log.record(Event("unlock", 1.0, wall="2026-03-01T18:00:00.000+00:00", person_id="s2", person="s2",
                         score=0.71, duration_s=1.0))
        log.record(Event("unlock", 2.0, wall="2026-03-01T20:00:00.000+00:00", person_id="s1", person="s1",
                         score=0.70, duration_s=1.0))
        log.record(Event("unknown", 3.0, wall="2026-03-02T09:00:00.000+00:00", score=0.31, rule="threshold",
                         candidates=[{"person_id": "s1", "person": "s1", "score": 0.31},
                                     {"person_id": "s2", "person": "s2", "score": 0.2}]))
        for i in range(3):  # the same visitor stepping in and out: the policy reports, but does not count, these
            log.record(Event("unknown", 4.0 + i, wall=f"2026-03-02T09:0{i + 1}:00.000+00:00", score=0.30,
                             rule="threshold", detail=REPEAT,
                             candidates=[{"person_id": "s1", "person": "s1", "score": 0.30}]))
        log.record(Event("unlock", 8.0, wall="2026-03-02T10:00:00.000+00:00", person_id="s1", person="s1",
                         score=0.72, duration_s=1.0))
    return d


@pytest.fixture
def c(door, detector):
    return logged_in(door["cfg"], detector)


def table(html: str, table_id: str) -> str:
    return html.split(f'id="{table_id}"')[1].split("</table>")[0]


def rows(html: str, table_id: str) -> list[str]:
    return re.findall(r"<tr[ >].*?</tr>", table(html, table_id), re.S)[1:]  # without the header


def test_who_came_in_on_a_day_in_the_doors_time_zone(c):
    day2 = c.get("/today", params={"day": "2026-03-02"})
    assert day2.status_code == 200 and f"Monday 02 March 2026, {ZONE}" in day2.text
    came = rows(day2.text, "came-in")
    assert len(came) == 1  # s2 came in on the 1st, local time
    cells = re.findall(r"<td[^>]*>(.*?)</td>", came[0])
    assert cells == ["s1", "01:30", "15:30", "2"]  # 20:00 and 10:00 UTC
    assert "Faces the door did not recognise: 1 (and 3 repeats of the same face)" in day2.text
    day1 = c.get("/today", params={"day": "2026-03-01"}).text
    assert [re.findall(r"<td[^>]*>(.*?)</td>", r)[:2] for r in rows(day1, "came-in")] == [["s2", "23:30"]]
    assert "Nobody came in yet today" in c.get("/today").text
    assert c.get("/today", params={"day": "yesterday"}).status_code == 400
    for far in ("0001-01-01", "9999-12-31"):  # days that cannot be turned into UTC here: refused, never a 500
        assert c.get("/today", params={"day": far}).status_code == 400
        assert c.get("/events", params={"since": far, "until": far}).status_code == 400


def test_events_show_local_times_and_filter_by_local_days(c):
    page = c.get("/events").text
    assert f"<th>Time ({ZONE})</th>" in page
    assert ">2026-03-02 01:30:00</td>" in page and ">2026-03-01 20:00:00<" not in page  # shown local, not UTC
    assert 'title="2026-03-01 20:00:00 UTC"' in page
    # the 1st in Kolkata holds s2's visit only (20:00 UTC is already the 2nd there)
    first = table(c.get("/events", params={"since": "2026-03-01", "until": "2026-03-01"}).text, "events")
    assert "s2" in first and "s1" not in first
    second = table(c.get("/events", params={"since": "2026-03-02", "until": "2026-03-02"}).text, "events")
    assert second.count("kind-unlock") == 2


def test_a_refused_face_names_who_came_closest_and_repeats_are_one_row(c):
    page = c.get("/events").text
    unknown = [r for r in rows(page, "events") if "kind-unknown" in r]
    assert len(unknown) == 1, unknown  # four rows in the database: one attempt, three repeats of it
    assert "nobody; closest s1 (0.310), then s2 (0.200)" in unknown[0]
    assert "and 3 more times until 14:33:00: the same face again, not counted as a new attempt" in unknown[0]
    assert REPEAT not in unknown[0]


def _upload(c, name: str, data: bytes):
    page = c.get("/people/add")
    return c.post("/people/add", data={"csrf": csrf_of(page.text), "name": name},
                  files={"photo": ("face.png", data, "image/png")})


def test_the_verdict_shows_the_aligned_face_inline_and_never_stores_it(c, door):
    r = _upload(c, "Newcomer", photo(door["orl"], "s3", 0).read_bytes())
    assert r.status_code == 200 and ">Newcomer: the photo can be used</h1>" in r.text
    url = re.search(r'<img src="(data:image/png;base64,[^"]+)"[^>]*id="face"', r.text)
    assert url, r.text
    face = cv2.imdecode(np.frombuffer(base64.b64decode(url.group(1).split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert face is not None and face.shape[0] == face.shape[1] >= 112 and face.std() > 10  # a face, not a blank
    assert not any(p.suffix in (".png", ".img") for p in door["tmp"].rglob("*") if p.is_file() and "faces" in str(p))


def test_the_heading_of_a_refused_photo_says_refused(c, door):
    r = _upload(c, "Someone Else", photo(door["orl"], "s1", 0).read_bytes())  # s1's own enrolled photo
    assert ">Someone Else: refused by the identity checks</h1>" in r.text
    assert "can be used" not in r.text.split("</h1>")[0]
    assert "Refused by the identity checks" in r.text


def _access_page(c, pid: str):
    r = c.get(f"/people/{pid}/access")
    assert r.status_code == 200, r.text
    return r


def _post_access(c, pid: str, **fields):
    page = _access_page(c, pid)
    data = {"csrf": csrf_of(page.text), "badges": "", "schedule": "", "groups": "", "valid_from": "",
            "valid_until": "", "new_pin": "", "new_pin_again": ""}
    data.update(fields)
    return c.post(f"/people/{pid}/access", data=data)


def _record(door, pid: str) -> AccessRecord:
    person = Gallery.load(door["gallery"]).find(pid)
    return AccessRecord.from_attributes(person.attributes, person.name)


def test_badges_pin_and_schedule_are_edited_on_the_page(c, door):
    r = _post_access(c, "s2", badges="0012345, 777", new_pin="4711", new_pin_again="4711",
                     schedule="Mon-Fri 07:00-19:00; Sat 09:00-13:00", groups="staff", valid_until="2026-12-31")
    assert r.status_code == 303, r.text
    rec = _record(door, "s2")
    assert rec.badges == ("777", "12345") and check_pin("4711", rec.pin) and not check_pin("4712", rec.pin)
    assert rec.schedule.text == "Mon-Fri 07:00-19:00; Sat 09:00-13:00" and rec.groups == ("staff",)
    assert rec.valid_until == "2026-12-31"
    people = c.get("/people").text
    row = re.search(r'<tr id="person-s2">.*?</tr>', people, re.S).group(0)
    assert "badges 777, 12345" in row and "PIN set" in row and "Sat 09:00-13:00" in row
    assert "4711" not in people and rec.pin["hash"] not in people  # the PIN never comes back
    page = _access_page(c, "s2").text
    assert 'value="777, 12345"' in page and 'id="pin-state">set' in page and "4711" not in page
    events = c.get("/events").text
    assert "person_access_changed" in events and "PIN changed" in events and "4711" not in events

    # keep the PIN (empty fields), change the rest; then remove the PIN
    assert _post_access(c, "s2", badges="777").status_code == 303
    rec2 = _record(door, "s2")
    assert rec2.badges == ("777",) and rec2.pin == rec.pin and rec2.schedule is None and rec2.groups == ()
    assert _post_access(c, "s2", badges="777", clear_pin="yes").status_code == 303
    assert _record(door, "s2").pin is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"badges": "12a45"}, "a badge number is 1-20 decimal digits"),
    ({"new_pin": "4711", "new_pin_again": "4712"}, "The two PINs differ"),
    ({"new_pin": "12", "new_pin_again": "12"}, "a PIN is 4 to 12 digits"),
    ({"schedule": "Mon-Fri 19:00-07:00x"}, "schedule"),
    ({"valid_from": "someday"}, "valid-from"),
])
def test_a_wrong_access_entry_is_refused_with_the_reason_and_changes_nothing(c, door, fields, message):
    before = Gallery.load(door["gallery"]).find("s1").attributes
    r = _post_access(c, "s1", **fields)
    assert r.status_code == 400 and message in r.text, r.text
    assert Gallery.load(door["gallery"]).find("s1").attributes == before
    assert 'name="new_pin"' in r.text and 'value="4711"' not in r.text  # the form again, never the PIN


def test_a_badge_held_by_another_person_is_refused(c, door):
    assert _post_access(c, "s1", badges="424242").status_code == 303
    r = _post_access(c, "s2", badges="0424242")
    assert r.status_code == 400 and "badge 424242 already belongs to 's1'" in html.unescape(r.text)
    assert "424242" not in _record(door, "s2").badges


def test_a_visitors_repeats_fold_past_the_relays_unlock_record_but_not_past_a_grant():
    """The relay's ``unlock`` record of an earlier grant is written when its pulse ends, in between a visitor's
    attempts (the browser test saw it race); a granted face in between starts a new row."""
    from edgeface.device.admin.pages_events import collapse

    def row(i, kind, detail=None):
        return {"id": i, "kind": kind, "detail": detail, "local": f"08:00:{i:02d}", "repeats": 0, "repeat_last": ""}

    again = "same face as an earlier attempt (not counted again)"
    oldest_first = [row(1, "granted"), row(2, "unknown"), row(3, "unlock"), row(4, "unknown", again),
                    row(5, "unknown", again), row(6, "granted"), row(7, "unknown", again)]
    out = collapse(oldest_first[::-1])[::-1]
    assert [(r["id"], r["repeats"]) for r in out] == [(1, 0), (2, 2), (3, 0), (6, 0), (7, 0)]
    assert out[1]["repeat_last"] == "08:00:05"
