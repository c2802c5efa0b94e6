"""The door relay: energised only to unlock, for a bounded time on the monotonic clock, off on everything else.

:class:`Relay` holds the safety logic once, over a tiny driver (``set(active: bool)``, ``close()``), so the
gpiozero and Jetson.GPIO adapters stay a few lines each:

* the relay is driven off at construction, by ``off()``, by ``close()`` and when a driver call fails;
* ``pulse(seconds)`` energises now and the relay's timer thread de-energises after ``min(seconds, hard_max_s)``
  (``hard_max_s`` defaults to :data:`edgeface.config.HARD_MAX_PULSE_S`), timed with ``threading.Condition``
  waits, which run on the monotonic clock (wall-clock jumps cannot stretch a pulse);
* a pulse while one is active extends it to ``now + seconds``, but never past ``first energise + hard_max_s``:
  a stream of grants cannot hold the door open indefinitely. A pulse never shortens the current one.

The timer thread is a daemon: if the process dies, the OS releases the GPIO line (gpiozero/lgpio, Jetson.GPIO
free it at exit) and the caller's ``close()`` in a ``finally`` drives it off first on every orderly exit.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Protocol

from edgeface.config import HARD_MAX_PULSE_S
from edgeface.errors import EdgefaceError

log = logging.getLogger(__name__)


class RelayError(EdgefaceError):
    """The relay could not be set up or driven (GPIO library missing, pin busy or invalid)."""


class RelayDriver(Protocol):
    def set(self, active: bool) -> None: ...

    def close(self) -> None: ...


class Relay:
    """Fail-secure pulse logic over a :class:`RelayDriver`. Thread-safe. ``pulses`` keeps the last 100
    completed pulses as ``(t_on, t_off)`` monotonic times (what the gate reports as the unlock duration)."""

    def __init__(self, driver: RelayDriver, hard_max_s: float = HARD_MAX_PULSE_S, name: str = "relay"):
        if not 0 < hard_max_s <= HARD_MAX_PULSE_S:
            raise ValueError(f"hard_max_s must be in (0, {HARD_MAX_PULSE_S}]")
        self.driver = driver
        self.hard_max_s = float(hard_max_s)
        self.name = name
        self.pulses: collections.deque[tuple[float, float]] = collections.deque(maxlen=100)
        self.faults = 0
        self._cond = threading.Condition(threading.RLock())
        self._active = False
        self._closed = False
        self._on_at = 0.0
        self._end = 0.0
        self._offs = 0  # off() calls so far: a pulse interrupted by one (a signal handler) must not stay on
        try:
            self._drive(False)  # forced off at construction, whatever state the pin was left in
        except RelayError:
            try:
                driver.close()
            except Exception:
                pass
            raise
        # one timer thread for the relay's whole life: no thread start/exit to race with a new pulse
        self._timer = threading.Thread(target=self._run_timer, name=f"{name}-timer", daemon=True)
        self._timer.start()

    @property
    def is_active(self) -> bool:
        with self._cond:
            return self._active

    @property
    def pin(self):
        """The gpiozero pin object (a ``MockPin`` under the mock backend, still readable after close) or None
        for other drivers."""
        return getattr(self.driver, "gpio_pin", None)

    def pulse(self, seconds: float) -> float:
        """Energise now (or extend the current pulse) and return how long from now the relay will stay on."""
        with self._cond:
            if self._closed:
                raise RelayError(f"{self.name} is closed")
            seconds = float(seconds)
            if not seconds > 0:  # also rejects NaN
                raise ValueError(f"pulse length must be positive, got {seconds!r}")
            now = time.monotonic()
            if not self._active:
                offs = self._offs
                try:
                    self._drive(True)
                except RelayError:
                    self._safe_off()
                    raise
                if self._offs != offs:  # off() ran in between (a signal handler on this thread): it wins
                    self._safe_off()
                    return 0.0
                # the pulse counts from the energise itself: a stall in the GPIO write (a loaded CPU) must not
                # eat into the time the door is open, nor the hard maximum be measured from before it
                now = time.monotonic()
                self._active = True
                self._on_at = now
                self._end = now + min(seconds, self.hard_max_s)
            else:
                self._end = min(max(self._end, now + seconds), self._on_at + self.hard_max_s)
            self._cond.notify_all()  # the timer thread re-reads the end
            return self._end - now

    def off(self) -> None:
        """De-energise now (idempotent). Never raises: a failure is logged and counted in ``faults``."""
        with self._cond:
            self._offs += 1
            self._safe_off()
            self._cond.notify_all()

    def close(self) -> None:
        """Off, then release the GPIO line. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._offs += 1
            self._safe_off()
            self._closed = True
            self._cond.notify_all()
            try:
                self.driver.close()
            except Exception as exc:
                self.faults += 1
                log.error("%s: releasing the GPIO failed: %s", self.name, exc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- internals ------------------------------------------------------------------------------------------
    def _drive(self, active: bool) -> None:
        try:
            self.driver.set(active)
        except Exception as exc:
            self.faults += 1
            raise RelayError(f"{self.name}: cannot drive the relay {'on' if active else 'off'}: {exc}") from exc

    def _safe_off(self) -> None:
        was_active = self._active
        self._active = False
        for attempt in range(3):
            try:
                self._drive(False)
                break
            except RelayError as exc:
                log.critical("%s (attempt %d of 3)", exc, attempt + 1)
        if was_active:
            self.pulses.append((self._on_at, time.monotonic()))

    def _run_timer(self) -> None:
        """Sleeps until a pulse is due to end (or forever while off) and switches it off; exits on close."""
        with self._cond:
            while not self._closed:
                if not self._active:
                    self._cond.wait()
                    continue
                remaining = self._end - time.monotonic()
                if remaining <= 0:
                    self._safe_off()
                else:
                    self._cond.wait(remaining)


def simulated_pins():
    """gpiozero's MockFactory: the simulated board of the ``mock`` backend (the relay and every ``[access]`` line
    of one gate share one)."""
    from gpiozero.pins.mock import MockFactory

    return MockFactory()


def open_relay(cfg, pin_factory=None) -> Relay:
    """Build the relay an :class:`edgeface.config.RelayConfig` describes, driven off.

    ``backend`` "gpiozero" uses ``pin_factory`` (gpiozero's default factory when None), "mock" uses
    gpiozero's ``MockFactory`` (real gpiozero code, simulated pins: what --simulate and the tests use),
    "jetson" uses Jetson.GPIO. Any failure to get the GPIO is a :class:`RelayError`; nothing is energised.
    """
    if cfg.backend in ("gpiozero", "mock"):
        from .relay_gpiozero import GpiozeroDriver

        if cfg.backend == "mock" and pin_factory is None:
            pin_factory = simulated_pins()
        driver = GpiozeroDriver(cfg.pin, active_high=cfg.active_high, pin_factory=pin_factory)
    elif cfg.backend == "jetson":
        from .relay_jetson import JetsonDriver

        driver = JetsonDriver(cfg.pin, active_high=cfg.active_high)
    else:
        raise RelayError(f"unknown relay backend {cfg.backend!r}")
    return Relay(driver, name=f"relay[{cfg.backend}:{cfg.pin}]")
