"""dlib as the reference for the dlib-port tests: its model files (from the installed face_recognition_models
package, located without importing it: it imports pkg_resources), dlib itself (dlib-bin, dev extra), and the
real faces the parity tests run on, with dlib's own HOG boxes found once."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest


def dlib_or_skip():
    return pytest.importorskip("dlib", reason="dlib (dlib-bin, dev extra) is the reference for the parity tests")


def dlib_model_or_skip(name: str) -> Path:
    """A file of face_recognition_models' ``models/`` folder, or a skip naming what to install."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("face_recognition_models is not installed (pip install face_recognition_models): no dlib models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the installed face_recognition_models ({path})")
    return path


@dataclass(frozen=True)
class Case:
    """One real photo as edgeface holds it (BGR, or grey for ORL), as dlib takes it (RGB or grey), and the boxes
    dlib's HOG detector finds in it (left, top, right, bottom)."""

    name: str
    image: np.ndarray
    dlib_image: np.ndarray
    hog_boxes: list[tuple[int, int, int, int]]


def real_cases(celeba_dir: Path, orl_dir: Path, celeba: int = 60, orl: int = 30, upsample: int = 1) -> list[Case]:
    """The first photo of ``celeba`` celeba-loose identities (colour) and of ``orl`` ORL identities (grey), spread
    over the identities, with dlib's HOG boxes."""
    dlib = dlib_or_skip()
    hog = dlib.get_frontal_face_detector()

    def pick(root: Path, n: int, pattern: str) -> list[Path]:
        people = sorted(p for p in root.iterdir() if p.is_dir())
        step = max(1, len(people) // n)
        return [sorted(p.glob(pattern))[0] for p in people[::step][:n]]

    cases = []
    for path in pick(celeba_dir, celeba, "*.jpg"):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        cases.append(Case(path.parent.name + "/" + path.name, bgr, rgb, _boxes(hog(rgb, upsample))))
    for path in pick(orl_dir, orl, "*.png"):
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cases.append(Case(path.parent.name + "/" + path.name, grey, grey, _boxes(hog(grey, upsample))))
    return cases


def _boxes(rects) -> list[tuple[int, int, int, int]]:
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]


def dlib_points(predictor, dlib_image: np.ndarray, box) -> np.ndarray:
    """(dlib's five points (5, 2) float32, its full_object_detection) for ``box`` (left, top, right, bottom)."""
    dlib = dlib_or_skip()
    shape = predictor(dlib_image, dlib.rectangle(*(int(v) for v in box)))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float32), shape


def door_bundle(root: Path, orl_dir: Path, yunet: Path, calibrate_on: Path | None = None) -> Path:
    """The default door model as the Quickstart makes it: ``export --pretrained dlib-resnet-v1 --int8`` (ONNX;
    int8 calibration photos ORL s1-s25, validation s26-s40), then ``calibrate`` at FAR 1e-3 on
    ``calibrate_on`` (a folder of identities no test enrolls). Needs torch (the export) and the dlib models."""
    import shutil

    pytest.importorskip("torch", reason="exporting dlib's ResNet needs the train extra (torch)")
    dlib_model_or_skip("dlib_face_recognition_resnet_model_v1.dat")
    dlib_model_or_skip("shape_predictor_5_face_landmarks.dat")
    from edgeface.cli import main
    from edgeface.export.exporter import ExportOptions, export_bundle
    from edgeface.export.quantize import FAST_CANDIDATES

    calib, val = root / "int8-calib", root / "int8-val"
    for dst, names in ((calib, range(1, 26)), (val, range(26, 41))):
        for n in names:
            shutil.copytree(orl_dir / f"s{n}", dst / f"s{n}")
    out = root / "bundle"
    export_bundle(ExportOptions(out=out, pretrained="dlib-resnet-v1", int8=True, calib=calib, val=val, tflite=False,
                                detector_model=yunet, candidates=FAST_CANDIDATES, latency_runs=3, progress=False))
    if calibrate_on is not None:
        rc = main(["calibrate", "--bundle", str(out), "--model", "onnx_int8", "--far", "1e-3", "--data",
                   str(calibrate_on), "--detector-model", str(yunet)])
        assert rc == 0, "calibrating the dlib bundle failed"
    return out
