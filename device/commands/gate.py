"""``edgeface gate``: run the door daemon, or simulate it on a recording.

Nothing heavy is imported at module level (the CLI imports every command to build its parser), and nothing
on this path imports torch.
"""

from __future__ import annotations

NAME = "gate"
HELP = "run the door daemon (--config), or replay a video/image folder through it (--simulate)"
DESCRIPTION = """Run the face-recognition door daemon from a config file, or simulate it.

  edgeface gate --config /etc/edgeface/gate.toml
  edgeface gate --simulate clip.avi --bundle BUNDLE --gallery people.gallery [--config FILE] [--realtime]
                [--credentials claims.jsonl] [--clock 2026-12-05T10:00]

The daemon drives the relay off at start, on SIGTERM/SIGINT, on any error and at exit; SIGHUP reloads the
config and gallery (a bad new file keeps the old one). Config errors exit 78.
--simulate uses a simulated relay and prints one JSON object per event on stdout."""


def add_arguments(parser) -> None:
    parser.add_argument("--config", metavar="FILE", help="gate config (TOML); required unless --simulate")
    parser.add_argument("--simulate", metavar="VIDEO_OR_DIR", help="replay a video file or image folder instead of a camera")
    parser.add_argument("--bundle", metavar="BUNDLE", help="model bundle (simulation; overrides the config's)")
    parser.add_argument("--gallery", metavar="GALLERY", help="gallery file (simulation; overrides the config's)")
    parser.add_argument("--model", metavar="KEY", help="model of the bundle to run (onnx_fp32, onnx_int8, ...; simulation)")
    parser.add_argument("--threshold", type=float, metavar="COS",
                        help="cosine threshold for the simulation (default: the config's, else the bundle's calibrated one)")
    parser.add_argument("--audit-db", metavar="DB",
                        help="simulation: also record the events in this SQLite audit database, as the daemon does")
    parser.add_argument("--credentials", metavar="FILE.jsonl",
                        help='simulation: badge/PIN claims, one per line: {"t": 3.0, "badge": "0012345"} or {"t": 3.0, "pin": "4711"}')
    parser.add_argument("--clock", metavar="YYYY-MM-DDTHH:MM",
                        help="simulation: the wall clock at the start of the replay, local to [access] timezone (schedules)")
    parser.add_argument("--realtime", action="store_true",
                        help="simulation: pace the replay at its frame rate on the real clock (default: video time, as fast as possible)")


def run(args) -> int:
    from edgeface.errors import ConfigError

    if args.simulate:
        import sys

        from edgeface.device.simulate import run_simulation, simulation_config

        cfg = simulation_config(args.simulate, args.bundle, args.gallery, args.config, args.model)
        wall_start = None
        if args.clock:
            from edgeface.access.schedule import check_timezone, parse_moment

            try:
                wall_start = parse_moment(args.clock, check_timezone(cfg.access.timezone), what="--clock")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        audit = None
        if args.audit_db:
            from edgeface.device.audit import AuditLog

            audit = AuditLog(args.audit_db)
        gate = run_simulation(cfg, threshold=args.threshold, realtime=args.realtime, json_out=sys.stdout,
                              log_out=None, audit=audit, credentials=args.credentials, wall_start=wall_start)
        return gate.exit_code
    if args.config is None:
        raise ConfigError("edgeface gate needs --config FILE (or --simulate VIDEO_OR_DIR --bundle B --gallery G)")
    for flag in ("bundle", "gallery", "model", "threshold", "audit_db", "credentials", "clock"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag.replace('_', '-')} is for --simulate; the daemon takes everything from --config")
    if args.realtime:
        raise ConfigError("--realtime is for --simulate")
    from edgeface.device.daemon import run_daemon

    return run_daemon(args.config)
