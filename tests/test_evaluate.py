"""`edgeface eval` / edgeface.evaluate on real ORL faces: the reference ONNX through the core runtime, a training
checkpoint through the torch wrapper, no-face photos counted, the JSON keys and the ROC/DET plot."""

import json

import numpy as np
import pytest
import torch

from edgeface.cli import main
from edgeface.cropcache import build_cache, write_split
from edgeface.evaluate import FaceSet, evaluate, load_faces
from edgeface.export.checkpoint import save_checkpoint
from edgeface.export.model import build_model
from edgeface.export.torch_embedder import TorchEmbedder
from edgeface.runtime import open_embedder
from facekit import orl_subset

torch.set_num_threads(1)
KEYS = {"tar_at_far", "eer", "rank1", "fnir_at_fpir", "images", "identities", "no_face"}


@pytest.fixture(scope="module")
def photos(orl_dir, tmp_path_factory):
    return orl_subset(orl_dir, tmp_path_factory.mktemp("eval") / "photos", identities=8, per_identity=5, blank=True)


@pytest.fixture(scope="module")
def cache(photos, detector):
    return build_cache(photos, photos.parent / "cache", detector, progress=False).root


def test_reference_onnx_on_a_photo_folder(photos, detector, reference_onnx):
    faces = load_faces(photos, detector, progress=False)
    report, genuine, impostor = evaluate(open_embedder(reference_onnx), faces, progress=False)
    assert KEYS <= set(report)
    assert set(report["tar_at_far"]) == {"1e-2", "1e-3", "1e-4"} and set(report["fnir_at_fpir"]) == {"1e-2", "1e-3"}
    assert report["images"] == 41 and report["identities"] == 8 and report["no_face"] == 1
    assert report["genuine_pairs"] == len(genuine) == 8 * 10 and len(impostor) == report["impostor_pairs"]
    # ORL is easy and the reference is a trained network: it must separate these people well
    assert report["tar_at_far"]["1e-2"] > 0.8 and report["eer"] < 0.1 and report["rank1"] > 0.8
    assert report["open_set"]["failures_to_acquire"] == 1


def test_a_mated_probe_without_a_face_is_a_miss():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b", "c", "d"]), 3)
    centres = rng.normal(size=(4, 16))
    emb = np.repeat(centres, 3, axis=0) + 0.01 * rng.normal(size=(12, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)

    class Fixed:
        embedding_size = 16

        def embed(self, crops):
            return emb[crops[:, 0, 0, 0].astype(int)]

    crops = np.zeros((12, 112, 112, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(12)
    clean, _, _ = evaluate(Fixed(), FaceSet(crops, labels, [], 4, "synthetic"), progress=False)
    assert clean["rank1"] == 1.0
    no_face = [{"identity": i, "source": f"{i}.jpg", "reason": "no face"} for i in "abcd"]
    with_fail, _, _ = evaluate(Fixed(), FaceSet(crops, labels, no_face, 4, "synthetic"), progress=False)
    enrolled = with_fail["open_set"]["enrolled"]
    assert with_fail["rank1"] == pytest.approx(enrolled * 2 / (enrolled * 3))
    assert with_fail["images"] == 16 and with_fail["no_face"] == 4


def test_checkpoint_embedder_matches_the_network(tmp_path, cache):
    torch.manual_seed(0)
    model = build_model({"width": 0.25, "embedding_size": 32}).eval()
    save_checkpoint(tmp_path / "c.pt", model, {"width": 0.25, "embedding_size": 32})
    emb = TorchEmbedder(tmp_path / "c.pt")
    crops = np.asarray(load_faces(cache, progress=False).crops[:3])
    x = torch.from_numpy(crops[..., ::-1].astype(np.float32).transpose(0, 3, 1, 2).copy())
    want = torch.nn.functional.normalize(model((x - 127.5) / 128.0), dim=1).detach().numpy()
    assert np.allclose(emb.embed(crops), want, atol=1e-5)


def test_eval_cli_on_a_cache_with_a_val_split(tmp_path, cache):
    model = build_model({"width": 0.25, "embedding_size": 32})
    save_checkpoint(tmp_path / "c.pt", model, {"width": 0.25, "embedding_size": 32})
    ids = sorted(p.name for p in (cache.parent / "photos").iterdir())
    write_split(tmp_path / "run", ids[:4], ids[4:], seed=0, val_fraction=0.5)
    rc = main(["eval", "--model", str(tmp_path / "c.pt"), "--data", str(cache), "--json", str(tmp_path / "r.json"),
               "--plot", str(tmp_path / "r.png"), "--val-split", str(tmp_path / "run"), "--no-progress"])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert KEYS <= set(report) and report["identities"] == 4 and report["images"] == 20
    assert report["model"]["backend"] == "torch"
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
