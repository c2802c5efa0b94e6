"""gpiozero ``OutputDevice`` as a relay driver (Raspberry Pi; gpiozero's MockFactory in tests and --simulate).

gpiozero is imported inside the constructor so ``edgeface.device`` imports on machines without it.
``initial_value=False`` means the line is set to the inactive level in the same call that claims it.
"""

from __future__ import annotations

from .relay import RelayError


class GpiozeroDriver:
    def __init__(self, pin, active_high: bool = True, pin_factory=None):
        try:
            from gpiozero import OutputDevice
        except Exception as exc:
            raise RelayError(f"gpiozero is not installed ({exc}): pip install gpiozero (and lgpio on a Pi 5)") from None
        try:
            self.device = OutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
        except Exception as exc:
            raise RelayError(f"cannot claim GPIO {pin} through gpiozero: {type(exc).__name__}: {exc}") from None
        #: kept after close (gpiozero drops device.pin then), so tests can read a MockPin's recorded states
        self.gpio_pin = self.device.pin

    def set(self, active: bool) -> None:
        if active:
            self.device.on()
        else:
            self.device.off()

    def close(self) -> None:
        try:
            self.device.off()
        finally:
            self.device.close()
