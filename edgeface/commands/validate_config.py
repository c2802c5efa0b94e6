"""``edgeface validate-config FILE``: check a gate config; exit 78 (EX_CONFIG) on error."""

from __future__ import annotations

from pathlib import Path

from ..config import load_config

NAME = "validate-config"
HELP = "validate a gate config file (exit 78 on error)"


def add_arguments(p) -> None:
    p.add_argument("file", type=Path)


def run(args) -> int:
    cfg = load_config(args.file)  # ConfigError -> exit 78 in edgeface.cli
    print(f"{args.file}: ok (camera {cfg.camera.source!r}, relay {cfg.relay.backend} pin {cfg.relay.pin}, "
          f"bundle {cfg.model.bundle})")
    return 0
