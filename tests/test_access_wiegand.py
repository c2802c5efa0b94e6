"""Wiegand 26/34-bit decoding from pulse trains driven on gpiozero MockFactory pins (real gpiozero input code)."""

from __future__ import annotations

import pytest

pytest.importorskip("gpiozero", reason="gpiozero is not installed")
from gpiozero.pins.mock import MockFactory  # noqa: E402

from edgeface.device.access.claim import Claim, ReaderFault  # noqa: E402
from edgeface.device.access.wiegand import WiegandReader, encode  # noqa: E402


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture
def reader():
    factory, clock = MockFactory(), Clock()
    r = WiegandReader(5, 6, frame_gap_s=0.025, pin_factory=factory, clock=clock)
    yield r, factory.pin(5), factory.pin(6), clock
    r.close()


def send(d0, d1, clock, bits, interval=0.002):
    """A reader's pulse train: a ~50 us low pulse on DATA0 (a 0) or DATA1 (a 1), one bit per ``interval``."""
    for b in bits:
        pin = d1 if b else d0
        pin.drive_low()
        pin.drive_high()
        clock.t += interval


def end_frame(r, clock):
    clock.t += 0.05
    return r.poll()


def test_valid_26_bit_frame_is_facility_and_card_number(reader):
    r, d0, d1, clock = reader
    value = (42 << 16) | 12345  # facility 42, card 12345
    send(d0, d1, clock, encode(value, 26))
    assert r.poll() == []  # the frame has not ended yet (no gap)
    out = end_frame(r, clock)
    assert out == [Claim("badge", str(value), clock.t, "wiegand")]
    assert r.frames == 1 and not r.bad_frames


def test_valid_34_bit_frame_and_two_frames_back_to_back(reader):
    r, d0, d1, clock = reader
    send(d0, d1, clock, encode(0xDEADBEEF, 34))
    clock.t += 0.03  # the gap is seen when the next frame's first bit arrives
    send(d0, d1, clock, encode(12345, 26))
    out = end_frame(r, clock)
    assert [c.value for c in out] == [str(0xDEADBEEF), "12345"]
    assert r.frames == 2


@pytest.mark.parametrize("flip", [0, 5, 20, 25])
def test_parity_error_is_a_counted_fault_never_a_badge(reader, flip):
    r, d0, d1, clock = reader
    bits = encode(12345, 26)
    bits[flip] ^= 1
    send(d0, d1, clock, bits)
    out = end_frame(r, clock)
    assert len(out) == 1 and isinstance(out[0], ReaderFault) and "parity" in out[0].detail
    which = "even" if flip <= 12 and flip != 25 else "odd"
    assert f"{which} parity error" in out[0].detail
    assert sum(r.bad_frames.values()) == 1


def test_truncated_frame_is_refused(reader):
    r, d0, d1, clock = reader
    send(d0, d1, clock, encode(12345, 26)[:19])
    out = end_frame(r, clock)
    assert isinstance(out[0], ReaderFault) and "19-bit frame" in out[0].detail
    assert r.bad_frames["19-bit frame"] == 1


def test_noise_is_counted_and_does_not_corrupt_the_next_frame(reader):
    r, d0, d1, clock = reader
    send(d0, d1, clock, [1, 0, 1], interval=0.0005)  # a glitch on the cable
    clock.t += 0.1
    bits = encode(777, 26)
    d0.drive_low()  # both lines low at once inside a frame (a 0 and a 1): a reader never does that
    d1.drive_low()
    d1.drive_high()
    d0.drive_high()
    send(d0, d1, clock, bits[2:])
    clock.t += 0.1
    send(d0, d1, clock, encode(778, 26))
    out = end_frame(r, clock)
    faults = [o for o in out if isinstance(o, ReaderFault)]
    claims = [o for o in out if isinstance(o, Claim)]
    assert "noise (3 bits)" in faults[0].detail and "both lines low" in faults[1].detail
    assert [c.value for c in claims] == ["778"]
    assert r.frames == 3 and sum(r.bad_frames.values()) == 2
