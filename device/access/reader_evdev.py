"""A USB keyboard-wedge badge reader or a USB keypad, read through evdev (Linux input events).

Such readers "type" the badge number (or the keypad the PIN) and press Enter. ``evdev`` is imported in
:meth:`EvdevReader.open` only; the device is grabbed so the digits do not also reach a console. The key
handling is :class:`KeyEntry` (digits until Enter, Escape/Backspace clears, entries older than
``entry_timeout_s`` discarded), which knows nothing of evdev and is tested on its own.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable

from edgeface.access.credentials import PIN_RE, AccessDataError, badge_number

from .claim import Claim, ReaderFault

log = logging.getLogger(__name__)

#: evdev key names -> digit
DIGITS = {**{f"KEY_{d}": str(d) for d in range(10)}, **{f"KEY_KP{d}": str(d) for d in range(10)}}
ENTER = {"KEY_ENTER", "KEY_KPENTER"}
CLEAR = {"KEY_ESC", "KEY_BACKSPACE", "KEY_DELETE"}
MAX_DIGITS = 32


class KeyEntry:
    """Key presses (evdev key names) -> a claim of ``kind`` ("badge" or "pin") when Enter is pressed."""

    def __init__(self, kind: str = "badge", entry_timeout_s: float = 10.0, source: str = "keyboard") -> None:
        self.kind, self.timeout, self.source = kind, float(entry_timeout_s), source
        self._digits: list[str] = []
        self._started: float | None = None

    def key(self, name: str, t: float):
        """Feed one key-down; returns a Claim, a ReaderFault or None."""
        if self._started is not None and t - self._started > self.timeout:
            self._digits, self._started = [], None
        if name in DIGITS:
            if self._started is None:
                self._started = t
            if len(self._digits) < MAX_DIGITS:
                self._digits.append(DIGITS[name])
            return None
        if name in CLEAR:
            self._digits, self._started = [], None
            return None
        if name not in ENTER:
            return None
        text, self._digits, self._started = "".join(self._digits), [], None
        if not text:
            return None
        if self.kind == "pin":
            return Claim("pin", text, t, self.source) if PIN_RE.match(text) else ReaderFault(t, f"{self.source}: PIN of {len(text)} digits")
        try:
            return Claim("badge", badge_number(text), t, self.source)
        except AccessDataError as exc:
            return ReaderFault(t, f"{self.source}: {exc}")


class EvdevReader:
    """Reads key-downs from ``device`` on a daemon thread into a :class:`KeyEntry`; drain with :meth:`poll`."""

    def __init__(self, device: str, kind: str = "badge", entry_timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.device_path = str(device)
        self.name = f"keyboard:{self.device_path}"
        self.entry = KeyEntry(kind, entry_timeout_s, self.name)
        self.clock = clock
        self._out: collections.deque = collections.deque(maxlen=256)
        self._dev = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        from edgeface.errors import ConfigError

        try:
            import evdev
        except Exception as exc:
            raise ConfigError(f"[access.keyboard] needs python-evdev ({exc}): pip install evdev") from None
        try:
            self._dev = evdev.InputDevice(self.device_path)
            self._dev.grab()
        except OSError as exc:
            raise ConfigError(f"[access.keyboard] device {self.device_path}: {exc}") from None
        ecodes = evdev.ecodes

        def run():
            try:
                for ev in self._dev.read_loop():
                    if self._stop.is_set():
                        return
                    if ev.type == ecodes.EV_KEY and ev.value == 1:  # key down
                        name = ecodes.KEY.get(ev.code)
                        name = name[0] if isinstance(name, list) else name
                        item = self.entry.key(str(name), self.clock())
                        if item is not None:
                            self._out.append(item)
            except OSError as exc:
                if not self._stop.is_set():
                    log.error("%s stopped: %s", self.name, exc)
                    self._out.append(ReaderFault(self.clock(), f"{self.name}: reader lost: {exc}"))

        self._thread = threading.Thread(target=run, name="evdev-reader", daemon=True)
        self._thread.start()

    def poll(self, now: float | None = None) -> list:
        out = []
        while self._out:
            out.append(self._out.popleft())
        return out

    def close(self) -> None:
        self._stop.set()
        if self._dev is not None:
            try:
                self._dev.ungrab()
            except OSError:
                pass
            try:
                self._dev.close()
            except OSError:
                pass
