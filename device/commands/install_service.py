"""``edgeface install-service``: install the gate as a systemd service (see docs/deployment.md)."""

from __future__ import annotations

NAME = "install-service"
HELP = "install the gate (or --admin: the admin page) as a systemd service (user, group, directories, config, unit)"
DESCRIPTION = (
    "Create the shared group edgeface, the system user and /etc/edgeface and /var/lib/edgeface (2770, shared "
    "with the admin page), write a config skeleton (never over an existing config), install edgeface-gate.service "
    "(or edgeface-admin.service with --admin) running this installation's edgeface, and run systemctl "
    "daemon-reload. Refuses when the unit's sandbox would hide this installation's Python, package or files "
    "(a venv under /tmp or a home directory), unless --relax-sandbox. Needs root unless --dry-run or --prefix "
    "is given."
)


def add_arguments(parser) -> None:
    from edgeface.device.install import DEFAULT_CONFIG, DEFAULT_UNIT_DIR, DEFAULT_USER

    parser.add_argument("--user", default=None, help=f"system user the service runs as (default: {DEFAULT_USER}; "
                        "with --admin: edgeface-admin)")
    parser.add_argument("--admin", action="store_true", help="install the admin web page's unit "
                        "(edgeface-admin.service, user edgeface-admin in the group edgeface) instead of the gate's")
    parser.add_argument("--relax-sandbox", action="store_true", help="where the unit's sandbox would hide this "
                        "installation (PrivateTmp, ProtectHome, ProtectSystem), lift exactly that in a drop-in and "
                        "say so, instead of refusing")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file the service reads (default: {DEFAULT_CONFIG})")
    parser.add_argument("--unit-dir", default=DEFAULT_UNIT_DIR, help=f"where the unit file goes (default: {DEFAULT_UNIT_DIR})")
    parser.add_argument("--prefix", default="/", help="root directory to install below (default: /); any other "
                        "prefix writes files only and skips useradd, chown and systemctl")
    parser.add_argument("--exec", dest="exec_path", default=None, metavar="PATH",
                        help="edgeface executable for ExecStart= (default: the one of this installation)")
    parser.add_argument("--dry-run", action="store_true", help="print every step without doing it")


def run(args) -> int:
    from edgeface.device.install import Plan, install

    plan = Plan(user=args.user, config=args.config, unit_dir=args.unit_dir, prefix=args.prefix,
                exec_cmd=[args.exec_path] if args.exec_path else None, admin=args.admin,
                relax_sandbox=args.relax_sandbox)
    return install(plan, dry_run=args.dry_run)
