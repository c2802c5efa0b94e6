"""What a newcomer reads: --help keeps the written examples line by line, ``admin --help`` says how to start the
page, and a command whose optional extra is not installed says which one, in one line, never a traceback.

The missing extras are real missing imports: a subprocess puts ``None`` into ``sys.modules`` for the extra's
modules before edgeface starts (Python then refuses to import them, exactly as when they are not installed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeface.cli import build_parser

BLOCKER = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError, as when it is not installed
from edgeface.cli import main
sys.exit(main(sys.argv[2:]))
"""

ADMIN = "starlette,uvicorn,jinja2,python_multipart,multipart,argon2"
FLEET = "paho,cryptography"
TRAIN = "torch,onnx,onnxscript,litert_torch,matplotlib"
ALL = ",".join([ADMIN, FLEET, TRAIN, "ai_edge_litert,gpiozero"])


def run_without(blocked: str, *argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, blocked, *argv], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.parametrize(("blocked", "argv", "extra"), [
    (ADMIN, ["admin", "--config", "/nonexistent/gate.toml"], "admin"),
    (ADMIN, ["admin", "add-user", "bob", "--config", "/nonexistent/gate.toml"], "admin"),
    (FLEET, ["keys", "generate", "--out", "{tmp}/keys"], "fleet"),
    (FLEET, ["gallery", "verify", "--key", "{tmp}/k.pub", "--gallery", "{tmp}/g", "--site", "hq"], "fleet"),
    (TRAIN, ["export", "--pretrained", "dlib-resnet-v1", "--out", "{tmp}/bundle"], "train"),
    (TRAIN, ["train", "--data", "{tmp}", "--out", "{tmp}/run", "--epochs", "1"], "train"),
])
def test_a_missing_extra_names_the_extra_in_one_line(tmp_path, blocked, argv, extra):
    (tmp_path / "k.pub").write_text("not a key\n")
    (tmp_path / "g").write_bytes(b"x")
    proc = run_without(blocked, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"edgeface: error: edgeface {argv[0]} needs the '{extra}' extra (")
    assert f"pip install 'edgeface[{extra}]'" in lines[0]
    assert not (tmp_path / "keys").exists() and not (tmp_path / "bundle").exists()


def test_every_help_builds_without_any_extra():
    """The parser imports every command module: none may import an extra at module level."""
    for argv in (["--help"], ["admin", "--help"], ["export", "--help"], ["fleet", "publish", "--help"],
                 ["keys", "generate", "--help"], ["demo", "--help"], ["gate", "--help"]):
        proc = run_without(ALL, *argv)
        assert proc.returncode == 0 and proc.stdout.startswith("usage: edgeface"), (argv, proc.stderr)


def test_a_missing_module_that_is_no_extra_keeps_its_traceback():
    """A bug (an import of a module edgeface does not depend on) is not dressed up as a missing extra."""
    from edgeface.errors import EdgefaceError
    from edgeface.extras import from_import_error

    assert from_import_error(ModuleNotFoundError("No module named 'nonesuch'", name="nonesuch"), "x") is None
    err = from_import_error(ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn"), "edgeface eval")
    assert isinstance(err, EdgefaceError) and "needs the 'train' extra (torch not installed)" in str(err)


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize(("argv", "example"), [
    (["admin"], "  edgeface admin --config /etc/edgeface/gate.toml "),
    (["gate"], "  edgeface gate --simulate clip.avi --bundle BUNDLE --gallery people.gallery [--config FILE] [--realtime]"),
    (["fleet"], "  edgeface fleet refresh --gallery people.gallery --key gallery_signing.key --site hq --broker ... [--valid-for 1d]"),
    (["gallery"], "  edgeface gallery verify --key gallery_signing.pub --gallery people.gallery --site hq [--door front]"),
    (["keys"], "  edgeface keys generate --out DIR [--name gallery_signing]"),
])
def test_help_keeps_the_examples_one_per_line(capsys, argv, example):
    out = _help(capsys, *argv)
    assert any(line.startswith(example) for line in out.splitlines()), out


def test_help_paragraphs_are_still_wrapped(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = _help(capsys, "export")
    description = out.split("\n\n")[1]
    assert "--pretrained" in out and all(len(line) <= 80 for line in description.splitlines()), description


def test_admin_help_says_how_to_start_the_page(capsys):
    out = _help(capsys, "admin")
    usage = out.split("\n\n")[0]
    assert usage.startswith("usage: edgeface admin --config FILE [--listen HOST:PORT] [--insecure-http]     (serve the page)")
    assert "edgeface admin add-user NAME --config FILE" in usage and "ACTION" not in out
    assert "without one, edgeface admin serves the page" in out
