"""Are the config's GPIO lines usable on this platform? Checked without claiming or energising any line.

* ``gpiozero`` / ``mock``: the relay pin must name a GPIO of the Raspberry Pi 40-pin header (``17``,
  ``"GPIO17"``, ``"BCM17"``, ``"BOARD11"``, ``"J8:11"``), resolved by gpiozero's own board table (through its
  ``MockFactory``, which touches no hardware); ``"seventeen"``, ``999`` or a power pin is refused.
* ``jetson``: a BOARD number of a GPIO on the Jetson 40-pin header.
* :func:`check_gpio` does the same for every other line of the config (the ``[access]`` door inputs, the
  feedback outputs, the Wiegand reader: gpiozero pins), and requires each GPIO to be used **once**: ``17`` and
  ``"GPIO17"`` and ``"BOARD11"`` are one line. With ``check_library``, the library the lines need must load:
  gpiozero with a pin factory for this board (the ``gpiozero`` relay backend and every ``[access]`` line; the
  ``mock`` backend puts them on gpiozero's MockFactory), Jetson.GPIO for the ``jetson`` relay.

Every problem is a :class:`~edgeface.errors.ConfigError` (exit 78), for ``validate-config`` and the gate alike.
"""

from __future__ import annotations

from edgeface.errors import ConfigError

#: GPIO-capable BOARD pins of the Jetson 40-pin header (Jetson.GPIO's BOARD numbering)
JETSON_GPIO_BOARD_PINS = frozenset({7, 11, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 26, 29, 31, 32, 33, 35, 36, 37,
                                    38, 40})


def _board():
    try:
        from gpiozero.pins.mock import MockFactory
    except Exception as exc:
        raise ConfigError(f"GPIO pins need gpiozero ({exc}): pip install gpiozero") from None
    return MockFactory().board_info


def _gpio(board, pin, what: str) -> str:
    if isinstance(pin, bool):
        raise ConfigError(f"{what} = {pin!r} is not a GPIO pin")
    try:
        return str(board.to_gpio(pin))
    except Exception as exc:
        raise ConfigError(f"{what} = {pin!r} is not a GPIO pin of the Raspberry Pi header: {exc} "
                          "(use a BCM number such as 17, or 'GPIO17' / 'BOARD11')") from None


def access_pins(cfg) -> list[tuple[str, object]]:
    """(config key, pin) of every GPIO line ``[access]`` uses (gpiozero pins)."""
    a = cfg.access
    out = [(f"access.door.{k}", getattr(a.door, k)) for k in ("contact_pin", "exit_pin", "tamper_pin")]
    out += [(f"access.feedback.{k}", getattr(a.feedback, k)) for k in ("granted_pin", "denied_pin")]
    if a.wiegand is not None:
        out += [("access.wiegand.d0_pin", a.wiegand.d0_pin), ("access.wiegand.d1_pin", a.wiegand.d1_pin)]
    return [(k, v) for k, v in out if v is not None]


def check_gpio(cfg, check_library: bool = True, warnings: list[str] | None = None) -> str:
    """Every GPIO line of ``cfg`` (a GateConfig) exists and is used once; with ``check_library``, the GPIO
    library they need loads here (when one is installed but cannot open the chip now, e.g. permissions not yet
    applied at boot, that is a warning appended to ``warnings``: the gate then exits 1 and systemd retries).
    Returns the relay's description (:func:`check_relay_config`), or ConfigError."""
    relay = check_relay_config(cfg.relay)
    pins = access_pins(cfg)
    if not pins and cfg.relay.backend == "jetson":
        if check_library:
            _need_jetson_gpio()
        return relay
    board = _board()
    relay_pin = f"BOARD{int(cfg.relay.pin)}" if cfg.relay.backend == "jetson" else cfg.relay.pin
    owners: dict[str, str] = {}
    for key, pin in [("relay.pin", relay_pin), *pins]:
        gpio = _gpio(board, pin, key)
        if gpio in owners:
            raise ConfigError(f"{key} = {pin!r} is {gpio}, which {owners[gpio]} already uses: every GPIO "
                              "line does one thing (give each its own pin)")
        owners[gpio] = key
    backend = cfg.relay.backend
    if check_library:
        if backend == "jetson":
            _need_jetson_gpio()
        keys = (["relay.pin"] if backend == "gpiozero" else []) + ([k for k, _ in pins] if backend != "mock" else [])
        if keys:
            _need_pin_factory(keys, warnings)
    return relay


#: the GPIO libraries gpiozero can use (its own native factory needs a Raspberry Pi's /proc entries)
GPIO_LIBRARIES = ("lgpio", "RPi.GPIO", "pigpio")


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _need_pin_factory(keys: list[str], notes: list[str] | None = None) -> None:
    """gpiozero's default pin factory (lgpio, RPi.GPIO, pigpio or its native one) must load on this board: the
    lines are claimed through it at start. Loading a factory opens the GPIO chip; it claims no line. No GPIO
    library installed at all is a ConfigError (restarting will not install one); one that is installed but
    fails now is a warning."""
    import warnings

    try:
        from gpiozero import Device
    except Exception as exc:
        raise ConfigError(f"{', '.join(keys)} need gpiozero ({exc}): pip install gpiozero lgpio") from None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            Device.ensure_pin_factory()
            return
        except Exception as exc:
            why = "; ".join(str(w.message) for w in seen) or f"{type(exc).__name__}: {exc}"
    if any(_installed(m) for m in GPIO_LIBRARIES):
        if notes is not None:
            notes.append(f"{', '.join(keys)}: the GPIO library cannot open the chip now ({why}); the gate will "
                         "retry at start")
        return
    raise ConfigError(f"{', '.join(keys)}: no GPIO library works on this machine ({why}). On a Raspberry Pi "
                      "install lgpio (pip install lgpio); to run without GPIO hardware set [relay] backend = "
                      "\"mock\"")


def _need_jetson_gpio() -> None:
    import importlib.util

    try:
        found = importlib.util.find_spec("Jetson.GPIO") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError("relay.backend = \"jetson\" needs Jetson.GPIO (pip install Jetson.GPIO, on a Jetson)")


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
        name = str(gpio)  # gpiozero 2 names it ("GPIO17"); older versions gave the number
        return f"{relay.backend} {name if name.startswith('GPIO') else 'GPIO' + name}"
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
