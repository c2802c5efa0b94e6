"""The door's install path: ``scripts/build-wheel.sh`` builds one wheel that carries every module and the files the
door needs (systemd units, config example, admin templates and style sheet), without setuptools warnings, and an
installation of that wheel alone (not this checkout) finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _needs_build_tools():
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"building a wheel offline needs setuptools and wheel in this venv: {exc}")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"pyproject.toml needs setuptools>=77 to build offline (this venv has {setuptools.__version__})")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel path, build output) from a copy of the checkout's build inputs, so that the build leaves nothing in
    the working tree."""
    _needs_build_tools()
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("edgeface", "export", "device", "systemd", "scripts"):
        shutil.copytree(ROOT / name, src / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PYTHON": sys.executable}
    p = subprocess.run(["bash", str(src / "scripts" / "build-wheel.sh"), str(out)], cwd=src, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    whl = Path(p.stdout.strip().splitlines()[-1])
    # the build backend's own messages (pip -q hides them): a verbose build of the same tree
    v = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path_factory.mktemp("dist-v")), str(src)], capture_output=True, text=True, timeout=600)
    assert v.returncode == 0, v.stderr[-3000:]
    return whl, v.stdout + v.stderr


def test_the_build_is_quiet(built):
    """Issue 24: 134 lines of BuildBackendWarning (data folders that are not listed packages) on every build."""
    _, log = built
    assert "BuildBackendWarning" not in log and "is absent from the `packages` configuration" not in log


def test_the_wheel_carries_every_module_and_the_doors_files(built):
    whl, _ = built
    names = set(zipfile.ZipFile(whl).namelist())
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = set()
    for package, folder in cfg["package-dir"].items():
        for py in (ROOT / folder).glob("*.py"):
            expected.add(f"{package.replace('.', '/')}/{py.name}")
    data = {"edgeface/device/data": ROOT / "systemd", "edgeface/device/admin/templates": ROOT / "device/admin/templates",
            "edgeface/device/admin/static": ROOT / "device/admin/static"}
    for where, folder in data.items():
        for f in folder.rglob("*"):
            if f.is_file():
                expected.add(f"{where}/{f.relative_to(folder).as_posix()}")
    assert expected - names == set()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # each packaged data file is the file itself, not a link: the unit in the wheel is the repository's unit
    z = zipfile.ZipFile(whl)
    assert z.read("edgeface/device/data/edgeface-gate.service") == (ROOT / "systemd/edgeface-gate.service").read_bytes()
    entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "edgeface = edgeface.cli:main" in entry
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for extra in ("device", "tflite", "admin", "fleet"):
        assert f"Provides-Extra: {extra}" in meta


def test_an_installed_wheel_finds_its_units_templates_and_config_example(built, tmp_path):
    """Installed by itself into a folder (not this checkout, which the test venv also imports), the package reads
    its unit and config example and the admin page finds its templates; the example config validates."""
    whl, _ = built
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                        str(target), str(whl)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    code = """
import sys, edgeface
from pathlib import Path
assert Path(edgeface.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), edgeface.__file__
from edgeface.device.install import read_data
assert "[Service]" in read_data("edgeface-gate.service") and "[Service]" in read_data("edgeface-admin.service")
from edgeface.config import load_config
import tempfile, os
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "gate.toml"); open(p, "w").write(read_data("gate.example.toml")); load_config(p)
from edgeface.device.admin import app
here = Path(app.__file__).parent
assert (here / "templates" / "base.html").is_file() and (here / "static" / "style.css").is_file()
print("ok", edgeface.__file__)
"""
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok ")
