"""Optional granted/denied feedback: an LED or buzzer on a gpiozero ``DigitalOutputDevice`` each.

Granted lights ``granted_pin`` once for ``on_s``; denied (and unknown) sounds ``denied_pin`` three short times.
Both use gpiozero's own background ``blink``, so nothing here blocks the gate loop. These outputs never drive
the door: only the relay does.
"""

from __future__ import annotations

#: decision kinds that sound the denied output
DENIED_KINDS = ("denied", "unknown", "lockout")


class Feedback:
    def __init__(self, cfg, pin_factory=None) -> None:
        from gpiozero import DigitalOutputDevice

        self.on_s = float(cfg.on_s)
        self.outputs: dict[str, object] = {}
        try:
            for name, pin in (("granted", cfg.granted_pin), ("denied", cfg.denied_pin)):
                if pin is not None:
                    self.outputs[name] = DigitalOutputDevice(pin, active_high=cfg.active_high, initial_value=False,
                                                             pin_factory=pin_factory)
        except BaseException:
            self.close()
            raise

    def show(self, kind: str) -> None:
        try:
            if kind == "granted" and "granted" in self.outputs:
                self.outputs["granted"].blink(on_time=self.on_s, off_time=0.01, n=1, background=True)
            elif kind in DENIED_KINDS and "denied" in self.outputs:
                self.outputs["denied"].blink(on_time=0.1, off_time=0.1, n=3, background=True)
        except Exception:  # feedback is a courtesy: it must never stop the door loop
            pass

    def close(self) -> None:
        for dev in self.outputs.values():
            try:
                dev.close()
            except Exception:
                pass
