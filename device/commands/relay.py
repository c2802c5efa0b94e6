"""``edgeface relay test --config FILE [--pulse 1] [--yes]``: pulse the configured relay once, audited.

Asks for confirmation first (the door will unlock), unless ``--yes``. The pulse is the relay's own (monotonic,
capped at the hard maximum); the audit log of the config gets a ``relay_test`` row with its measured length.
"""

from __future__ import annotations

from pathlib import Path

NAME = "relay"
HELP = "test the configured door relay: one confirmed, audited pulse"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("test", help="pulse the relay of --config once")
    t.add_argument("--config", type=Path, required=True, help="gate config (TOML)")
    t.add_argument("--pulse", type=float, default=1.0, help="pulse length in seconds (default 1)")
    t.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")


def run(args, pin_factory=None) -> int:
    import sys
    import time

    from edgeface.config import HARD_MAX_PULSE_S, load_config
    from edgeface.errors import EdgefaceError

    from ..daemon import open_audit
    from ..events import Event
    from ..relay import open_relay

    cfg = load_config(args.config)
    if not 0 < args.pulse <= HARD_MAX_PULSE_S:
        raise EdgefaceError(f"--pulse must be in (0, {HARD_MAX_PULSE_S:g}] seconds")
    where = f"relay {cfg.relay.backend} pin {cfg.relay.pin} (active_{'high' if cfg.relay.active_high else 'low'})"
    if not args.yes:
        if not sys.stdin.isatty():
            raise EdgefaceError("relay test unlocks the door: confirm on a terminal, or pass --yes")
        answer = input(f"Pulse {where} for {args.pulse:g} s? The door will unlock. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("cancelled; nothing was energised")
            return 1
    relay = open_relay(cfg.relay, pin_factory=pin_factory)
    audit = open_audit(cfg)
    try:
        relay.pulse(args.pulse)
        deadline = time.monotonic() + args.pulse + 1.0
        while relay.is_active and time.monotonic() < deadline:
            time.sleep(0.005)
        on, off = relay.pulses[-1] if relay.pulses else (0.0, 0.0)
        held = off - on
        audit.record(Event("relay_test", 0.0, duration_s=held, detail=f"{where}, requested {args.pulse:g} s"))
    finally:
        relay.close()
        audit.close()
    print(f"pulsed {where}: {held:.3f} s; audited as relay_test in {cfg.audit.path}")
    return 0
