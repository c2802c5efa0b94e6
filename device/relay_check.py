"""Is a ``[relay]`` section usable on this platform? Checked without claiming or energising any line.

* ``gpiozero`` / ``mock``: the pin must name a GPIO of the Raspberry Pi 40-pin header (``17``, ``"GPIO17"``,
  ``"BCM17"``, ``"BOARD11"``, ``"J8:11"``), resolved by gpiozero's own board table (through its
  ``MockFactory``, which touches no hardware); ``"seventeen"`` or a power pin is refused.
* ``jetson``: a BOARD number of a GPIO on the Jetson 40-pin header.
"""

from __future__ import annotations

from edgeface.errors import ConfigError

#: GPIO-capable BOARD pins of the Jetson 40-pin header (Jetson.GPIO's BOARD numbering)
JETSON_GPIO_BOARD_PINS = frozenset({7, 11, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 26, 29, 31, 32, 33, 35, 36, 37,
                                    38, 40})


def check_relay_config(relay) -> str:
    """A short description of the resolved pin, or ConfigError."""
    pin = relay.pin
    if relay.backend in ("gpiozero", "mock"):
        try:
            from gpiozero.pins.mock import MockFactory
        except Exception as exc:
            raise ConfigError(f"relay.backend = {relay.backend!r} needs gpiozero ({exc}): pip install gpiozero") from None
        try:
            gpio = MockFactory().board_info.to_gpio(pin)
        except Exception as exc:
            raise ConfigError(f"relay.pin = {pin!r} is not a GPIO pin of the Raspberry Pi header: {exc} "
                              "(use a BCM number such as 17, or 'GPIO17' / 'BOARD11')") from None
        return f"{relay.backend} GPIO{gpio}"
    if relay.backend == "jetson":
        try:
            number = int(pin)
        except (TypeError, ValueError):
            number = None
        if number not in JETSON_GPIO_BOARD_PINS or isinstance(pin, bool):
            raise ConfigError(f"relay.pin = {pin!r} is not a GPIO of the Jetson 40-pin header (BOARD numbers: "
                              f"{', '.join(map(str, sorted(JETSON_GPIO_BOARD_PINS)))})")
        return f"jetson BOARD{number}"
    raise ConfigError(f"relay.backend {relay.backend!r} is unknown")
