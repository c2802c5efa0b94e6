"""``edgeface validate-config FILE``: the gate's own pre-flight on a config; exit 78 (EX_CONFIG) on error.

It runs :func:`edgeface.device.preflight.preflight`, the function the gate runs at start: the config, the
bundle (integrity, every sha256, degraded model), the threshold, the gallery and its fingerprint, the detector
file, the relay backend and pin. Nothing is energised and no camera is opened.
"""

from __future__ import annotations

from pathlib import Path

NAME = "validate-config"
HELP = "check a gate config the way the gate starts: bundle, threshold, gallery, relay pin (exit 78 on error)"


def add_arguments(p) -> None:
    p.add_argument("file", type=Path)


def run(args) -> int:
    import sys

    from edgeface.config import load_config

    from ..preflight import preflight

    cfg = load_config(args.file)  # ConfigError -> exit 78 in edgeface.cli
    checked = preflight(cfg)  # PreflightError (a ConfigError) -> 78
    for warning in checked.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    pin = str(cfg.relay.pin)
    named = "" if checked.relay.endswith(pin) else f" (pin {pin!r})"  # "mock GPIO17 (pin 'BOARD11')"
    print(f"{args.file}: ok (camera {cfg.camera.source!r}, relay {checked.relay}{named}, "
          f"model {checked.key} of {cfg.model.bundle}, thresholds: {checked.thresholds.describe()}, "
          f"{len(checked.gallery)} enrolled)")
    return 0
