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
import edgeface.landmarks.shape5, edgeface.landmarks.box, edgeface.chip
import edgeface.alignment, edgeface.scorer, edgeface.detect.scale, edgeface.detect.yunet
import edgeface.device.pipeline, edgeface.device.gate, edgeface.device.run_summary, edgeface.device.simulate
import edgeface.shared_files, edgeface.device.candidates, edgeface.device.policy, edgeface.device.audit
import edgeface.device.sandbox, edgeface.device.install
import edgeface.device.daemon, edgeface.device.preflight, edgeface.device.relay, edgeface.device.relay_check
import edgeface.device.scene, edgeface.recognizer, edgeface.thresholds, edgeface.revocations, edgeface.names
from edgeface.cli import build_parser
build_parser()
heavy = [m for m in ("torch", "gpiozero", "picamera2", "lgpio", "Jetson", "litert_torch", "tensorflow", "evdev", "paho",
                     "cryptography") if m in sys.modules]
print(",".join(heavy))
"""


def test_core_device_and_cli_parser_do_not_import_torch_or_device_libraries():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


DLIB_CHECK = """
import sys
from edgeface import registry
registry.dlib_package_models_dir()
import edgeface.export.dlib.serialize, edgeface.export.dlib.resnet_dat
numpy_only = [m for m in ("torch", "dlib", "face_recognition_models", "pkg_resources") if m in sys.modules]
import edgeface.export.dlib.resnet
never = [m for m in ("dlib", "face_recognition", "face_recognition_models", "pkg_resources") if m in sys.modules]
print(",".join(numpy_only) + "|" + ",".join(never))
"""


def test_dlib_readers_need_no_torch_and_edgeface_never_imports_dlib_or_its_model_package():
    out = subprocess.run([sys.executable, "-c", DLIB_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "|", f"imported: {out.stdout.strip()}"


ADMIN = """
import sys
from edgeface.cli import build_parser
build_parser()
early = [m for m in ("starlette", "uvicorn", "argon2", "jinja2") if m in sys.modules]
import edgeface.device.admin.app, edgeface.device.admin.pages_people, edgeface.device.admin.pages_events
import edgeface.device.admin.pages_login, edgeface.device.admin.accounts, edgeface.device.admin.store
heavy = [m for m in ("torch", "gpiozero", "picamera2", "lgpio", "Jetson", "litert_torch", "tensorflow") if m in sys.modules]
print(",".join(early) + "|" + ",".join(heavy))
"""


def test_admin_page_never_imports_torch_and_the_cli_parser_not_the_web_stack():
    out = subprocess.run([sys.executable, "-c", ADMIN], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "|", f"(parser imported | admin imported): {out.stdout.strip()}"


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
