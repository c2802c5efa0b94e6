"""``edgeface install-service`` into a tmp prefix (no root side effects), and its dry run."""

from __future__ import annotations

import os
import re
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
ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (package: systemd)")


#: where each source folder of the checkout lands in an installed edgeface (pyproject.toml's package-dir)
INSTALLED_LAYOUT = {"edgeface": "edgeface", "device": "edgeface/device", "export": "edgeface/export"}


def make_venv(where: Path) -> Path:
    """A real virtual environment of the system Python at ``where`` with a copy of this checkout's edgeface in
    its site-packages, laid out as ``pip install .`` lays it out, and a ``bin/edgeface`` console script;
    returns that script.

    A copy, not a .pth pointing at the checkout (an editable install): the sandbox check rightly refuses a
    package that lives in a checkout under /tmp or a home directory, where most people clone."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} is needed to make a venv outside any home directory")
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    site = next((where / "lib").glob("python3*/site-packages"))
    for source, target in INSTALLED_LAYOUT.items():
        shutil.copytree(ROOT / source, site / target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    script = where / "bin" / "edgeface"
    script.write_text(f"#!{where}/bin/python\nimport sys\nfrom edgeface.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


@pytest.fixture(scope="module")
def opt_exe():
    """A venv under /opt, where the unit's sandbox sees it (removed afterwards)."""
    if not os.access("/opt", os.W_OK):
        pytest.skip("/opt is not writable here")
    import tempfile
    where = Path(tempfile.mkdtemp(prefix="edgeface-test-venv-", dir="/opt"))
    try:
        yield make_venv(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_install_into_prefix_writes_unit_config_and_directories(tmp_path, capsys, opt_exe):
    root = tmp_path / "root"
    assert main(["install-service", "--prefix", str(root), "--user", "doorman", "--config", "/etc/door/gate.toml",
                 "--exec", str(opt_exe)]) == 0
    out = capsys.readouterr().out
    files = _files(root)
    assert files["etc/door"] == 0o755
    assert files["var/lib/edgeface"] == 0o2770  # shared with the admin page through its group, setgid
    assert files["etc/door/gate.toml"] == 0o640
    assert files[f"etc/systemd/system/{UNIT_NAME}"] == 0o644
    assert (root / "etc/door/gate.toml").read_text() == read_data("gate.example.toml")
    load_config(root / "etc/door/gate.toml")

    unit = (root / "etc/systemd/system" / UNIT_NAME).read_text()
    assert f"\nExecStart={opt_exe} gate --config /etc/door/gate.toml\n" in unit
    assert not (root / "etc/systemd/system" / f"{UNIT_NAME}.d").exists()  # nothing to relax
    assert "\nUser=doorman\n" in unit and "\nGroup=doorman\n" in unit
    for skipped in ("skip: create system user doorman", "skip: systemctl daemon-reload", "skip: chown"):
        assert skipped in out


def test_existing_config_is_never_overwritten(tmp_path, capsys, opt_exe):
    root = tmp_path / "root"
    config = root / "etc/edgeface/gate.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# mine\n")
    assert main(["install-service", "--prefix", str(root), "--exec", str(opt_exe)]) == 0
    assert config.read_text() == "# mine\n"
    assert f"keep: {config} exists" in capsys.readouterr().out


def test_dry_run_prints_every_step_and_writes_nothing(tmp_path, capsys, opt_exe):
    root = tmp_path / "root"
    root.mkdir()
    plan = Plan(prefix=str(root), exec_cmd=[str(opt_exe)])
    assert main(["install-service", "--prefix", str(root), "--dry-run", "--exec", str(opt_exe)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.removeprefix("[dry-run] ") for line in lines] == [s.text for s in plan.steps()]
    assert all(line.startswith("[dry-run] ") for line in lines)
    assert list(root.iterdir()) == []


def test_dry_run_on_the_live_system_prints_the_real_commands(capsys, opt_exe):
    """Prefix / with --dry-run: the useradd/systemctl steps are shown, not run, and no root is needed."""
    plan = Plan(groups=["video"], exec_cmd=[str(opt_exe)])
    out = []
    install(plan, dry_run=True, out=out.append)
    text = "\n".join(out)
    assert "systemctl daemon-reload" in text and "skip:" not in text
    if not any("exists" in line for line in out):
        assert "useradd --system --gid edgeface --no-create-home --home-dir /var/lib/edgeface --shell /usr/sbin/nologin --groups video edgeface" in text
    assert "groupadd --system --force edgeface" in text
    assert "note: group(s) gpio do not exist here" in text


def test_missing_device_groups_are_left_out_of_the_unit():
    template = read_data(UNIT_NAME)
    assert "\nSupplementaryGroups=video\n" in render_unit(template, ["/bin/true"], "edgeface", ["video"])
    assert "SupplementaryGroups" not in render_unit(template, ["/bin/true"], "edgeface", [])


def test_render_unit_never_touches_the_sandbox():
    """Relaxing is the drop-in's job (--relax-sandbox), never a silent edit of the unit."""
    text = render_unit(read_data(UNIT_NAME), ["/home/pi/venv/bin/edgeface", "gate"], "edgeface", [])
    assert "\nProtectHome=true\n" in text and "\nPrivateTmp=true\n" in text


@needs_analyze
def test_installed_unit_with_an_awkward_path_verifies(tmp_path, opt_exe):
    """A venv path with a space and a '%' is quoted and escaped so systemd runs exactly that file."""
    venv_bin = opt_exe.parent.parent / "my venv%1" / "bin"
    venv_bin.mkdir(parents=True)
    exe = venv_bin / "edgeface"
    exe.write_text(opt_exe.read_text())  # the venv's console script, in an awkwardly named folder
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
def test_bad_arguments_are_refused(tmp_path, args, message, capsys, opt_exe):
    assert main(["install-service", "--prefix", str(tmp_path), "--exec", str(opt_exe), *args]) == 1
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


# -- the unit's sandbox against this installation (issue 12, item 6) -----------------------------------------

def _analyze(unit: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)


def test_a_venv_under_tmp_is_refused_with_where_to_install(tmp_path, capsys):
    """PrivateTmp=true gives the service an empty /tmp: ExecStart in a venv there would never start."""
    exe = make_venv(tmp_path / "venv")
    root = tmp_path / "root"
    assert main(["install-service", "--prefix", str(root), "--exec", str(exe)]) == 1
    err = capsys.readouterr().err
    flat = " ".join(err.split())  # the words, whatever the wrapping
    assert f"the ExecStart executable {exe}: PrivateTmp=true hides /tmp and /var/tmp" in flat
    assert f"its virtual environment {tmp_path / 'venv'}" in flat
    assert "python3 -m venv --system-site-packages /opt/edgeface/venv" in flat and "--relax-sandbox" in flat
    assert "Traceback" not in err
    lines = err.strip().splitlines()  # wrapped for a terminal: the problems one per item, then the fix
    assert lines[0] == "edgeface: error: edgeface-gate.service could not start as installed:"
    assert lines[1].startswith("  - the ExecStart executable") and any(l.startswith("Fix: ") for l in lines)
    assert all(len(line) <= 100 or len(line.split()) == 1 for line in lines[1:]), lines
    assert not root.exists()  # refused before the first step


@needs_analyze
def test_relax_sandbox_lifts_private_tmp_in_a_drop_in_and_says_so(tmp_path, capsys):
    exe = make_venv(tmp_path / "venv")
    root = tmp_path / "root"
    assert main(["install-service", "--prefix", str(root), "--exec", str(exe), "--relax-sandbox"]) == 0
    out = capsys.readouterr().out
    unit = root / "etc/systemd/system" / UNIT_NAME
    dropin = unit.parent / f"{UNIT_NAME}.d" / "50-install-sandbox.conf"
    assert "the sandbox is RELAXED for this installation (PrivateTmp=false)" in out
    assert dropin.read_text().splitlines()[-2:] == ["[Service]", "PrivateTmp=false"]
    assert "\nPrivateTmp=true\n" in unit.read_text()  # the unit itself is the packaged one
    result = _analyze(unit)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_venv_under_opt_needs_nothing_relaxed(opt_exe, tmp_path):
    plan = Plan(prefix=str(tmp_path / "root"), exec_cmd=[str(opt_exe)])
    assert plan.sandbox_problems() == ([], [])


def test_the_test_venv_imports_its_own_copy_never_the_checkout(opt_exe):
    """Wherever the checkout is (/tmp, a home directory), the venv under /opt imports edgeface from /opt."""
    from edgeface.device.sandbox import probe
    facts = probe(str(opt_exe.parent / "python"))
    venv = opt_exe.parent.parent
    assert facts is not None and Path(facts["package"]).is_relative_to(venv), facts
    assert (Path(facts["package"]) / "device" / "sandbox.py").is_file()  # edgeface.device, as installed


@pytest.mark.skipif(not any(sys.base_prefix == h or sys.base_prefix.startswith(h + "/")
                            for h in ("/root", "/home", "/run/user")),
                    reason="this interpreter's base Python is not in a home directory")
def test_this_installations_python_under_root_is_refused_by_protect_home(tmp_path):
    """The base Python of this machine's venv lives in /root: ProtectHome=true hides it (status 203/EXEC)."""
    with pytest.raises(InstallError) as info:
        install(Plan(prefix=str(tmp_path / "root")), out=lambda s: None)
    assert f"the base Python {sys.base_prefix}: ProtectHome=true hides /home, /root and /run/user" in str(info.value)
    out = []
    install(Plan(prefix=str(tmp_path / "root"), relax_sandbox=True), out=out.append)
    dropin = tmp_path / "root/etc/systemd/system" / f"{UNIT_NAME}.d" / "50-install-sandbox.conf"
    assert "ProtectHome=read-only" in dropin.read_text()


def _config(root: Path, gallery: str, audit: str = "/var/lib/edgeface/audit.db") -> None:
    path = root / "etc/edgeface/gate.toml"
    path.parent.mkdir(parents=True)
    text = read_data("gate.example.toml").replace('gallery = "/var/lib/edgeface/people.gallery"', f'gallery = "{gallery}"')
    path.write_text(text.replace('path = "/var/lib/edgeface/audit.db"', f'path = "{audit}"'))


def test_data_outside_the_writable_paths_is_refused_or_made_writable(tmp_path, opt_exe):
    """The admin page writes the gallery's folder: under /home (ProtectHome) or /srv (ProtectSystem=strict)."""
    root = tmp_path / "root"
    _config(root, "/home/pi/door/people.gallery", audit="/srv/door/audit.db")
    problems, fatal = Plan(prefix=str(root), exec_cmd=[str(opt_exe)], admin=True).sandbox_problems()
    assert not fatal
    assert [(p.need.what, p.setting.split()[0], p.adjust) for p in problems] == [
        ("the gallery", "ProtectHome=true", ("ProtectHome=read-only",)),
        ("the gallery's folder", "ProtectHome=true", ("ProtectHome=read-only", "ReadWritePaths=/home/pi/door"))]
    gate_problems, _ = Plan(prefix=str(root), exec_cmd=[str(opt_exe)]).sandbox_problems()
    assert ("the audit database's folder", ("ReadWritePaths=/srv/door",)) in [
        (p.need.what, p.adjust) for p in gate_problems]
    assert any(p.setting.startswith("ProtectSystem=strict") for p in gate_problems)


def test_an_executable_that_does_not_exist_is_refused_even_relaxed(tmp_path):
    with pytest.raises(InstallError, match="does not exist"):
        install(Plan(prefix=str(tmp_path), exec_cmd=["/opt/nowhere/bin/edgeface"], relax_sandbox=True), out=print)


@needs_analyze
def test_admin_unit_installs_with_its_user_in_the_shared_group(tmp_path, opt_exe, capsys):
    root = tmp_path / "root"
    assert main(["install-service", "--admin", "--prefix", str(root), "--exec", str(opt_exe)]) == 0
    unit = root / "etc/systemd/system/edgeface-admin.service"
    text = unit.read_text()
    assert f"\nExecStart={opt_exe} admin --config /etc/edgeface/gate.toml\n" in text
    assert "\nUser=edgeface-admin\n" in text and "\nGroup=edgeface-admin\n" in text
    assert re.search(r"\nSupplementaryGroups=edgeface( |\n)", text)
    files = _files(root)
    assert files["var/lib/edgeface-admin"] == 0o700 and files["var/lib/edgeface"] == 0o2770
    result = _analyze(unit)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "skip: groupadd --system --force edgeface" in capsys.readouterr().out


def test_existing_gallery_and_audit_database_are_shared_never_world(tmp_path, opt_exe):
    root = tmp_path / "root"
    state = root / "var/lib/edgeface"
    state.mkdir(parents=True)
    (state / "people.gallery").write_bytes(b"x")
    os.chmod(state / "people.gallery", 0o600)
    (state / "audit.db").write_bytes(b"")
    os.chmod(state / "audit.db", 0o666)
    out = []
    install(Plan(prefix=str(root), exec_cmd=[str(opt_exe)]), out=out.append)
    files = _files(root)
    assert files["var/lib/edgeface/people.gallery"] == 0o660
    assert files["var/lib/edgeface/audit.db"] == 0o640
    assert any(line.startswith(f"share: {state / 'people.gallery'} mode 0660") for line in out)
