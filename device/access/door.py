"""The door's own inputs: a door contact (reed switch), a request-to-exit button and a tamper switch.

Each is a gpiozero ``DigitalInputDevice`` (``pull_up`` from the config) read as a *logical* state ("door open",
"pressed", "tampered") with a configurable active level, and debounced here on the monotonic clock: a new level
counts once it has held for ``debounce_s`` (one rule for every pin factory; gpiozero's MockPin ignores
``bounce_time``). :meth:`DoorMonitor.poll`, called from the gate loop, turns accepted changes into events:

* ``door_opened`` / ``door_closed``;
* ``door_forced``: the door opened while the relay was off and no pulse ended within ``forced_grace_s``;
* ``door_held_open``: open for longer than ``held_open_s`` (once per opening);
* ``exit_request``: the exit button was pressed; the gate pulses the relay for it and audits it;
* ``tamper`` (and ``tamper_cleared``).

The forced-open rule reads the relay itself (``is_active`` and its last completed pulse, both monotonic), so
it needs no bookkeeping from the gate and counts every pulse, by a face, a badge or the exit button.
"""

from __future__ import annotations

import time
from typing import Callable


class DebouncedInput:
    """One input as a logical state with a software debounce."""

    def __init__(self, pin, pull_up: bool, active_high: bool, debounce_s: float, pin_factory=None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from gpiozero import DigitalInputDevice

        self.pull_up, self.active_high, self.debounce_s, self.clock = bool(pull_up), bool(active_high), float(debounce_s), clock
        self.device = DigitalInputDevice(pin, pull_up=self.pull_up, pin_factory=pin_factory)
        self.state = self._raw()
        self._raw_state, self._since = self.state, clock()
        self.device.when_activated = self._edge
        self.device.when_deactivated = self._edge

    def _raw(self) -> bool:
        # gpiozero's value is 1 for a low pin when pulled up: undo that, then apply the configured active level
        pin_high = bool(self.device.value) != self.pull_up
        return pin_high == self.active_high

    def _edge(self) -> None:
        raw = self._raw()
        if raw != self._raw_state:
            self._raw_state, self._since = raw, self.clock()

    def poll(self, now: float) -> bool | None:
        """The new logical state if it changed and has held for ``debounce_s``, else None."""
        self._edge()  # also catch a level that changed without a callback
        if self._raw_state != self.state and now - self._since >= self.debounce_s:
            self.state = self._raw_state
            return self.state
        return None

    def close(self) -> None:
        self.device.close()


class DoorMonitor:
    def __init__(self, cfg, relay, pin_factory=None, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.relay, self.clock = cfg, relay, clock
        self.inputs: dict[str, DebouncedInput] = {}
        try:
            for name, pin, high in (("contact", cfg.contact_pin, cfg.contact_open_high),
                                    ("exit", cfg.exit_pin, cfg.exit_pressed_high),
                                    ("tamper", cfg.tamper_pin, cfg.tamper_high)):
                if pin is not None:
                    self.inputs[name] = DebouncedInput(pin, cfg.pull_up, high, cfg.debounce_s, pin_factory, clock)
        except BaseException:
            self.close()
            raise
        contact = self.inputs.get("contact")
        self.opened_at: float | None = clock() if contact is not None and contact.state else None
        self._held_reported = False

    @property
    def door_open(self) -> bool | None:
        c = self.inputs.get("contact")
        return None if c is None else c.state

    def _authorised(self, now: float) -> bool:
        if self.relay.is_active:
            return True
        pulses = self.relay.pulses
        return bool(pulses) and now - pulses[-1][1] <= self.cfg.forced_grace_s

    def poll(self, now: float | None = None) -> list[tuple[str, str]]:
        """(kind, detail) events since the last call, in the order above."""
        now = self.clock() if now is None else now
        out: list[tuple[str, str]] = []
        exit_btn = self.inputs.get("exit")
        if exit_btn is not None and exit_btn.poll(now) is True:
            out.append(("exit_request", "request-to-exit button"))
        contact = self.inputs.get("contact")
        change = None if contact is None else contact.poll(now)
        if change is True:
            self.opened_at, self._held_reported = now, False
            out.append(("door_opened", "door contact"))
            if not self._authorised(now):
                out.append(("door_forced", f"opened with no unlock within the last pulse + {self.cfg.forced_grace_s:g} s"))
        elif change is False:
            held = None if self.opened_at is None else now - self.opened_at
            self.opened_at = None
            out.append(("door_closed", "door contact" if held is None else f"after {held:.1f} s open"))
        if self.opened_at is not None and not self._held_reported and now - self.opened_at >= self.cfg.held_open_s:
            self._held_reported = True
            out.append(("door_held_open", f"open for more than {self.cfg.held_open_s:g} s"))
        tamper = self.inputs.get("tamper")
        t_change = None if tamper is None else tamper.poll(now)
        if t_change is True:
            out.append(("tamper", "tamper switch triggered"))
        elif t_change is False:
            out.append(("tamper_cleared", "tamper switch restored"))
        return out

    def close(self) -> None:
        for inp in self.inputs.values():
            try:
                inp.close()
            except Exception:
                pass
