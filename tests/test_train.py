"""Training on a tiny real subset (6 ORL people): smoke runs, resume, determinism, and that training learns."""

import csv
import json

import numpy as np
import pytest
import torch

from edgeface.cli import main
from edgeface.cropcache import build_cache
from edgeface.errors import EdgefaceError
from edgeface.export.checkpoint import load_checkpoint, read_checkpoint
from edgeface.export.data import to_tensor
from edgeface.export.losses import TripletLoss
from edgeface.export.model import build_model
from edgeface.export.train import TrainConfig, train
from facekit import orl_subset

torch.set_num_threads(1)
TINY = {"width": 0.25, "embedding_size": 32}


@pytest.fixture(scope="module")
def cache(orl_dir, detector, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    photos = orl_subset(orl_dir, root / "photos", identities=6, per_identity=4)
    build_cache(photos, root / "cache", detector, progress=False)
    return root / "cache"


def _cfg(**kw):
    base = dict(model=TINY, p=2, k=2, max_steps=2, val_fraction=0.34, threads=1, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_train_writes_checkpoint_split_and_metrics(cache, tmp_path):
    last = train(cache, tmp_path / "run", _cfg())
    run = tmp_path / "run"
    assert last["step"] == 2 and set(last["val_tar_at_far"]) == {"1e-2", "1e-3", "1e-4"}
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 2 and len(split["train"]) == 4 and not set(split["val"]) & set(split["train"])
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert rows[0]["step"] == "2" and "val_tar@1e-2" in rows[0]
    model, info = load_checkpoint(run / "checkpoint.pt")
    assert not model.training
    assert info["model_config"]["width"] == 0.25 and info["input"]["color_order"] == "RGB"
    assert info["manifest_sha256"] == split["manifest_sha256"] and info["epoch"] == 1
    assert {"optimizer", "metrics"} <= set(info)
    assert model(torch.zeros(1, 3, 112, 112)).shape == (1, 32)


def test_resume_continues_where_it_stopped(cache, tmp_path):
    run = tmp_path / "run"
    train(cache, run, _cfg(max_steps=2))
    last = train(cache, run, _cfg(max_steps=4), resume=True)
    assert last["step"] == 4 and last["epoch"] == 2
    assert len(json.loads((run / "metrics.json").read_text())) == 2


def test_same_seed_same_weights(cache, tmp_path):
    train(cache, tmp_path / "a", _cfg())
    train(cache, tmp_path / "b", _cfg())
    train(cache, tmp_path / "c", _cfg(seed=4))
    a, b, c = (read_checkpoint(tmp_path / r / "checkpoint.pt")["state_dict"] for r in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_cuda_without_cuda_is_a_clear_error(cache, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EdgefaceError, match="cuda"):
        train(cache, tmp_path / "run", _cfg(device="cuda"))


def test_pair_loss_trains_through_the_cli(cache, tmp_path):
    rc = main(["train", "--data", str(cache), "--out", str(tmp_path / "run"), "--loss", "pair", "--max-steps", "2",
               "--width", "0.25", "--embedding-size", "32", "--p", "2", "--k", "2", "--val-fraction", "0.34",
               "--threads", "1", "--no-progress"])
    assert rc == 0
    _, info = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert info["train_config"]["loss"] == "pair" and "classifier.weight" in info["loss_state"]


def test_training_lowers_the_triplet_loss_on_real_faces(cache):
    from edgeface.cropcache import load_cache

    c = load_cache(cache)
    x = to_tensor(np.asarray(c.crops[:16]))  # 4 people x 4 photos
    y = torch.from_numpy(np.unique(c.identities[:16], return_inverse=True)[1])
    torch.manual_seed(0)
    model = build_model(TINY)
    loss_fn = TripletLoss(0.2, "all")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = float(loss_fn(model(x), y))
    for _ in range(8):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_fn(model(x), y))
    assert after < 0.5 * before, (before, after)
