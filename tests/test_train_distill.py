"""Distillation on real faces: a student trained for a short budget from dlib's ResNet (each model on its own
alignment of the same ORL photos) ends closer to the teacher than it started and than an untrained student, and
its checkpoint records the teacher as provenance."""

import importlib.util
import json

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




# plain cosine is largely met by the teacher's mean direction, which a few steps learn; the centred space
# (relational) asks for each person's own direction, which takes this tiny student ~100 steps on 16 photos
@pytest.mark.parametrize("objective, steps", [("cosine", 30), ("relational", 100)])
def test_distilled_student_moves_toward_the_teacher(cache, tmp_path, objective, steps):
    from edgeface.cropcache import load_cache
    from edgeface.export.distill import chip_rows
    from edgeface.export.model import build_model
    from edgeface.preprocess import l2_normalize

    run = tmp_path / "run"
    cfg = TrainConfig(model={"width": 0.25, "embedding_size": 128}, teacher="dlib-resnet-v1", p=4, k=2,
                      max_steps=steps, val_fraction=0.34, threads=1, progress=False, seed=0, lr=3e-3,
                      distill_loss=objective)
    last = train(cache, run, cfg)
    assert "val_teacher_cos" in last and last["step"] == steps
    c, tc = load_cache(cache), load_cache(run / "teacher-cache")
    rows = [(i, j) for i, j in enumerate(chip_rows(c, tc)) if j >= 0]
    crops = np.asarray(c.crops[[i for i, _ in rows]])
    all_targets = l2_normalize(np.load(run / "teacher" / "targets.npy"))
    target = all_targets[[j for _, j in rows], 0]
    if objective == "relational":  # the centred space: the teacher's mean direction (training chips) removed
        seen = set(json.loads((run / "split.json").read_text())["train"])
        train_rows = [j for (i, j) in rows if c.identities[i] in seen]
        target = l2_normalize(target - all_targets[train_rows].reshape(-1, target.shape[1]).mean(0))

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
    assert dist["objective"]["loss"] == objective
    assert (run / "curves.png").is_file()
    if objective == "relational":  # the student's similarity matrix moved toward the centred teacher's
        s_end, s_start = (embed(m, crops, torch.device("cpu")) for m in (student, start))
        gap = [float(np.mean((s @ s.T - target @ target.T) ** 2)) for s in (s_end, s_start)]
        assert gap[0] < 0.8 * gap[1], gap


def test_relation_gap_is_the_mean_squared_similarity_difference_off_the_diagonal():
    from edgeface.export.distill import relation_gap

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    terms = [float((na[i] @ na[j] - nb[i] @ nb[j]) ** 2) for i in range(6) for j in range(6) if i != j]
    assert float(relation_gap(a, b)) == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert float(relation_gap(a, a * 3.0)) == pytest.approx(0.0, abs=1e-6)
