"""A Wiegand 26/34-bit badge reader on two GPIO lines, decoded in software.

The reader holds DATA0 and DATA1 high and pulls one of them low for ~50 us per bit (DATA0 a 0, DATA1 a 1),
a bit every ~2 ms. Each line is a gpiozero ``DigitalInputDevice`` with the pull-up on, whose ``when_activated``
(falling edge) appends a bit; a frame ends when no bit arrived for ``frame_gap_s`` on the monotonic clock
(checked when the next bit arrives and on every :meth:`WiegandReader.poll`).

Frames:

* 26 bits: even parity over bits 1-12 (bit 0), odd parity over bits 13-24 (bit 25); 24 data bits (8-bit
  facility code, 16-bit card number).
* 34 bits: even parity over bits 1-16 (bit 0), odd parity over bits 17-32 (bit 33); 32 data bits.

The badge number is the data bits as one unsigned integer (``facility * 65536 + card`` for 26 bits), in the
canonical decimal form of :func:`edgeface.access.credentials.badge_number`. A frame of another length, with a
parity error, with both lines low at once, or of fewer than :data:`NOISE_BITS` bits (a glitch on the cable) is
counted in ``bad_frames`` by reason and reported as a :class:`ReaderFault` (the gate audits it as
``bad_frame``), never as a badge.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

from edgeface.access.credentials import badge_number

from .claim import Claim, ReaderFault

#: a "frame" shorter than this is line noise
NOISE_BITS = 8
#: more bits than this without a gap is not a Wiegand frame: drop them rather than grow without bound
MAX_BITS = 64


def decode(bits: list[int]) -> tuple[str | None, str | None]:
    """(badge number, None) for a valid 26/34-bit frame, else (None, reason)."""
    n = len(bits)
    if n < NOISE_BITS:
        return None, f"noise ({n} bit{'s' if n != 1 else ''})"
    if n not in (26, 34):
        return None, f"{n}-bit frame (truncated or not Wiegand 26/34)"
    half = (n - 2) // 2
    first, second = bits[1:1 + half], bits[1 + half:n - 1]
    if (bits[0] + sum(first)) % 2 != 0:
        return None, f"{n}-bit frame: even parity error"
    if (bits[-1] + sum(second)) % 2 != 1:
        return None, f"{n}-bit frame: odd parity error"
    value = 0
    for b in bits[1:n - 1]:
        value = (value << 1) | b
    return badge_number(value), None


def encode(value: int, bits: int = 26) -> list[int]:
    """The frame a reader sends for ``value`` (data bits) with correct parity: for tests and bench tools."""
    data = [(value >> i) & 1 for i in range(bits - 3, -1, -1)]
    half = len(data) // 2
    even = sum(data[:half]) % 2
    odd = 1 - sum(data[half:]) % 2
    return [even, *data, odd]


class WiegandReader:
    """Two gpiozero inputs -> badge claims. Thread-safe: gpiozero calls back on its own thread, the gate
    drains :meth:`poll` on its loop."""

    name = "wiegand"

    def __init__(self, d0_pin, d1_pin, frame_gap_s: float = 0.025, pin_factory=None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from gpiozero import DigitalInputDevice

        self.frame_gap_s = float(frame_gap_s)
        self.clock = clock
        self.frames = 0
        self.bad_frames: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._bits: list[int] = []
        self._noisy = False
        self._last_bit: float | None = None
        self._out: collections.deque = collections.deque(maxlen=256)
        self._d0 = DigitalInputDevice(d0_pin, pull_up=True, pin_factory=pin_factory)
        try:
            self._d1 = DigitalInputDevice(d1_pin, pull_up=True, pin_factory=pin_factory)
        except BaseException:
            self._d0.close()
            raise
        self._d0.when_activated = lambda: self._bit(0)
        self._d1.when_activated = lambda: self._bit(1)

    def _bit(self, bit: int) -> None:
        with self._lock:
            now = self.clock()
            self._end_frame_if_gap(now)
            other = self._d1 if bit == 0 else self._d0
            if other.is_active:  # both lines low: not something a reader sends
                self._noisy = True
            if len(self._bits) < MAX_BITS:
                self._bits.append(bit)
            else:
                self._noisy = True
            self._last_bit = now

    def _end_frame_if_gap(self, now: float) -> None:
        if self._last_bit is None or now - self._last_bit < self.frame_gap_s:
            return
        bits, noisy = self._bits, self._noisy
        self._bits, self._noisy, self._last_bit = [], False, None
        badge, reason = decode(bits)
        if noisy:  # whatever the bits say
            badge, reason = None, f"{len(bits)}-bit frame with both lines low at once (noise)"
        self.frames += 1
        if badge is not None:
            self._out.append(Claim("badge", badge, now, self.name))
        else:
            self.bad_frames[reason.split(" (")[0].split(": ")[-1]] += 1
            self._out.append(ReaderFault(now, f"wiegand: {reason}"))

    def poll(self, now: float | None = None) -> list:
        """Claims and faults of the frames that ended since the last call (the reader keeps its own clock)."""
        with self._lock:
            self._end_frame_if_gap(self.clock())
            out = list(self._out)
            self._out.clear()
        return out

    def close(self) -> None:
        for dev in (self._d0, self._d1):
            try:
                dev.close()
            except Exception:
                pass
