"""The core CLI commands on real images and models."""

from __future__ import annotations

import json

import cv2
import numpy as np

from edgeface.cli import main
from edgeface.faceset import scan_identities


def test_detect_json(orl_dir, yunet_path, capsys):
    img = scan_identities(orl_dir)[0].path
    assert main(["detect", str(img), "--json", "--detector-model", str(yunet_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["detector"] == "yunet" and len(out["faces"]) == 1
    face = out["faces"][0]
    assert len(face["box"]) == 4 and np.array(face["landmarks"]).shape == (5, 2) and 0 < face["score"] <= 1


def test_align_writes_a_112_crop(orl_dir, yunet_path, tmp_path, capsys):
    img = scan_identities(orl_dir)[0].path
    out = tmp_path / "crop.png"
    assert main(["align", str(img), "--out", str(out), "--detector-model", str(yunet_path)]) == 0
    crop = cv2.imread(str(out))
    assert crop.shape == (112, 112, 3) and crop.std() > 10


def test_align_without_face_fails_clearly(tmp_path, yunet_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    assert main(["align", str(blank), "--out", str(tmp_path / "c.png"), "--detector-model", str(yunet_path)]) == 1
    assert "no face found" in capsys.readouterr().err


def test_info_describes_a_bare_model(reference_onnx, capsys):
    assert main(["info", str(reference_onnx), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    m = info["models"]["onnx_fp32"]
    assert info["embedding_size"] == 128 and m["outputs"][0]["shape"][-1] == 128
    assert len(m["sha256"]) == 64 and info["input"]["color_order"] == "RGB"


def test_info_on_a_missing_bundle_fails(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing")]) == 1
    assert "bundle not found" in capsys.readouterr().err
