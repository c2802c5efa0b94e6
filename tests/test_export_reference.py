"""Slow: the shared reference MobileFaceNet (opset 12, ReLU6, dynamic batch) through the whole `edgeface export
--int8` command, calibrated on ORL people and measured on other ORL people."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="export needs the train extra (torch)")


@pytest.mark.slow
def test_reference_onnx_exports_with_int8_within_the_gate(tmp_path, reference_onnx, orl_dir, yunet_path, capsys):
    from edgeface.bundle import Bundle
    from edgeface.cli import main

    out = tmp_path / "ref"
    rc = main(["export", "--onnx", str(reference_onnx), "--out", str(out), "--int8", "--calib", str(orl_dir),
               "--detector-model", str(yunet_path), "--calib-crops", "200", "--no-progress"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err[-2000:]
    assert "parity vs source onnx" in printed.out
    bundle = Bundle.load(out)
    assert set(bundle.meta.models) == {"onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"}
    assert bundle.meta.notes["source"]["onnx"]["source_opset"] == 12
    rep = json.loads((out / "report.json").read_text())
    for key in ("onnx_int8", "tflite_int8"):
        assert rep["artefacts"][key]["mean_cosine"] >= 0.98, key  # the gate (it would have failed otherwise)
    assert rep["artefacts"]["onnx_fp32"]["mean_cosine"] > 0.9999
    assert rep["artefacts"]["tflite_fp32"]["mean_cosine"] > 0.999
