"""Jetson.GPIO as a relay driver (NVIDIA Jetson boards; pin numbers in BOARD mode, like the 40-pin header).

Jetson.GPIO raises a plain ``Exception`` at import time off a Jetson ("Could not determine Jetson model"),
so every failure to import or set up becomes a :class:`RelayError`. The pin is set up as an output with the
inactive level as its initial value, so it is never energised while being claimed.
"""

from __future__ import annotations

from .relay import RelayError


class JetsonDriver:
    def __init__(self, pin, active_high: bool = True):
        try:
            import Jetson.GPIO as GPIO
        except Exception as exc:
            raise RelayError(f"Jetson.GPIO is not available ({exc}): pip install Jetson.GPIO, on a Jetson") from None
        self.GPIO = GPIO
        self.pin = pin
        self.active = GPIO.HIGH if active_high else GPIO.LOW
        self.inactive = GPIO.LOW if active_high else GPIO.HIGH
        try:
            GPIO.setwarnings(False)
            mode = GPIO.getmode()
            if mode is None:
                GPIO.setmode(GPIO.BOARD)
            elif mode != GPIO.BOARD:
                raise RelayError(f"Jetson.GPIO is already in mode {mode}, edgeface pins are BOARD numbers")
            GPIO.setup(pin, GPIO.OUT, initial=self.inactive)
        except RelayError:
            raise
        except Exception as exc:
            raise RelayError(f"cannot set up Jetson GPIO pin {pin}: {type(exc).__name__}: {exc}") from None

    def set(self, active: bool) -> None:
        self.GPIO.output(self.pin, self.active if active else self.inactive)

    def close(self) -> None:
        try:
            self.GPIO.output(self.pin, self.inactive)
        finally:
            self.GPIO.cleanup(self.pin)
