"""Who may enter when: schedules on the local wall clock across the Europe/Berlin DST changes, validity dates
(an expired contractor), PIN hashes, config validation, and a wall-clock jump during a pulse."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from accesskit import config, gallery_with, runtime

from edgeface.access.credentials import AccessDataError, AccessRecord, check_pin, hash_pin
from edgeface.access.schedule import parse_schedule
from edgeface.device.access.claim import Claim
from edgeface.device.access.decide import AccessControl, simulated_wall
from edgeface.device.access.reader_simulated import SimulatedReader
from edgeface.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_schedule_follows_the_local_wall_clock_across_the_spring_dst_change():
    rec = AccessRecord.from_attributes({"access": {"schedule": "Mon-Fri 07:00-19:00"}})
    # Friday 27 March 2026 is CET (UTC+1), Monday 30 March CEST (UTC+2): 07:00 local is 06:00 / 05:00 UTC
    assert rec.refusal(utc(2026, 3, 27, 5, 59), BERLIN, {}) == "outside_schedule"  # 06:59 CET
    assert rec.refusal(utc(2026, 3, 27, 6, 0), BERLIN, {}) is None                  # 07:00 CET
    assert rec.refusal(utc(2026, 3, 30, 4, 59), BERLIN, {}) == "outside_schedule"  # 06:59 CEST
    assert rec.refusal(utc(2026, 3, 30, 5, 0), BERLIN, {}) is None                  # 07:00 CEST
    assert rec.refusal(utc(2026, 3, 30, 17, 0), BERLIN, {}) == "outside_schedule"  # 19:00 CEST, end exclusive
    assert rec.refusal(utc(2026, 3, 28, 10, 0), BERLIN, {}) == "outside_schedule"  # Saturday


def test_the_repeated_autumn_hour_is_judged_by_its_wall_time_both_times():
    rec = AccessRecord.from_attributes({"access": {"schedule": "Sun 02:00-02:30"}})
    # 25 October 2026: 02:15 local happens at 00:15 UTC (CEST) and again at 01:15 UTC (CET)
    first, second = utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 15)
    assert first.astimezone(BERLIN).hour == second.astimezone(BERLIN).hour == 2
    assert rec.refusal(first, BERLIN, {}) is None and rec.refusal(second, BERLIN, {}) is None
    assert rec.refusal(utc(2026, 10, 25, 1, 45), BERLIN, {}) == "outside_schedule"  # 02:45 CET


def test_overnight_ranges_groups_and_grammar_errors():
    s = parse_schedule("Fri 22:00-06:00; Sat,Sun 10:00-12:00")
    assert s.allows(datetime(2026, 12, 4, 23, 0)) and s.allows(datetime(2026, 12, 5, 5, 59))  # Fri night, Sat 05:59
    assert not s.allows(datetime(2026, 12, 5, 6, 0)) and s.allows(datetime(2026, 12, 6, 11, 0))
    staff = {"staff": parse_schedule("Mon-Fri 07:00-19:00")}
    worker = AccessRecord.from_attributes({"access": {"groups": ["staff"]}})
    typo = AccessRecord.from_attributes({"access": {"groups": ["stafff"]}})
    monday_noon = utc(2026, 11, 30, 11, 0)
    assert worker.refusal(monday_noon, BERLIN, staff) is None
    assert typo.refusal(monday_noon, BERLIN, staff) == "outside_schedule"  # an unknown group is not 24/7
    for bad in ("", "Mon-Fri", "Mon-Fry 07:00-19:00", "Mon 25:00-26:00", "Mon 07:00-07:00"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_an_expired_contractor_and_a_visitor_not_yet_valid_are_refused():
    contractor = AccessRecord.from_attributes({"access": {"valid_until": "2026-12-04"}})
    visitor = AccessRecord.from_attributes({"access": {"valid_from": "2026-12-05T09:00", "valid_until": "2026-12-05T17:00"}})
    assert contractor.refusal(utc(2026, 12, 4, 22, 59), BERLIN, {}) is None        # 23:59 local on the last day
    assert contractor.refusal(utc(2026, 12, 4, 23, 0), BERLIN, {}) == "expired"    # midnight local
    assert visitor.refusal(utc(2026, 12, 5, 7, 59), BERLIN, {}) == "not_yet_valid"  # 08:59 local
    assert visitor.refusal(utc(2026, 12, 5, 8, 0), BERLIN, {}) is None
    assert visitor.refusal(utc(2026, 12, 5, 16, 0), BERLIN, {}) == "expired"


def test_expired_contractor_badge_is_denied_at_the_door_and_a_valid_one_granted():
    cfg = config('mode = "face_or_badge"\ntimezone = "Europe/Berlin"\nverify_threshold = 0.5')
    g = gallery_with({"Ada": {"badges": ["0012345"]}, "Con": {"badges": ["777"], "valid_until": "2026-12-04"}})
    rt = runtime(cfg, g)
    start = datetime(2026, 12, 5, 10, 0, tzinfo=BERLIN)
    ac = AccessControl([SimulatedReader([Claim("badge", "12345", 1.0), Claim("badge", "777", 2.0),
                                         Claim("badge", "999", 3.0)])], wall=simulated_wall(start))
    out = ac.poll(5.0, rt)
    assert [(d.kind, d.person, d.detail.split(" (")[0]) for d in out] == [
        ("granted", "Ada", "face_or_badge: badge 12345"), ("denied", "Con", "expired"),
        ("denied", None, "unknown badge 999")]


def test_pin_is_stored_only_as_a_salted_scrypt_hash():
    a, b = hash_pin("4711"), hash_pin("4711")
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"] and "4711" not in str(a)
    assert check_pin("4711", a) and not check_pin("4712", a) and not check_pin("4711", {"salt": "zz"})
    with pytest.raises(AccessDataError):
        hash_pin("12")
    with pytest.raises(AccessDataError, match="not a scrypt hash"):
        AccessRecord.from_attributes({"access": {"pin": "4711"}})


def test_access_config_is_validated():
    cfg = config('mode = "face_and_badge"\ntimezone = "Europe/Berlin"\n[access.schedules]\nstaff = "Mon-Fri 07:00-19:00"')
    assert cfg.access.mode == "face_and_badge"
    for bad in ('timezone = "Mars/Olympus"', 'mode = "badge_only"', '[access.schedules]\nx = "Mon 9-5"',
                'claim_window_s = 0', '[access.door]\nheld_open = 3'):
        with pytest.raises(ConfigError):
            config(bad)


def test_a_wall_clock_jump_during_a_pulse_never_extends_it(monkeypatch):
    """The grant is decided on the wall clock (schedule), the pulse on the monotonic clock: the wall clock
    jumping back an hour (and time.time() with it) mid-pulse leaves the MockPin pulse at exactly pulse_s."""
    pytest.importorskip("gpiozero")
    from gatekit import pulses
    from gpiozero.pins.mock import MockFactory

    from edgeface.config import RelayConfig
    from edgeface.device.relay import open_relay

    cfg = config('mode = "face_or_badge"\ntimezone = "Europe/Berlin"\nverify_threshold = 0.5',
                 "[policy]\ncooldown_s = 1.0\n")  # the second swipe (2 s later) is past the badge cooldown
    rt = runtime(cfg, gallery_with({"Ada": {"badges": ["1"], "schedule": "Sat 09:00-11:00"}}))
    offset = [timedelta(0)]
    start = datetime(2026, 12, 5, 10, 59, 59, tzinfo=BERLIN)  # a Saturday, one second before the schedule ends
    ac = AccessControl([SimulatedReader([Claim("badge", "1", 0.0), Claim("badge", "1", 2.0)])],
                       wall=lambda t: start + timedelta(seconds=t) + offset[0])
    relay = open_relay(RelayConfig(backend="mock", pulse_s=0.3), pin_factory=MockFactory())
    try:
        (d,) = ac.poll(0.0, rt)
        assert d.kind == "granted"
        relay.pulse(0.3)
        real_time = time.time
        offset[0] = timedelta(hours=-1)  # NTP steps the clock back one hour mid-pulse
        monkeypatch.setattr(time, "time", lambda: real_time() - 3600)
        time.sleep(0.6)
        assert not relay.is_active
        (again,) = ac.poll(2.0, rt)  # 11:00:01 minus the hour: inside the schedule on the new wall clock
        assert again.kind == "granted"
        offset[0] = timedelta(hours=+1)  # and a jump forward never cuts a pulse either
        relay.pulse(0.3)
        time.sleep(0.6)
    finally:
        relay.close()
    assert pulses(relay.pin) == pytest.approx([0.3, 0.3], abs=0.05)


def test_validity_at_a_repeated_local_time_is_an_instant_and_never_valid_again():
    """Issue 23: ``valid_until 2026-10-25T02:30`` in Europe/Berlin expired at 02:30 CEST and was valid again at
    02:10 CET. The rule: a repeated local time ends validity at its first occurrence and starts it at its second."""
    rec = AccessRecord.from_attributes({"access": {"valid_until": "2026-10-25T02:30"}})
    assert rec.refusal(utc(2026, 10, 25, 0, 29), BERLIN, {}) is None        # 02:29 CEST
    assert rec.refusal(utc(2026, 10, 25, 0, 30), BERLIN, {}) == "expired"   # 02:30 CEST: the first 02:30
    assert rec.refusal(utc(2026, 10, 25, 1, 10), BERLIN, {}) == "expired"   # 02:10 CET: still expired
    assert rec.refusal(utc(2026, 10, 25, 1, 45), BERLIN, {}) == "expired"   # 02:45 CET
    start = AccessRecord.from_attributes({"access": {"valid_from": "2026-10-25T02:30"}})
    assert start.refusal(utc(2026, 10, 25, 0, 45), BERLIN, {}) == "not_yet_valid"  # 02:45 CEST: only one reading
    assert start.refusal(utc(2026, 10, 25, 1, 29), BERLIN, {}) == "not_yet_valid"  # 02:29 CET
    assert start.refusal(utc(2026, 10, 25, 1, 30), BERLIN, {}) is None             # 02:30 CET: the second 02:30
    exact = AccessRecord.from_attributes({"access": {"valid_until": "2026-10-25T02:30+01:00"}})
    assert exact.refusal(utc(2026, 10, 25, 1, 29), BERLIN, {}) is None  # an offset names the instant itself


def test_validity_at_a_skipped_local_time_is_the_moment_of_the_jump():
    """29 March 2026: 01:59:59 CET is followed by 03:00:00 CEST; 02:30 does not exist and means the jump (01:00Z)."""
    until = AccessRecord.from_attributes({"access": {"valid_until": "2026-03-29T02:30"}})
    frm = AccessRecord.from_attributes({"access": {"valid_from": "2026-03-29T02:30"}})
    assert until.refusal(utc(2026, 3, 29, 0, 59, 59), BERLIN, {}) is None      # 01:59:59 CET
    assert until.refusal(utc(2026, 3, 29, 1, 0), BERLIN, {}) == "expired"      # 03:00 CEST
    assert frm.refusal(utc(2026, 3, 29, 0, 59, 59), BERLIN, {}) == "not_yet_valid"
    assert frm.refusal(utc(2026, 3, 29, 1, 0), BERLIN, {}) is None


def test_the_simulated_clock_stays_right_across_the_autumn_change(tmp_path):
    """``--clock`` plus video time is added in UTC: 25 min after 02:50 CEST is 02:15 CET (it was 03:15, 1 h off)."""
    from edgeface.access.schedule import parse_moment

    start = parse_moment("2026-10-25T02:50", BERLIN, what="--clock")  # the first 02:50 (CEST)
    wall = simulated_wall(start)
    assert wall(0).astimezone(BERLIN).strftime("%H:%M %Z") == "02:50 CEST"
    assert wall(25 * 60).astimezone(BERLIN).strftime("%H:%M %Z") == "02:15 CET"
    assert wall(3600).astimezone(BERLIN).strftime("%H:%M %Z") == "02:50 CET"
    local = simulated_wall(datetime(2026, 10, 25, 1, 50, tzinfo=BERLIN))  # an aware local start works the same
    assert local(3 * 3600) - local(0) == timedelta(hours=3)
    assert local(3 * 3600).astimezone(timezone.utc) == utc(2026, 10, 25, 2, 50)
    spring = simulated_wall(parse_moment("2026-03-29T02:30", BERLIN, what="--clock"))  # skipped: the jump
    assert spring(0).astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"


def test_a_badge_at_the_door_across_the_autumn_change_through_the_simulated_clock():
    """The simulated clock drives the schedule: --clock 02:00 (CEST) on 25 October; 70 min of video later the wall
    clock shows 02:10 CET (it showed 03:10 before, an hour off), 130 min later 03:10 CET."""
    cfg = config('mode = "face_or_badge"\ntimezone = "Europe/Berlin"\nverify_threshold = 0.5',
                 "[policy]\ncooldown_s = 0\n")
    rt = runtime(cfg, gallery_with({"Night": {"badges": ["777"], "schedule": "Sun 03:00-04:00"}}))
    from edgeface.access.schedule import parse_moment

    start = parse_moment("2026-10-25T02:00", BERLIN, what="--clock")  # 02:00 CEST
    ac = AccessControl([SimulatedReader([Claim("badge", "777", 70 * 60.0), Claim("badge", "777", 130 * 60.0)])],
                       wall=simulated_wall(start))
    out = ac.poll(70 * 60.0, rt) + ac.poll(130 * 60.0, rt)  # 02:10 CET, then 03:10 CET
    assert [(d.kind, (d.detail or "").split(" (")[0]) for d in out] == [("denied", "outside_schedule"),
                                                                         ("granted", "face_or_badge: badge 777")]
