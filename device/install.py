"""Install the gate as a systemd service: user, directories, config skeleton, unit file, daemon-reload.

The installation is a list of :class:`Step` objects built first and then either printed (``--dry-run``) or
printed and carried out, so the dry run shows exactly what a real run does. With a ``prefix`` other than ``/``
(staging a root file system, or a test's tmp dir) files are written below the prefix and the steps that act on
the running system (useradd, chown, systemctl) are printed as skipped.

Before any step, the unit's sandbox is checked against this installation (:mod:`edgeface.device.sandbox`):
a Python, venv, package or data path the service could not see (PrivateTmp, ProtectHome) or write
(ProtectSystem=strict) is refused with the fix, or, with ``relax_sandbox``, lifted in a drop-in
(``<unit>.d/50-install-sandbox.conf``) and said so. ``admin=True`` installs the admin page's unit instead
(its own user ``edgeface-admin``, member of the shared group).

Sharing (docs/deployment.md, 3a): the gate's user and the admin page's user share the gallery and the audit
database through the group ``edgeface`` (the gate user's group): ``/var/lib/edgeface`` is 2770
edgeface:edgeface (setgid, so new files get the group), the gallery and its lock 0660, the audit database
0640, never any world bits. The writers keep those modes when they replace the files.

The unit file and the example config are package data (``edgeface.device/data``, links to ``systemd/`` in the
source tree, copied into wheels), so a non-editable install finds them too.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePosixPath

from edgeface.errors import EdgefaceError

from .sandbox import FIX as SANDBOX_FIX

UNIT_NAME = "edgeface-gate.service"
ADMIN_UNIT_NAME = "edgeface-admin.service"
ADMIN_USER = "edgeface-admin"
ADMIN_STATE_DIR = "/var/lib/edgeface-admin"
#: the group the gate's user and the admin page's user share the gallery and the audit database through
SHARED_GROUP = "edgeface"
STATE_DIR_MODE = 0o2770
DROPIN_NAME = "50-install-sandbox.conf"
EXAMPLE_CONFIG = "gate.example.toml"
DEFAULT_USER = "edgeface"
DEFAULT_CONFIG = "/etc/edgeface/gate.toml"
DEFAULT_UNIT_DIR = "/etc/systemd/system"
STATE_DIR = "/var/lib/edgeface"
#: groups that own /dev/gpiochip* and /dev/video* on Raspberry Pi OS (and gpio on a Jetson after Jetson.GPIO setup)
DEVICE_GROUPS = ("gpio", "video")
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")


def refusal(unit: str, problems: list[str], width: int = 100) -> str:
    """The sandbox refusal as a person reads it: one problem per item, then the fix, wrapped to ``width``."""
    def wrap(text: str, first: str, rest: str) -> str:
        return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False,
                             break_long_words=False)

    items = [wrap(p, "  - ", "    ") for p in problems]
    return "\n".join([f"{unit} could not start as installed:", *items, wrap("Fix: " + SANDBOX_FIX, "", "  ")])


class InstallError(EdgefaceError):
    """The service cannot be installed as asked (not root, bad user name, relative config path...)."""


def read_data(name: str) -> str:
    """The text of a packaged file: the unit or the example config."""
    return (files("edgeface.device") / "data" / name).read_text(encoding="utf-8")


def systemd_quote(arg: str) -> str:
    """One ExecStart= argument: ``%`` and ``$`` escaped (specifiers, variables), quoted when it has spaces."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(template: str, exec_start: Sequence[str], user: str, groups: Sequence[str]) -> str:
    """The unit with ExecStart=, User=, Group= and SupplementaryGroups= set for this machine.

    ``groups`` are the groups that exist here: systemd refuses to start a unit that names a missing group
    (status 216/GROUP). The sandbox is never changed here: see :mod:`edgeface.device.sandbox` and the drop-in
    of ``--relax-sandbox``."""
    out = []
    for line in template.splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        if key == "ExecStart":
            line = "ExecStart=" + " ".join(systemd_quote(a) for a in exec_start)
        elif key == "User":
            line = f"User={user}"
        elif key == "Group":
            line = f"Group={user}"
        elif key == "SupplementaryGroups":
            if not groups:
                continue
            line = "SupplementaryGroups=" + " ".join(groups)
        out.append(line)
    return "\n".join(out) + "\n"


def find_executable() -> list[str]:
    """The command that runs this installation's edgeface: the ``edgeface`` script next to the running
    interpreter (a virtual environment's bin/), else the one on PATH, else ``python -m edgeface.cli``."""
    candidates = [Path(sys.executable).parent / "edgeface"]
    on_path = shutil.which("edgeface")
    if on_path:
        candidates.append(Path(on_path))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return [str(c.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "edgeface.cli"]


def existing_groups(names: Sequence[str] = DEVICE_GROUPS) -> list[str]:
    found = []
    for name in names:
        try:
            grp.getgrnam(name)
            found.append(name)
        except KeyError:
            pass
    return found


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@dataclass
class Step:
    """One thing the installer does. ``action`` is None for a step that is only reported (skipped)."""

    text: str
    action: Callable[[], None] | None = None


@dataclass
class Plan:
    user: str | None = None  # default: edgeface (gate), edgeface-admin (admin)
    config: str = DEFAULT_CONFIG
    unit_dir: str = DEFAULT_UNIT_DIR
    prefix: str = "/"
    exec_cmd: Sequence[str] | None = None
    groups: Sequence[str] | None = None
    admin: bool = False
    relax_sandbox: bool = False

    def __post_init__(self):
        if self.user is None:
            self.user = ADMIN_USER if self.admin else DEFAULT_USER
        if not _USER_NAME.match(self.user):
            raise InstallError(f"--user {self.user!r} is not a valid system user name (lower case letters, digits, _ and -)")
        for name, value in (("--config", self.config), ("--unit-dir", self.unit_dir)):
            if not value.startswith("/"):
                raise InstallError(f"{name} must be an absolute path, got {value!r}")
        if self.exec_cmd is None:
            self.exec_cmd = find_executable()
        if self.groups is None:
            self.groups = existing_groups()

    @property
    def live(self) -> bool:
        """True when installing into the running system (prefix /): users, owners and systemctl are real."""
        return Path(self.prefix).resolve() == Path("/")

    def target(self, path: str) -> Path:
        return Path(self.prefix) / path.lstrip("/")

    @property
    def unit_name(self) -> str:
        return ADMIN_UNIT_NAME if self.admin else UNIT_NAME

    @property
    def command(self) -> str:
        return "admin" if self.admin else "gate"

    def unit_groups(self) -> list[str]:
        """SupplementaryGroups=: the admin page is in the shared group; both in the device groups that exist."""
        return ([SHARED_GROUP] if self.admin else []) + list(self.groups)

    def unit_text(self) -> str:
        exec_start = [*self.exec_cmd, self.command, "--config", self.config]
        return render_unit(read_data(self.unit_name), exec_start, self.user, self.unit_groups())

    def sandbox_problems(self) -> tuple[list, list[str]]:
        """(problems a drop-in can lift, problems it cannot) of this installation under the unit's sandbox."""
        from .sandbox import Sandbox, check, config_needs, installation_needs

        needs, fatal = installation_needs(self.exec_cmd)
        cfg = self._config_for_check()
        if cfg is not None:
            needs += config_needs(cfg, admin=self.admin)
        return check(needs, Sandbox.of_unit(read_data(self.unit_name))), fatal

    def _config_for_check(self):
        from edgeface.config import load_config, parse_config

        target = self.target(self.config)
        try:
            if target.exists():
                return load_config(target)
            return parse_config(read_data(EXAMPLE_CONFIG), EXAMPLE_CONFIG, base=Path(self.config).parent)
        except (EdgefaceError, OSError):
            return None  # validate-config reports a broken config; its paths cannot be checked here

    def steps(self) -> list[Step]:
        problems, fatal = self.sandbox_problems()
        if fatal or (problems and not self.relax_sandbox):
            raise InstallError(refusal(self.unit_name, fatal + [p.message() for p in problems]))
        steps: list[Step] = []
        steps += self._group_steps()
        steps += self._user_steps()
        config_dir = str(PurePosixPath(self.config).parent)
        steps.append(self._mkdir(config_dir, 0o755, "root", "root"))
        gate_user = DEFAULT_USER if not self.admin or not self.live or user_exists(DEFAULT_USER) else "root"
        steps.append(self._mkdir(STATE_DIR, STATE_DIR_MODE, gate_user, SHARED_GROUP))
        if self.admin:
            steps.append(self._mkdir(ADMIN_STATE_DIR, 0o700, self.user, self.user))
        steps.append(self._config_step())
        steps += self._share_steps()
        unit = str(PurePosixPath(self.unit_dir) / self.unit_name)
        steps.append(Step(f"write {self.target(unit)} (mode 0644, ExecStart={' '.join(self.exec_cmd)} "
                          f"{self.command} --config {self.config})",
                          lambda: _write(self.target(unit), self.unit_text(), 0o644)))
        if problems:
            from .sandbox import dropin

            path = self.target(str(PurePosixPath(self.unit_dir) / f"{self.unit_name}.d" / DROPIN_NAME))
            text = dropin(problems)
            lifted = ", ".join(line for line in text.splitlines()[3:])
            steps.append(Step(f"write {path} (mode 0644): the sandbox is RELAXED for this installation ({lifted}) "
                              f"because " + "; ".join(p.message() for p in problems), lambda: _write(path, text, 0o644)))
        if self.live:
            steps.append(Step("run: systemctl daemon-reload", lambda: _run(["systemctl", "daemon-reload"])))
        else:
            steps.append(Step(f"skip: systemctl daemon-reload (prefix {self.prefix} is not the running system)"))
        return steps

    def _group_steps(self) -> list[Step]:
        cmd = ["groupadd", "--system", "--force", SHARED_GROUP]
        if not self.live:
            return [Step(f"skip: {' '.join(cmd)} (prefix {self.prefix} is not the running system)")]
        return [Step(f"run: {' '.join(cmd)} (the group the gate and the admin page share the gallery and the audit "
                     "database through)", lambda: _run(cmd))]

    def _share_steps(self) -> list[Step]:
        """Existing gallery (and lock) 0660 and audit database 0640, group edgeface; never world bits."""
        cfg = self._config_for_check()
        if cfg is None:
            return [Step(f"note: {self.config} cannot be read; share the gallery and audit database by hand "
                         "(docs/deployment.md, 3a)")]
        from edgeface.gallery_writer import lock_path

        files = [(cfg.model.gallery, 0o660), (lock_path(cfg.model.gallery), 0o660), (cfg.audit.path, 0o640),
                 *((cfg.audit.path.with_name(cfg.audit.path.name + s), 0o640) for s in ("-wal", "-shm"))]
        steps = []
        for path, mode in files:
            target = self.target(str(path))
            if not target.exists():
                continue
            owned = f"group {SHARED_GROUP}" if self.live else "skip: chgrp, prefix is not the running system"

            def share(target=target, mode=mode):
                os.chmod(target, mode)
                if self.live:
                    shutil.chown(target, group=SHARED_GROUP)

            steps.append(Step(f"share: {target} mode {mode:04o} ({owned})", share))
        return steps

    def _user_steps(self) -> list[Step]:
        missing = [g for g in DEVICE_GROUPS if g not in self.groups]
        notes = []
        if missing:
            notes.append(Step(f"note: group(s) {', '.join(missing)} do not exist here; left out of SupplementaryGroups= "
                              "(the service needs read/write access to /dev/gpiochip* and the camera; see docs/deployment.md)"))
        if not self.live:
            return notes + [Step(f"skip: create system user {self.user} (prefix {self.prefix} is not the running system)")]
        groups = self.unit_groups()
        if user_exists(self.user):
            if not groups:
                return notes + [Step(f"keep: system user {self.user} exists")]
            cmd = ["usermod", "--append", "--groups", ",".join(groups), self.user]
            return notes + [Step(f"run: {' '.join(cmd)} (user {self.user} exists)", lambda: _run(cmd))]
        # the gate's primary group is the shared group; the admin page has its own and joins the shared one
        group = ["--user-group"] if self.admin else ["--gid", SHARED_GROUP]
        cmd = ["useradd", "--system", *group, "--no-create-home", "--home-dir",
               ADMIN_STATE_DIR if self.admin else STATE_DIR, "--shell", "/usr/sbin/nologin"]
        if groups:
            cmd += ["--groups", ",".join(groups)]
        cmd.append(self.user)
        return notes + [Step(f"run: {' '.join(cmd)}", lambda: _run(cmd))]

    def _mkdir(self, path: str, mode: int, owner: str, group: str) -> Step:
        target = self.target(path)
        owned = f"owner {owner}:{group}" if self.live else f"skip: chown {owner}:{group}, prefix is not the running system"

        def make():
            target.mkdir(parents=True, exist_ok=True)
            if self.live:
                shutil.chown(target, owner, group)
            os.chmod(target, mode)  # after chown: the setgid bit of a shared directory stays

        return Step(f"create directory {target} (mode {mode:04o}; {owned})", make)

    def _config_step(self) -> Step:
        target = self.target(self.config)
        if target.exists():
            return Step(f"keep: {target} exists and is never overwritten")
        owned = f"owner root:{self.user}" if self.live else f"skip: chown root:{self.user}, prefix is not the running system"

        def write():
            _write(target, read_data(EXAMPLE_CONFIG), 0o640, exclusive=True)
            if self.live:
                shutil.chown(target, "root", self.user)

        return Step(f"write {target} from {EXAMPLE_CONFIG} (mode 0640; {owned}); edit it before starting the service", write)


def _write(path: Path, text: str, mode: int, exclusive: bool = False) -> None:
    """Write a whole file with ``mode``; ``exclusive`` refuses to replace an existing one (a config)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def _run(cmd: list[str]) -> None:
    try:
        subprocess.run(cmd, check=True)
    except FileNotFoundError:
        raise InstallError(f"{cmd[0]} not found; is this a systemd system?") from None
    except subprocess.CalledProcessError as exc:
        raise InstallError(f"{' '.join(cmd)} failed with exit status {exc.returncode}") from None


def install(plan: Plan, dry_run: bool = False, out=print) -> int:
    """Print every step; carry them out unless ``dry_run``. Returns 0."""
    if plan.live and not dry_run and os.geteuid() != 0:
        raise InstallError("installing into the running system needs root (sudo); --dry-run shows the steps")
    prefix = "[dry-run] " if dry_run else ""
    for step in plan.steps():
        out(prefix + step.text)
        if step.action is not None and not dry_run:
            step.action()
    if plan.live:
        out(f"{prefix}next: edit {plan.config}, then: systemctl enable --now {plan.unit_name}; "
            f"journalctl -u {plan.unit_name} -f")
    return 0
