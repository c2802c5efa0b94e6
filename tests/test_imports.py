"""The device path never imports torch, and device libraries are imported lazily."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import edgeface, edgeface.device, edgeface.runtime, edgeface.detect, edgeface.bundle, edgeface.config
import edgeface.gallery_writer, edgeface.enroll_checks, edgeface.enroll_photos
from edgeface.cli import build_parser
build_parser()
heavy = [m for m in ("torch", "gpiozero", "picamera2", "lgpio", "Jetson", "litert_torch", "tensorflow", "paho",
                     "cryptography") if m in sys.modules]
print(",".join(heavy))
"""


def test_core_device_and_cli_parser_do_not_import_torch_or_device_libraries():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


FLEET = """
import sys
import edgeface.device.fleet.door_link, edgeface.device.fleet.publisher, edgeface.device.daemon
print(",".join(m for m in ("torch", "gpiozero") if m in sys.modules))
"""


def test_fleet_never_imports_torch_and_paho_only_in_its_adapter():
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", FLEET], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the fleet modules imported {out.stdout.strip()}"
    device = Path(__file__).resolve().parents[1] / "device"
    importers = sorted(p.relative_to(device).as_posix() for p in device.rglob("*.py")
                       if any(line.lstrip().startswith(("import paho", "from paho")) for line in p.read_text().splitlines()))
    assert importers == ["fleet/mqtt_client.py"]
