"""The unit file passes ``systemd-analyze verify`` with nothing on stderr, and says what the deployment needs.

``systemd-analyze verify`` exits 0 on unknown keys and only warns, so any stderr output is a failure here.
It fails when ExecStart='s binary is missing, so the unit is verified as a copy whose ExecStart= points at an
executable that exists (this installation's edgeface). It does not look users up: a unit naming a user that
does not exist on this machine verifies cleanly, so no edgeface user is needed (tested below).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from edgeface.config import GateConfig, load_config
from edgeface.device.install import UNIT_NAME, find_executable, read_data, render_unit

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / UNIT_NAME
EXAMPLE = ROOT / "systemd" / "gate.example.toml"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (Debian/Ubuntu package: systemd)")


def verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run systemd-analyze verify on ``text`` saved under the unit's own name (verify checks the name)."""
    path = tmp_path / UNIT_NAME
    path.write_text(text)
    return subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)


def assert_verifies(text: str, tmp_path: Path) -> None:
    result = verify(text, tmp_path)
    assert result.returncode == 0 and result.stderr == "", (
        f"systemd-analyze verify exit {result.returncode}:\n{result.stderr}{result.stdout}")


def runnable(text: str, exec_start: list[str] | None = None, user: str = "edgeface") -> str:
    """The unit with ExecStart= pointing at an executable that exists here."""
    cmd = (exec_start or find_executable()) + ["gate", "--config", "/etc/edgeface/gate.toml"]
    return render_unit(text, cmd, user, ["gpio", "video"])


def entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment; repeated keys (DeviceAllow=) are kept."""
    out, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def values(text: str, section: str, key: str) -> list[str]:
    return [v for s, k, v in entries(text) if s == section and k == key]


@needs_analyze
def test_unit_verifies_with_nothing_on_stderr(tmp_path):
    assert_verifies(runnable(UNIT.read_text()), tmp_path)


@needs_analyze
def test_packaged_unit_is_the_source_unit_and_verifies(tmp_path):
    assert read_data(UNIT_NAME) == UNIT.read_text()
    assert_verifies(runnable(read_data(UNIT_NAME), ["/bin/true"]), tmp_path)


@needs_analyze
def test_a_misspelt_key_fails_the_check(tmp_path):
    bad = runnable(UNIT.read_text()).replace("\nRestartSec=", "\nRestartSecs=")
    assert "RestartSecs=" in bad
    result = verify(bad, tmp_path)
    assert result.returncode == 0  # systemd only warns ...
    assert "RestartSecs" in result.stderr  # ... on stderr, which the check treats as failure
    with pytest.raises(AssertionError, match="RestartSecs"):
        assert_verifies(bad, tmp_path)


@needs_analyze
def test_a_missing_executable_fails_verify(tmp_path):
    result = verify(runnable(UNIT.read_text(), [str(tmp_path / "no-such-edgeface")]), tmp_path)
    assert result.returncode != 0
    assert "no-such-edgeface" in result.stderr


@needs_analyze
def test_a_user_missing_on_this_machine_does_not_warn(tmp_path):
    """Why CI needs no edgeface user: verify does not resolve User= (systemd resolves it at start)."""
    assert_verifies(runnable(UNIT.read_text(), user="edgeface-not-a-user-here"), tmp_path)


@needs_analyze
def test_an_invalid_user_name_warns(tmp_path):
    text = runnable(UNIT.read_text()).replace("\nUser=edgeface\n", "\nUser=not a user!\n")
    with pytest.raises(AssertionError, match="not a user!"):
        assert_verifies(text, tmp_path)


def test_unit_has_the_service_contract():
    text = UNIT.read_text()
    expect = {
        ("Service", "Type"): "notify",
        ("Service", "NotifyAccess"): "main",
        ("Service", "WatchdogSec"): "10",
        ("Service", "Restart"): "on-failure",
        ("Service", "RestartPreventExitStatus"): "78",
        ("Service", "ExecStart"): "/usr/local/bin/edgeface gate --config /etc/edgeface/gate.toml",
        ("Service", "ExecReload"): "/bin/kill -HUP $MAINPID",
        ("Service", "User"): "edgeface",
        ("Service", "SupplementaryGroups"): "gpio video",
        ("Service", "StateDirectory"): "edgeface",
        ("Service", "DevicePolicy"): "closed",
        ("Service", "ProtectSystem"): "strict",
        ("Service", "NoNewPrivileges"): "true",
    }
    for (section, key), value in expect.items():
        assert values(text, section, key) == [value], f"[{section}] {key}="
    for key in ("StartLimitIntervalSec", "StartLimitBurst"):
        assert len(values(text, "Unit", key)) == 1, f"{key}= belongs in [Unit]"
        assert not values(text, "Service", key)
    assert values(text, "Service", "RestartSec")


def test_device_access_is_by_device_group_never_by_glob():
    """DeviceAllow= paths take no wildcards (systemd.resource-control(5)); device groups from /proc/devices do."""
    allowed = [v.split()[0] for v in values(UNIT.read_text(), "Service", "DeviceAllow")]
    for group in ("char-gpiochip", "char-video4linux", "char-media", "char-dma_heap"):
        assert group in allowed
    for spec in allowed:
        assert spec.startswith(("char-", "block-")) or "*" not in spec and "?" not in spec, spec
    # PrivateDevices= would hide /dev/gpiochip* and /dev/video* whatever DeviceAllow= says
    assert values(UNIT.read_text(), "Service", "PrivateDevices") in ([], ["false"])


def test_example_config_is_valid():
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg, GateConfig)
    assert read_data("gate.example.toml") == EXAMPLE.read_text()


def test_example_config_lists_every_key():
    """The skeleton documents every setting: a key added to GateConfig must be added to the example."""
    text = EXAMPLE.read_text()
    listed = set()
    section = ""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            listed.add(section)  # a nested table ([access.door]) lists its own keys below it
        elif "=" in line and section:
            listed.add(f"{section}.{line.split('=', 1)[0].strip()}")
    # an optional section ([fleet]) is annotated "FleetConfig | None"
    models = {name: next(a for a in (sec.annotation, *get_args(sec.annotation)) if hasattr(a, "model_fields"))
              for name, sec in GateConfig.model_fields.items()}
    fields = {f"{name}.{key}" for name, model in models.items() for key in model.model_fields}
    assert not fields - listed, f"missing from {EXAMPLE.name}: {sorted(fields - listed)}"


def doc_dropins() -> list[str]:
    """The ```ini drop-ins that docs/deployment.md tells people to install."""
    return re.findall(r"```ini\n(.*?)```", (ROOT / "docs" / "deployment.md").read_text(), flags=re.S)


def test_the_docs_show_drop_ins():
    assert len(doc_dropins()) >= 2


@needs_analyze
@pytest.mark.parametrize("index", range(2))
def test_documented_drop_ins_verify(tmp_path, index):
    """Each drop-in in docs/deployment.md, applied to the unit, still verifies with nothing on stderr."""
    dropin = doc_dropins()[index]
    (tmp_path / f"{UNIT_NAME}.d").mkdir()
    (tmp_path / f"{UNIT_NAME}.d" / "override.conf").write_text(dropin)
    assert_verifies(runnable(UNIT.read_text()), tmp_path)
    (tmp_path / f"{UNIT_NAME}.d" / "override.conf").write_text(dropin.replace("PrivateTmp", "PrivateTemp").replace(
        "Environment=", "Environ="))
    with pytest.raises(AssertionError, match="Unknown key"):
        assert_verifies(runnable(UNIT.read_text()), tmp_path)


ADMIN_UNIT = ROOT / "systemd" / "edgeface-admin.service"
#: keys whose values the admin unit must share with the gate's: the hardening and the device policy
HARDENING = ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges", "ProtectKernelTunables",
             "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
             "ProtectProc", "PrivateMounts", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
             "LockPersonality", "RemoveIPC", "CapabilityBoundingSet", "AmbientCapabilities",
             "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber", "RestrictAddressFamilies",
             "DevicePolicy", "DeviceAllow", "UMask")


@needs_analyze
def test_admin_unit_verifies_with_nothing_on_stderr(tmp_path):
    text = ADMIN_UNIT.read_text().replace("ExecStart=/usr/local/bin/edgeface ",
                                          f"ExecStart={' '.join(find_executable())} ")
    path = tmp_path / ADMIN_UNIT.name
    path.write_text(text)
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    bad = tmp_path / "bad" / ADMIN_UNIT.name
    bad.parent.mkdir()
    bad.write_text(text.replace("\nProtectClock=", "\nProtectClocks="))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "ProtectClocks" in result.stderr


def test_admin_unit_has_the_gates_hardening_its_own_user_and_the_right_paths():
    gate, admin = UNIT.read_text(), ADMIN_UNIT.read_text()
    for key in HARDENING:
        assert values(admin, "Service", key) == values(gate, "Service", key), f"[Service] {key}="
    assert values(admin, "Service", "User") == ["edgeface-admin"]
    assert values(admin, "Service", "User") != values(gate, "Service", "User")
    assert "edgeface" in values(admin, "Service", "SupplementaryGroups")[0].split()
    assert values(admin, "Service", "ExecStart") == ["/usr/local/bin/edgeface admin --config /etc/edgeface/gate.toml"]
    assert values(admin, "Service", "ReadWritePaths") == ["/var/lib/edgeface"]  # the gallery
    assert values(admin, "Service", "ReadOnlyPaths") == ["-/var/lib/edgeface/audit.db"]
    assert values(admin, "Service", "StateDirectory") == ["edgeface-admin"]
    assert values(admin, "Service", "RestartPreventExitStatus") == ["78"]


def test_admin_unit_keeps_the_door_first():
    """Issue 23: a login flood starved the door. The page's unit gives it a fifth of the gate's CPU weight, a
    lower priority and a memory ceiling of its own; ``edgeface admin`` lowers its own priority too."""
    gate, admin = UNIT.read_text(), ADMIN_UNIT.read_text()
    assert values(admin, "Service", "Nice") == ["10"]
    assert int(values(admin, "Service", "CPUWeight")[0]) * 5 <= int((values(gate, "Service", "CPUWeight") or ["100"])[0])
    assert values(admin, "Service", "MemoryMax") and values(admin, "Service", "MemoryHigh")
    assert not values(gate, "Service", "MemoryMax")  # the door itself is never the one killed for memory
    assert read_data(ADMIN_UNIT.name) == ADMIN_UNIT.read_text()
    code = ("import os; from edgeface.device.commands.admin import lower_priority; "
            "print(lower_priority(), os.getpriority(os.PRIO_PROCESS, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["10", "10"], out.stderr
