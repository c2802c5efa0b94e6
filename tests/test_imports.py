"""The device path never imports torch, and device libraries are imported lazily."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import edgeface, edgeface.device, edgeface.runtime, edgeface.detect, edgeface.bundle, edgeface.config
import edgeface.access.credentials, edgeface.access.schedule, edgeface.access.people_set
import edgeface.device.access.decide, edgeface.device.access.wiegand, edgeface.device.access.door
import edgeface.device.access.reader_evdev, edgeface.device.access.reader_simulated, edgeface.device.access.feedback
import edgeface.gallery_writer, edgeface.enroll_checks, edgeface.enroll_photos
from edgeface.cli import build_parser
build_parser()
heavy = [m for m in ("torch", "gpiozero", "picamera2", "lgpio", "Jetson", "litert_torch", "tensorflow", "evdev") if m in sys.modules]
print(",".join(heavy))
"""


def test_core_device_and_cli_parser_do_not_import_torch_or_device_libraries():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"
