"""Fake ``Jetson.GPIO`` with the real module's constants, function signatures and error messages for the
calls edgeface makes. Instead of sysfs it keeps each channel's level and records every change in
``history`` as ``(time.monotonic(), channel, level)``. ``BOARD`` channels are the Jetson Nano 40-pin header's
GPIOs; ``fail_setup`` makes the next ``setup`` raise (a line held by another process)."""

from __future__ import annotations

import time
import warnings

BOARD = 10
BCM = 11
TEGRA_SOC = 1000
CVM = 1001

_PUD_OFFSET = 20
PUD_OFF = 0 + _PUD_OFFSET
PUD_DOWN = 1 + _PUD_OFFSET
PUD_UP = 2 + _PUD_OFFSET

HIGH = 1
LOW = 0

UNKNOWN = -1
OUT = 0
IN = 1

_BOARD_GPIOS = {7, 11, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 26, 29, 31, 32, 33, 35, 36, 37, 38, 40}
_BCM_GPIOS = {4, 17, 18, 27, 22, 23, 24, 10, 9, 25, 11, 8, 7, 5, 6, 12, 13, 19, 16, 26, 20, 21}

_gpio_mode = None
_gpio_warnings = True
_configuration: dict = {}
levels: dict = {}
history: list[tuple[float, object, int]] = []
fail_setup: Exception | None = None


def _reset_for_tests() -> None:
    global _gpio_mode, _gpio_warnings, fail_setup
    _gpio_mode = None
    _gpio_warnings = True
    fail_setup = None
    _configuration.clear()
    levels.clear()
    history.clear()


def _validate_mode_set():
    if _gpio_mode is None:
        raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD), GPIO.setmode(GPIO.BCM), "
                           "GPIO.setmode(GPIO.TEGRA_SOC) or GPIO.setmode(GPIO.CVM)")


def _channel(channel):
    _validate_mode_set()
    valid = _BOARD_GPIOS if _gpio_mode == BOARD else _BCM_GPIOS
    if channel not in valid:
        raise ValueError("Channel %s is invalid" % str(channel))
    return channel


def _write(channel, value):
    value = int(bool(value))
    if levels.get(channel) != value:
        levels[channel] = value
        history.append((time.monotonic(), channel, value))


def setwarnings(state):
    global _gpio_warnings
    _gpio_warnings = bool(state)


def setmode(mode):
    global _gpio_mode
    if _gpio_mode and mode != _gpio_mode:
        raise ValueError("A different mode has already been set!")
    if mode not in (BOARD, BCM, CVM, TEGRA_SOC):
        raise ValueError("An invalid mode was passed to setmode()!")
    _gpio_mode = mode


def getmode():
    return _gpio_mode


def setup(channels, direction, pull_up_down=PUD_OFF, initial=None):
    global fail_setup
    chans = [_channel(c) for c in (channels if isinstance(channels, (list, tuple)) else [channels])]
    if direction not in (OUT, IN):
        raise ValueError("An invalid direction was passed to setup()")
    if direction == OUT and pull_up_down != PUD_OFF:
        raise ValueError("pull_up_down parameter is not valid for outputs")
    if fail_setup is not None:
        exc, fail_setup = fail_setup, None
        raise exc
    for ch in chans:
        if _gpio_warnings and ch in _configuration:
            warnings.warn("This channel is already in use, continuing anyway. "
                          "Use GPIO.setwarnings(False) to disable warnings", RuntimeWarning)
        if direction == OUT:
            if initial is not None:
                _write(ch, initial)
        elif initial is not None:
            raise ValueError("initial parameter is not valid for inputs")
        _configuration[ch] = direction


def output(channels, values):
    chans = [_channel(c) for c in (channels if isinstance(channels, (list, tuple)) else [channels])]
    vals = list(values) if isinstance(values, (list, tuple)) else [values] * len(chans)
    if len(vals) != len(chans):
        raise RuntimeError("Number of values != number of channels")
    if any(_configuration.get(ch) != OUT for ch in chans):
        raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
    for ch, v in zip(chans, vals):
        _write(ch, v)


def input(channel):
    ch = _channel(channel)
    if _configuration.get(ch) not in (IN, OUT):
        raise RuntimeError("You must setup() the GPIO channel first")
    return levels.get(ch, LOW)


def cleanup(channel=None):
    global _gpio_mode
    if _gpio_mode is None:
        if _gpio_warnings:
            warnings.warn("No channels have been set up yet - nothing to clean up! Try cleaning up at the end "
                          "of your program instead!", RuntimeWarning)
        return
    if channel is None:
        _configuration.clear()
        _gpio_mode = None
        return
    for ch in (channel if isinstance(channel, (list, tuple)) else [channel]):
        _configuration.pop(_channel(ch), None)
