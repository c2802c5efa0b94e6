"""Embedder runtimes and the model bundle, on real models and real faces."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeface.bundle import seal_metadata, Bundle, BundleMeta, describe_model_file
from edgeface.errors import ChecksumError, ModelError
from edgeface.faceset import aligned_crop, read_image, scan_identities
from edgeface.runtime import open_embedder


@pytest.fixture(scope="module")
def orl_crops(detector, orl_dir):
    photos = [p for p in scan_identities(orl_dir) if p.identity in ("s1", "s2", "s3")][:24]
    crops, labels = [], []
    for p in photos:
        crop, _ = aligned_crop(detector, read_image(p.path))
        crops.append(crop)
        labels.append(p.identity)
    return np.stack(crops), np.array(labels)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny conv net exported by torch to ONNX and by litert-torch to TFLite (both fp32)."""
    torch = pytest.importorskip("torch", reason="the train extra (torch) makes the test models")
    litert_torch = pytest.importorskip("litert_torch", reason="litert-torch converts the tiny TFLite model")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 32),
    ).eval()
    d = tmp_path_factory.mktemp("tiny")
    x = torch.randn(1, 3, 112, 112)
    torch.onnx.export(net, (x,), str(d / "tiny.onnx"), input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    litert_torch.convert(net, (x,)).export(str(d / "tiny.tflite"))
    return d


def test_reference_onnx_embeds_real_faces(reference_onnx, orl_crops):
    crops, labels = orl_crops
    emb = open_embedder(reference_onnx).embed(crops)
    assert emb.shape == (len(crops), 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(labels), dtype=bool)
    assert sim[same & off_diag].mean() > sim[~same].mean() + 0.3


def test_onnx_and_litert_agree_on_real_faces(tiny_models, orl_crops):
    crops, _ = orl_crops
    onnx_emb = open_embedder(tiny_models / "tiny.onnx").embed(crops)
    tfl = open_embedder(tiny_models / "tiny.tflite")
    assert tfl.backend in ("ai_edge_litert", "tflite_runtime")
    tfl_emb = tfl.embed(crops)
    assert onnx_emb.shape == tfl_emb.shape == (len(crops), 32)
    cos = np.sum(onnx_emb * tfl_emb, axis=1)
    assert cos.min() > 0.9999


def test_batch_of_one_and_many_agree(reference_onnx, orl_crops):
    crops, _ = orl_crops
    e = open_embedder(reference_onnx)
    many = e.embed(crops[:5])
    one = np.concatenate([e.embed(crops[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(many, one, atol=1e-5)


def _make_bundle(tmp_path, model_src):
    shutil.copy(model_src, tmp_path / "model.onnx")
    meta = BundleMeta(source="imported", embedding_size=128,
                      models={"onnx_fp32": describe_model_file(tmp_path, "model.onnx", "onnx", "fp32")})
    Bundle(tmp_path, meta).save()
    return tmp_path


def test_bundle_round_trip_and_embedder(tmp_path, reference_onnx, orl_crops):
    root = _make_bundle(tmp_path, reference_onnx)
    b = Bundle.load(root)
    assert b.default_key() == "onnx_fp32" and b.meta.input.color_order == "RGB"
    e = open_embedder(b)
    assert e.fingerprint == b.fingerprint("onnx_fp32")
    assert e.embed(orl_crops[0][:2]).shape == (2, 128)


@pytest.mark.parametrize("damage,error,msg", [
    ("truncate", ChecksumError, "truncated or replaced"),
    ("flip", ChecksumError, "corrupt or replaced"),
    ("delete_model", ModelError, "is missing"),
    ("delete_meta", ModelError, "edgeface.json is missing"),
    ("bad_json", ModelError, "not valid JSON"),
    ("unknown_field", ModelError, "colour: unknown field"),
    ("missing_field", ModelError, "embedding_size: Field required"),
    ("wrong_version", ModelError, "format_version 99"),
    ("no_models", ModelError, "lists no model files"),
])
def test_bad_bundles_give_clear_errors(tmp_path, reference_onnx, damage, error, msg):
    root = _make_bundle(tmp_path, reference_onnx)
    meta_path, model = root / "edgeface.json", root / "model.onnx"
    raw = json.loads(meta_path.read_text())
    if damage == "truncate":
        model.write_bytes(model.read_bytes()[:1000])
    elif damage == "flip":
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
    elif damage == "delete_model":
        model.unlink()
    elif damage == "delete_meta":
        meta_path.unlink()
    elif damage == "bad_json":
        meta_path.write_text(meta_path.read_text()[:50])
    elif damage == "unknown_field":
        raw["colour"] = "RGB"
    elif damage == "missing_field":
        del raw["embedding_size"]
    elif damage == "wrong_version":
        raw["format_version"] = 99
    elif damage == "no_models":
        raw["models"] = {}
    if damage in ("unknown_field", "missing_field", "wrong_version", "no_models"):
        meta_path.write_text(json.dumps(seal_metadata(raw)))  # sealed: the structural check is what is tested
    with pytest.raises(error, match=msg):
        Bundle.load(root)


def test_corrupt_bare_models_give_clear_errors(tmp_path, reference_onnx):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(reference_onnx.read_bytes()[:4096])
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        open_embedder(bad)
    bad_tfl = tmp_path / "broken.tflite"
    bad_tfl.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        open_embedder(bad_tfl)
    with pytest.raises(ModelError, match="not found"):
        Bundle.load(tmp_path / "absent")
