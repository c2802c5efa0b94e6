"""``edgeface install-service`` into a tmp prefix (no root side effects), and its dry run."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgeface.cli import main
from edgeface.config import load_config
from edgeface.device.install import (
    UNIT_NAME, InstallError, Plan, find_executable, install, read_data, render_unit, systemd_quote)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_install_into_prefix_writes_unit_config_and_directories(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["install-service", "--prefix", str(root), "--user", "doorman", "--config", "/etc/door/gate.toml"]) == 0
    out = capsys.readouterr().out
    files = _files(root)
    assert files["etc/door"] == 0o755
    assert files["var/lib/edgeface"] == 0o700
    assert files["etc/door/gate.toml"] == 0o640
    assert files[f"etc/systemd/system/{UNIT_NAME}"] == 0o644
    assert (root / "etc/door/gate.toml").read_text() == read_data("gate.example.toml")
    load_config(root / "etc/door/gate.toml")

    unit = (root / "etc/systemd/system" / UNIT_NAME).read_text()
    exe = " ".join(systemd_quote(a) for a in find_executable())
    assert f"\nExecStart={exe} gate --config /etc/door/gate.toml\n" in unit
    assert "\nUser=doorman\n" in unit and "\nGroup=doorman\n" in unit
    for skipped in ("skip: create system user doorman", "skip: systemctl daemon-reload", "skip: chown"):
        assert skipped in out


def test_existing_config_is_never_overwritten(tmp_path, capsys):
    root = tmp_path / "root"
    config = root / "etc/edgeface/gate.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# mine\n")
    assert main(["install-service", "--prefix", str(root)]) == 0
    assert config.read_text() == "# mine\n"
    assert f"keep: {config} exists" in capsys.readouterr().out


def test_dry_run_prints_every_step_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    plan = Plan(prefix=str(root))
    assert main(["install-service", "--prefix", str(root), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.removeprefix("[dry-run] ") for line in lines] == [s.text for s in plan.steps()]
    assert all(line.startswith("[dry-run] ") for line in lines)
    assert list(root.iterdir()) == []


def test_dry_run_on_the_live_system_prints_the_real_commands(capsys):
    """Prefix / with --dry-run: the useradd/systemctl steps are shown, not run, and no root is needed."""
    plan = Plan(groups=["video"])
    out = []
    install(plan, dry_run=True, out=out.append)
    text = "\n".join(out)
    assert "systemctl daemon-reload" in text and "skip:" not in text
    if not any("exists" in line for line in out):
        assert "useradd --system --user-group --no-create-home --home-dir /var/lib/edgeface --shell /usr/sbin/nologin --groups video edgeface" in text
    assert "note: group(s) gpio do not exist here" in text


def test_missing_device_groups_are_left_out_of_the_unit():
    template = read_data(UNIT_NAME)
    assert "\nSupplementaryGroups=video\n" in render_unit(template, ["/bin/true"], "edgeface", ["video"])
    assert "SupplementaryGroups" not in render_unit(template, ["/bin/true"], "edgeface", [])


def test_a_venv_in_a_home_directory_keeps_home_readable():
    text = render_unit(read_data(UNIT_NAME), ["/home/pi/venv/bin/edgeface", "gate"], "edgeface", [])
    assert "\nProtectHome=read-only\n" in text
    text = render_unit(read_data(UNIT_NAME), ["/opt/edgeface/bin/edgeface", "gate"], "edgeface", [])
    assert "\nProtectHome=true\n" in text


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (package: systemd)")
def test_installed_unit_with_an_awkward_path_verifies(tmp_path):
    """A venv path with a space and a '%' is quoted and escaped so systemd runs exactly that file."""
    venv_bin = tmp_path / "my venv%1" / "bin"
    venv_bin.mkdir(parents=True)
    exe = venv_bin / "edgeface"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    root = tmp_path / "root"
    install(Plan(prefix=str(root), exec_cmd=[str(exe)]), out=lambda s: None)
    unit = root / "etc/systemd/system" / UNIT_NAME
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert f'ExecStart="{str(exe).replace("%", "%%")}" gate' in unit.read_text()


def test_find_executable_is_this_installations_edgeface():
    cmd = find_executable()
    assert os.access(cmd[0], os.X_OK)
    if len(cmd) == 1:
        assert subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60).returncode == 0
    else:
        assert cmd == [str(Path(sys.executable).absolute()), "-m", "edgeface.cli"]


@pytest.mark.parametrize(("args", "message"), [
    (["--user", "Bad User"], "not a valid system user name"),
    (["--config", "gate.toml"], "--config must be an absolute path"),
])
def test_bad_arguments_are_refused(tmp_path, args, message, capsys):
    assert main(["install-service", "--prefix", str(tmp_path), *args]) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_live_install_needs_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    printed = []
    with pytest.raises(InstallError, match="needs root"):
        install(Plan(), out=printed.append)
    assert printed == []  # refused before the first step


def test_systemd_quote():
    assert systemd_quote("/opt/edgeface/bin/edgeface") == "/opt/edgeface/bin/edgeface"
    assert systemd_quote("/a b/c") == '"/a b/c"'
    assert systemd_quote("/50%/x$HOME") == "/50%%/x$$HOME"
    assert systemd_quote('/a"b') == '"/a\\"b"'
