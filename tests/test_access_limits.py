"""Guessing at the door: wrong PINs typed with an employee's face (a photo held to the camera) are limited per
person and end in a lockout event; one badge swiped again and again opens the door once per cooldown. The
attacks of issue 23, driven the way the gate drives AccessControl (poll every loop turn, decide every frame)."""

from __future__ import annotations

import numpy as np
import pytest
from accesskit import config, gallery_with, runtime

from edgeface.device.access import decide as decide_module
from edgeface.device.access.claim import Claim
from edgeface.device.access.decide import AccessControl
from edgeface.device.access.reader_simulated import SimulatedReader


class Frames:
    """A usable frame every 0.1 s whose fused face is ``face`` (the policy's fused face of the appearance)."""

    def __init__(self, face):
        self.face = face

    def fused(self):
        return self.face, 5

    def usable(self):
        from types import SimpleNamespace

        return SimpleNamespace(usable=True)


def run(ac: AccessControl, rt, frames: Frames, until: float, step: float = 0.1) -> list:
    out = []
    for i in range(int(round(until / step)) + 1):
        t = round(i * step, 3)
        out += ac.decide(t, frames.usable(), [], rt, False, frames.fused)
        out += ac.poll(t, rt)
    return out


@pytest.fixture
def pin_door():
    cfg = config('mode = "face_and_pin"\nverify_threshold = 0.5')  # the defaults: 3 wrong PINs per 300 s lock 900 s
    assert (cfg.access.max_wrong_pins, cfg.access.pin_window_s, cfg.access.pin_lockout_s) == (3, 300, 900)
    g = gallery_with({"Ada": {"pin": "4711"}, "Bob": {"pin": "2222"}})
    return cfg, g, runtime(cfg, g)


def test_711_wrong_pins_with_an_employees_photo_lock_her_pin_entry(pin_door, monkeypatch):
    """The issue's attack: Ada's photo at the camera, 711 wrong PINs at 0.1 s, then the right one (it was granted
    as the 712th). Now: three are checked and denied, a lockout event follows, the rest (and the right PIN) are
    denied without being checked; nothing is granted."""
    cfg, g, rt = pin_door
    checked = []
    real = decide_module.check_pin
    monkeypatch.setattr(decide_module, "check_pin", lambda pin, stored, secret=None: checked.append(pin) or real(pin, stored, secret))
    wrong = [f"{n:04d}" for n in range(711) if f"{n:04d}" != "4711"]
    claims = [Claim("pin", pin, round(0.1 * i, 3)) for i, pin in enumerate(wrong)]
    claims.append(Claim("pin", "4711", round(0.1 * len(wrong), 3)))
    ac = AccessControl([SimulatedReader(claims)])
    out = run(ac, rt, Frames(g.find("Ada").embeddings[0]), until=0.1 * len(claims) + 1)
    assert not [d for d in out if d.kind == "granted"]
    lockouts = [d for d in out if d.kind == "lockout"]
    assert len(lockouts) == 1 and lockouts[0].person == "Ada" and lockouts[0].rule == "pin_attempts"
    denied = [d for d in out if d.kind == "denied"]
    assert len(denied) == len(claims)  # every claim is answered, none superseded
    assert [d.rule for d in denied[:3]] == ["pin"] * 3 and all("wrong PIN" in d.detail for d in denied[:3])
    assert all(d.rule == "lockout" and "locked" in d.detail for d in denied[3:])
    assert len(checked) == 3  # no scrypt hash is spent on a locked person's PINs
    assert not any(c.value in (d.detail or "") for d in out for c in claims)  # a PIN is never logged


def test_the_pin_lock_is_per_person_and_ends(pin_door):
    cfg, g, rt = pin_door
    ada, bob = g.find("Ada").embeddings[0], g.find("Bob").embeddings[0]
    ac = AccessControl([SimulatedReader([Claim("pin", p, t) for p, t in
                                         (("0000", 0.0), ("0001", 1.0), ("0002", 2.0), ("4711", 3.0))])])
    out = run(ac, rt, Frames(ada), until=4.0)
    assert [d.kind for d in out] == ["denied", "denied", "denied", "lockout", "denied"]
    # Bob at the door with his own PIN, meanwhile: granted (the lock is Ada's)
    bob_frames = Frames(bob)
    ac.decide(5.0, bob_frames.usable(), [], rt, False, bob_frames.fused)
    ac.readers = [SimulatedReader([Claim("pin", "2222", 5.0)])]
    assert [(d.kind, d.person) for d in ac.poll(5.0, rt)] == [("granted", "Bob")]
    # Ada back after pin_lockout_s: her right PIN opens
    ada_frames = Frames(ada)
    ac.decide(903.0, ada_frames.usable(), [], rt, False, ada_frames.fused)
    ac.readers = [SimulatedReader([Claim("pin", "4711", 903.0)])]
    assert [(d.kind, d.person) for d in ac.poll(903.0, rt)] == [("granted", "Ada")]


def test_wrong_pins_spread_beyond_the_window_do_not_lock(pin_door):
    cfg, g, rt = pin_door
    claims = [Claim("pin", "0000", t) for t in (0.0, 200.0, 400.0, 600.0)] + [Claim("pin", "4711", 601.0)]
    ac = AccessControl([SimulatedReader(claims)])
    out = run(ac, rt, Frames(g.find("Ada").embeddings[0]), until=602.0, step=1.0)
    assert [d.kind for d in out] == ["denied"] * 4 + ["granted"]


def test_ten_swipes_of_one_badge_in_2_7_s_open_the_door_once():
    """The issue's attack: 10 swipes of one badge in 2.7 s gave 10 grants (faces have a 10 s cooldown)."""
    cfg = config('mode = "face_or_badge"\nverify_threshold = 0.5', "[policy]\ncooldown_s = 10\n")
    rt = runtime(cfg, gallery_with({"Ada": {"badges": ["12345"]}, "Bob": {"badges": ["777"]}}))
    swipes = [Claim("badge", "12345", round(0.3 * i, 2)) for i in range(10)]  # 0.0 ... 2.7 s
    claims = sorted(swipes + [Claim("badge", "777", 1.0), Claim("badge", "12345", 12.0)], key=lambda c: c.t)
    ac = AccessControl([SimulatedReader(claims)])
    out = []
    for t in np.arange(0, 13.0, 0.1):
        out += ac.poll(round(float(t), 2), rt)
    granted = [(d.person, d.t) for d in out if d.kind == "granted"]
    assert granted == [("Ada", 0.0), ("Bob", 1.0), ("Ada", 12.0)]  # Bob is not held up by Ada's cooldown
    cooled = [d for d in out if d.rule == "cooldown"]
    assert len(cooled) == 9 and all(d.kind == "denied" and d.person == "Ada" for d in cooled)


def test_a_face_right_after_a_badge_grant_does_not_unlock_again():
    from edgeface.device.policy import Decision

    cfg = config('mode = "face_or_badge"\nverify_threshold = 0.5', "[policy]\ncooldown_s = 10\n")
    rt = runtime(cfg, gallery_with({"Ada": {"badges": ["12345"]}}))
    ac = AccessControl([SimulatedReader([Claim("badge", "12345", 0.0)])])
    assert [d.kind for d in ac.poll(0.0, rt)] == ["granted"]
    face = Decision("granted", 1.5, person_id="Ada", person="Ada", score=0.9, rule="door")
    (d,) = ac.decide(1.5, None, [face], rt)
    assert d.kind == "denied" and d.rule == "cooldown"
    (d,) = ac.decide(11.0, None, [Decision("granted", 11.0, person_id="Ada", person="Ada", score=0.9)], rt)
    assert d.kind == "granted"
