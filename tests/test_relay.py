"""The relay on gpiozero's own MockFactory pins (real gpiozero code) and on the fake Jetson.GPIO.

Pulse lengths are read from the pins' recorded state-change times (MockPin.states holds the time since the
previous change), not from our own bookkeeping.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

gpiozero = pytest.importorskip("gpiozero")
from gpiozero.pins.mock import MockFactory, MockPin  # noqa: E402

from edgeface.config import HARD_MAX_PULSE_S, RelayConfig  # noqa: E402
from edgeface.device.relay import Relay, RelayError, open_relay  # noqa: E402
from edgeface.device.relay_gpiozero import GpiozeroDriver  # noqa: E402

FAKES = Path(__file__).parent / "fakes"


def wait_off(relay: Relay, limit: float = 3.0) -> None:
    deadline = time.monotonic() + limit
    while relay.is_active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not relay.is_active, "the relay did not switch itself off"


def on_durations(pin, on_level: bool) -> list[float]:
    """Durations of every interval the pin spent at ``on_level`` since it was claimed as an output, from its
    recorded state changes. states[0] is the level of the unclaimed (floating input) pin, not ours: claiming
    drives it to the off level within microseconds (see the off-at-start test)."""
    out = []
    for prev, nxt in zip(pin.states[1:], pin.states[2:]):
        if prev.state == on_level and nxt.state != on_level:
            out.append(nxt.timestamp)
    return out


def mock_relay(active_high=True, pin=17):
    factory = MockFactory()
    relay = open_relay(RelayConfig(backend="gpiozero", pin=pin, active_high=active_high), pin_factory=factory)
    return relay, factory


def test_mock_backend_is_gpiozero_mockfactory_and_off_at_start():
    relay = open_relay(RelayConfig(backend="mock", pin=17))
    try:
        assert isinstance(relay.pin, MockPin)
        assert isinstance(relay.driver.device, gpiozero.OutputDevice)
        assert relay.pin.function == "output"
        assert relay.pin.state is False and not relay.is_active
        assert all(s.state is False for s in relay.pin.states)  # never went high while being claimed
    finally:
        relay.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_pulse_lasts_as_configured_on_the_pin(active_high):
    relay, _ = mock_relay(active_high=active_high)
    on_level = active_high
    try:
        assert relay.pin.state is (not on_level)  # off at start, whatever the polarity
        granted = relay.pulse(0.3)
        assert granted == pytest.approx(0.3, abs=1e-3)
        assert relay.is_active and relay.pin.state is on_level
        wait_off(relay)
        assert relay.pin.state is (not on_level)
        durations = on_durations(relay.pin, on_level)
        assert len(durations) == 1
        assert abs(durations[0] - 0.3) < 0.05, durations
        assert len(relay.pulses) == 1
    finally:
        relay.close()


def test_active_low_board_inverts_the_pin_level():
    relay, _ = mock_relay(active_high=False)
    try:
        assert relay.pin.state is True  # high = relay off on an active-low board
        relay.pulse(5)
        assert relay.pin.state is False
        relay.off()
        assert relay.pin.state is True and not relay.is_active
    finally:
        relay.close()


def test_second_pulse_extends_but_never_past_the_hard_maximum():
    relay, _ = mock_relay()
    relay.close()
    factory = MockFactory()
    relay = Relay(GpiozeroDriver(17, pin_factory=factory), hard_max_s=0.4)
    try:
        relay.pulse(0.25)
        time.sleep(0.1)
        relay.pulse(0.25)  # wants to end at ~0.35 after the first energise: allowed
        time.sleep(0.1)
        left = relay.pulse(0.25)  # wants ~0.45: capped at 0.4 after the first energise
        assert left < 0.25
        wait_off(relay)
        durations = on_durations(relay.pin, True)
        assert len(durations) == 1  # one continuous pulse, no gap
        assert abs(durations[0] - 0.4) < 0.05, durations
    finally:
        relay.close()


def test_hard_maximum_caps_a_single_long_pulse():
    factory = MockFactory()
    relay = Relay(GpiozeroDriver(17, pin_factory=factory), hard_max_s=0.3)
    try:
        assert relay.pulse(60) == pytest.approx(0.3, abs=1e-3)
        wait_off(relay)
        assert abs(on_durations(relay.pin, True)[0] - 0.3) < 0.05
    finally:
        relay.close()
    relay, _ = mock_relay()
    try:
        assert relay.pulse(HARD_MAX_PULSE_S * 10) <= HARD_MAX_PULSE_S
    finally:
        relay.close()
    with pytest.raises(ValueError):
        Relay(GpiozeroDriver(18, pin_factory=factory), hard_max_s=HARD_MAX_PULSE_S + 1)


def test_pulse_rejects_nonsense_lengths():
    relay, _ = mock_relay()
    try:
        for bad in (0, -1, float("nan")):
            with pytest.raises(ValueError):
                relay.pulse(bad)
        assert relay.pin.state is False
    finally:
        relay.close()


def test_close_is_idempotent_and_forces_off_during_a_pulse():
    relay, factory = mock_relay(active_high=False)
    pin = relay.pin
    relay.pulse(5)
    assert pin.state is False
    relay.close()
    relay.close()
    assert pin.state is True  # off (active-low), and left that way
    assert not relay.is_active
    with pytest.raises(RelayError):
        relay.pulse(1)
    # the line was released: the same pin can be claimed again
    again = open_relay(RelayConfig(backend="gpiozero", pin=17, active_high=False), pin_factory=factory)
    again.close()


@pytest.mark.parametrize("pin", [99, "GPIO99"])
def test_invalid_pin_is_a_relay_error(pin):
    with pytest.raises(RelayError, match="cannot claim GPIO"):
        open_relay(RelayConfig(backend="gpiozero", pin=pin), pin_factory=MockFactory())


def test_pin_in_use_is_a_relay_error_and_nothing_is_energised():
    first, factory = mock_relay()
    try:
        with pytest.raises(RelayError, match="in use"):
            open_relay(RelayConfig(backend="gpiozero", pin=17), pin_factory=factory)
        assert all(s.state is False for s in first.pin.states)
    finally:
        first.close()


def test_no_pin_factory_available_is_a_relay_error(monkeypatch):
    # gpiozero resolves GPIOZERO_PIN_FACTORY through its entry points; an unknown one is its BadPinFactory
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    monkeypatch.setattr(gpiozero.Device, "pin_factory", None)
    with pytest.raises(RelayError, match="cannot claim GPIO 17"):
        open_relay(RelayConfig(backend="gpiozero", pin=17))


class FlakyPin(MockPin):
    """A MockPin whose writes fail while ``broken`` is set, like a GPIO chip that went away."""

    broken = False

    def _set_state(self, value):
        if FlakyPin.broken:
            raise OSError("GPIO write failed")
        super()._set_state(value)


def test_a_failed_energise_raises_and_leaves_the_relay_off():
    factory = MockFactory(pin_class=FlakyPin)
    relay = open_relay(RelayConfig(backend="gpiozero", pin=17), pin_factory=factory)
    try:
        FlakyPin.broken = True
        with pytest.raises(RelayError, match="cannot drive the relay on"):
            relay.pulse(1)
        assert not relay.is_active and relay.faults >= 1
        FlakyPin.broken = False
        relay.pulse(0.1)  # works again once the pin does
        wait_off(relay)
        assert relay.pin.state is False
    finally:
        FlakyPin.broken = False
        relay.close()


# --- Jetson.GPIO -------------------------------------------------------------------------------------------

@pytest.fixture
def fake_jetson(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES))
    for name in ("Jetson", "Jetson.GPIO"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    GPIO = importlib.import_module("Jetson.GPIO")
    GPIO._reset_for_tests()
    yield GPIO
    GPIO._reset_for_tests()
    for name in ("Jetson.GPIO", "Jetson"):
        sys.modules.pop(name, None)  # the fake must not outlive the test


@pytest.mark.parametrize("active_high", [True, False])
def test_jetson_pulse_and_cleanup(fake_jetson, active_high):
    GPIO = fake_jetson
    relay = open_relay(RelayConfig(backend="jetson", pin=12, active_high=active_high))
    on, off = (GPIO.HIGH, GPIO.LOW) if active_high else (GPIO.LOW, GPIO.HIGH)
    assert GPIO.getmode() == GPIO.BOARD
    assert GPIO.input(12) == off and [h[2] for h in GPIO.history] == [off]  # set up at the inactive level
    relay.pulse(0.2)
    assert GPIO.input(12) == on
    wait_off(relay)
    levels = [h[2] for h in GPIO.history]
    assert levels == [off, on, off]
    assert abs((GPIO.history[2][0] - GPIO.history[1][0]) - 0.2) < 0.05
    relay.close()
    relay.close()
    assert GPIO.levels[12] == off and 12 not in GPIO._configuration  # cleaned up, left off


def test_jetson_invalid_pin_and_busy_line_are_relay_errors(fake_jetson):
    with pytest.raises(RelayError, match="Channel 1 is invalid"):
        open_relay(RelayConfig(backend="jetson", pin=1))
    fake_jetson.fail_setup = OSError("[Errno 16] Device or resource busy")
    with pytest.raises(RelayError, match="busy"):
        open_relay(RelayConfig(backend="jetson", pin=12))
    assert fake_jetson.history == []


def test_jetson_in_another_numbering_mode_is_refused(fake_jetson):
    fake_jetson.setmode(fake_jetson.BCM)
    with pytest.raises(RelayError, match="BOARD"):
        open_relay(RelayConfig(backend="jetson", pin=12))


def test_jetson_gpio_missing_is_a_relay_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "Jetson", None)  # import Jetson.GPIO -> ImportError, as off a Jetson
    with pytest.raises(RelayError, match="Jetson.GPIO is not available"):
        open_relay(RelayConfig(backend="jetson", pin=12))


def test_back_to_back_pulses_always_end():
    """A pulse that starts just as the previous one's timer finishes must still get a timer (a timer thread
    that is exiting must not be mistaken for one that will switch the new pulse off)."""
    relay, _ = mock_relay()
    try:
        for _ in range(100):
            relay.pulse(0.002)
            while relay.is_active:
                pass  # re-pulse the instant it drops, to land in the timer thread's exit window
        relay.pulse(0.002)
        wait_off(relay, limit=1.0)
        assert relay.pin.state is False
        assert len(on_durations(relay.pin, True)) == 101
    finally:
        relay.close()


class HookPin(MockPin):
    """A MockPin that runs ``hook`` right after it is driven high: where a signal handler could run."""

    hook = None

    def _set_state(self, value):
        super()._set_state(value)
        if value and HookPin.hook is not None:
            hook, HookPin.hook = HookPin.hook, None
            hook()


def test_off_during_the_energise_wins():
    factory = MockFactory(pin_class=HookPin)
    relay = open_relay(RelayConfig(backend="gpiozero", pin=17), pin_factory=factory)
    try:
        HookPin.hook = relay.off  # SIGTERM handler calling off() in the middle of pulse(), same thread
        assert relay.pulse(5) == 0.0
        assert relay.pin.state is False and not relay.is_active
        time.sleep(0.05)
        assert relay.pin.state is False
    finally:
        HookPin.hook = None
        relay.close()
