"""The device path never imports torch, and device libraries are imported lazily."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import edgeface, edgeface.device, edgeface.runtime, edgeface.detect, edgeface.bundle, edgeface.config
import edgeface.gallery_writer, edgeface.enroll_checks, edgeface.enroll_photos
import edgeface.shared_files, edgeface.device.candidates, edgeface.device.policy, edgeface.device.audit
import edgeface.device.sandbox, edgeface.device.install
from edgeface.cli import build_parser
build_parser()
heavy = [m for m in ("torch", "gpiozero", "picamera2", "lgpio", "Jetson", "litert_torch", "tensorflow") if m in sys.modules]
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
