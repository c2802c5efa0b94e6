"""The door's inputs on gpiozero MockFactory pins: forced open, held open, the exit button (which pulses the
relay through the gate and is audited), tamper, debounce and active levels."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("gpiozero", reason="gpiozero is not installed")
from gpiozero.pins.mock import MockFactory  # noqa: E402

from edgeface.config import DoorConfig, RelayConfig  # noqa: E402
from edgeface.device.access.door import DoorMonitor  # noqa: E402
from edgeface.device.relay import open_relay  # noqa: E402

CONTACT, EXIT, TAMPER = 22, 23, 24


@pytest.fixture
def door():
    """Contact high = open (pull-up, reed switch to ground closed while the door is shut); exit button to ground."""
    factory = MockFactory()
    relay = open_relay(RelayConfig(backend="mock", pulse_s=0.3), pin_factory=factory)
    cfg = DoorConfig(contact_pin=CONTACT, exit_pin=EXIT, tamper_pin=TAMPER, debounce_s=0.02, held_open_s=0.3,
                     forced_grace_s=0.3)
    mon = DoorMonitor(cfg, relay, pin_factory=factory)
    factory.pin(CONTACT).drive_low()  # door shut (the pull-up reads open until the switch pulls it low)
    factory.pin(TAMPER).drive_low()
    time.sleep(0.05)
    assert [k for k, _ in mon.poll()] == ["door_closed", "tamper_cleared"]
    yield mon, relay, factory
    mon.close()
    relay.close()


def settle(mon, seconds=0.05):
    time.sleep(seconds)
    return [k for k, _ in mon.poll()]


def test_door_opened_without_a_pulse_is_forced(door):
    mon, relay, f = door
    assert mon.door_open is False and settle(mon) == []
    f.pin(CONTACT).drive_high()
    assert settle(mon) == ["door_opened", "door_forced"]
    f.pin(CONTACT).drive_low()
    assert settle(mon) == ["door_closed"]


def test_door_opened_during_or_just_after_a_pulse_is_not_forced(door):
    mon, relay, f = door
    relay.pulse(0.1)
    f.pin(CONTACT).drive_high()
    assert settle(mon) == ["door_opened"]
    f.pin(CONTACT).drive_low()
    time.sleep(0.1)  # the pulse has ended, still within forced_grace_s
    assert settle(mon) == ["door_closed"]
    f.pin(CONTACT).drive_high()
    assert settle(mon) == ["door_opened"]
    f.pin(CONTACT).drive_low()
    settle(mon)
    time.sleep(0.4)  # past the grace: opening now is forced
    f.pin(CONTACT).drive_high()
    assert settle(mon) == ["door_opened", "door_forced"]


def test_held_open_is_reported_once_per_opening(door):
    mon, relay, f = door
    relay.pulse(0.1)
    f.pin(CONTACT).drive_high()
    assert settle(mon) == ["door_opened"]
    assert settle(mon, 0.35) == ["door_held_open"]
    assert settle(mon, 0.1) == []
    f.pin(CONTACT).drive_low()
    assert settle(mon) == ["door_closed"]


def test_contact_bounce_shorter_than_debounce_is_ignored(door):
    mon, relay, f = door
    for _ in range(5):
        f.pin(CONTACT).drive_high()
        f.pin(CONTACT).drive_low()
    assert settle(mon) == []


def test_exit_button_and_tamper(door):
    mon, relay, f = door
    f.pin(EXIT).drive_low()  # pressed (button to ground, pull-up)
    assert settle(mon) == ["exit_request"]
    f.pin(EXIT).drive_high()
    assert settle(mon) == []
    f.pin(TAMPER).drive_high()
    assert settle(mon) == ["tamper"]
    f.pin(TAMPER).drive_low()
    assert settle(mon) == ["tamper_cleared"]


def test_exit_button_pulses_the_relay_through_the_gate_and_is_audited(tmp_path):
    """The gate's own loop (Gate._poll_access -> _act) on a MockFactory: the exit button energises the relay for
    pulse_s, an exit_request and an unlock row reach the audit log, and opening the door then is not forced."""
    from types import SimpleNamespace

    from gatekit import pulses

    from edgeface.device.access.decide import AccessControl
    from edgeface.device.audit import AuditLog
    from edgeface.device.gate import Gate

    factory = MockFactory()
    relay = open_relay(RelayConfig(backend="mock", pulse_s=0.3), pin_factory=factory)
    mon = DoorMonitor(DoorConfig(contact_pin=CONTACT, exit_pin=EXIT, debounce_s=0.02), relay, pin_factory=factory)
    factory.pin(CONTACT).drive_low()
    time.sleep(0.05)
    mon.poll()
    cfg = SimpleNamespace(relay=RelayConfig(backend="mock", pulse_s=0.3))
    rt = SimpleNamespace(params=_params(), config=cfg, access=None)  # no camera or model: the door needs neither
    audit = AuditLog(tmp_path / "audit.db")
    gate = Gate(rt, None, relay, audit=audit, log_out=None, access=AccessControl(door=mon))
    try:
        factory.pin(EXIT).drive_low()
        time.sleep(0.05)
        gate._poll_access()
        factory.pin(EXIT).drive_high()
        time.sleep(0.1)
        factory.pin(CONTACT).drive_high()
        time.sleep(0.05)
        gate._poll_access()
        time.sleep(0.4)
    finally:
        mon.close()
        relay.close()
    gate._settle_unlocks()  # the loop's next turn: the pulse has ended, its unlock is reported with its length
    kinds = [e["kind"] for e in audit.events()]
    unlock = [e for e in audit.events() if e["kind"] == "unlock"]
    audit.close()
    assert kinds == ["exit_request", "door_opened", "unlock"]
    assert unlock[0]["duration_s"] == pytest.approx(0.3, abs=0.05)
    assert pulses(relay.pin) == pytest.approx([0.3], abs=0.05)


def _params():
    from scorekit import World

    from edgeface.device.policy import PolicyParams

    return PolicyParams(thresholds=World().thresholds())
