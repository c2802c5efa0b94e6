"""Training under torchrun: 2 gloo processes on the CPU train like 1 process with the same seed and global batch
(gradient all-reduce, mining over the gathered batch, global BatchNorm, sharded sampler and augmentation), and a
run resumes at another world size. The 2-process runs go through `edgeface train --nproc 2` (torchrun)."""

import json
import shutil

import pytest
import torch

from edgeface.cli import main
from edgeface.cropcache import build_cache
from edgeface.export.checkpoint import read_checkpoint
from edgeface.export.train import TrainConfig, train
from facekit import orl_subset

pytestmark = pytest.mark.slow
TINY = {"width": 0.25, "embedding_size": 32}
# global batch: 4 identities x 2 photos; 2 identities per process at world size 2. SGD: its step is linear in the
# gradient, so float-level differences of the all-reduce stay float-level (Adam's first steps are sign-like and
# turn a 1e-9 gradient into a full learning-rate step either way)
OPTS = dict(p=4, k=2, val_fraction=0.34, threads=1, progress=False, seed=5, val_every=1, mining="all",
            optimizer="sgd", lr=0.002)


@pytest.fixture(scope="module")
def cache(orl_dir, detector, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    photos = orl_subset(orl_dir, root / "photos", identities=6, per_identity=4)
    build_cache(photos, root / "cache", detector, progress=False)
    return root / "cache"


def _single(cache, run, steps, resume=False):
    return train(cache, run, TrainConfig(model=TINY, max_steps=steps, **OPTS), resume=resume)


def _ddp(cache, run, steps, resume=False):
    argv = ["train", "--data", str(cache), "--out", str(run), "--nproc", "2", "--max-steps", str(steps),
            "--no-progress", "--threads", "1"]
    if resume:
        argv.append("--resume")
    else:
        argv += ["--width", "0.25", "--embedding-size", "32", "--p", "4", "--k", "2", "--val-fraction", "0.34",
                 "--seed", "5", "--val-every", "1", "--mining", "all", "--optimizer", "sgd", "--lr", "0.002"]
    assert main(argv) == 0


def _losses(run):
    return [h["train_loss"] for h in json.loads((run / "metrics.json").read_text())]


def _flat(state):
    return torch.cat([v.double().flatten() for k, v in sorted(state.items()) if v.is_floating_point()])


def _assert_same_weights(a, b, tol=0.02):
    """The two runs' weights agree to ``tol`` of how far training moved them from the seeded initialisation.
    float32 rounding of the reduction order alone moves the first layers' gradients by up to ~1 % at these
    random-init scales (in float64 the distributed gradient equals the single-process one to 1e-8:
    test_distributed_gradient_equals_one_process_in_float64), so bit-equality is not expected."""
    sa, sb = (read_checkpoint(r / "checkpoint.pt")["state_dict"] for r in (a, b))
    assert set(sa) == set(sb)
    torch.manual_seed(OPTS["seed"])
    from edgeface.export.model import build_model

    init = _flat(build_model(TINY).state_dict())
    moved = float((_flat(sa) - init).norm())
    apart = float((_flat(sa) - _flat(sb)).norm())
    assert moved > 0.1 and apart < tol * moved, (apart, moved)


@pytest.fixture(scope="module")
def runs(cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-runs")
    _single(cache, root / "one", 2)
    _ddp(cache, root / "two", 2)
    return root


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    one, two = runs / "one", runs / "two"
    l1, l2 = _losses(one), _losses(two)
    assert len(l1) == len(l2) == 2 and all(v > 0 for v in l1)
    assert l1 == pytest.approx(l2, rel=1e-2)  # float32: see _assert_same_weights
    _assert_same_weights(one, two)
    # the weights did move: an untrained network is far from both
    info = read_checkpoint(two / "checkpoint.pt")["info"]
    assert info["world_size"] == 2 and info["global_batch"] == {"p": 4, "k": 2, "size": 8, "per_rank": 4}
    assert read_checkpoint(one / "checkpoint.pt")["info"]["world_size"] == 1
    assert json.loads((two / "split.json").read_text()) == json.loads((one / "split.json").read_text())
    assert (two / "curves.png").stat().st_size > 1000


def test_resume_across_world_sizes(cache, runs, tmp_path):
    """One step past the checkpoint: at random init this tiny network amplifies float32 rounding about 20x per
    SGD step (measured), so longer float32 runs at different world sizes drift apart by construction."""
    # reference: the 1-process run continued in 1 process
    ref = tmp_path / "ref"
    shutil.copytree(runs / "one", ref)
    _single(cache, ref, 3, resume=True)
    # written at world size 1, resumed at 2
    up = tmp_path / "up"
    shutil.copytree(runs / "one", up)
    _ddp(cache, up, 3, resume=True)
    # written at world size 2, resumed at 1, against the same checkpoint continued at 2
    down, ref2 = tmp_path / "down", tmp_path / "ref2"
    shutil.copytree(runs / "two", down)
    shutil.copytree(runs / "two", ref2)
    _single(cache, down, 3, resume=True)
    _ddp(cache, ref2, 3, resume=True)
    for run, against in ((up, ref), (down, ref2)):
        assert read_checkpoint(run / "checkpoint.pt")["info"]["step"] == 3
        assert _losses(run) == pytest.approx(_losses(against), rel=1e-2), run.name
        _assert_same_weights(against, run)
    assert read_checkpoint(up / "checkpoint.pt")["info"]["world_size"] == 2


def _grad_worker(rank, x, y, port, out):
    import os

    from edgeface.export import distributed as D
    from edgeface.export.losses import TripletLoss
    from edgeface.export.model import build_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    env = D.setup("cpu")
    torch.manual_seed(0)
    model = build_model(TINY).double()
    net = D.wrap(model, env)
    n = len(x) // 2
    emb = net(x[rank * n:(rank + 1) * n])
    loss = TripletLoss(0.2, "all")(D.gather_with_grad(emb, env), y)
    (loss * D.mined_loss_scale(env)).backward()
    if rank == 0:
        torch.save({"loss": loss.item(), "grads": {k: p.grad for k, p in model.named_parameters()}}, out)
    env.close()


def test_distributed_gradient_equals_one_process_in_float64(tmp_path):
    """DDP's gradient average, the mining gather (loss x world size) and the global BatchNorm give exactly the
    one-process gradient of the global batch (float64, so rounding does not hide a wrong term)."""
    import socket

    import torch.multiprocessing as mp

    from edgeface.export.losses import TripletLoss
    from edgeface.export.model import build_model

    torch.manual_seed(1)
    x = torch.randn(8, 3, 112, 112, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "grads.pt"
    procs = [mp.get_context("spawn").Process(target=_grad_worker, args=(r, x, y, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    got = torch.load(out)
    torch.manual_seed(0)
    ref = build_model(TINY).double().train()
    loss = TripletLoss(0.2, "all")(ref(x), y)
    loss.backward()
    assert got["loss"] == pytest.approx(loss.item(), rel=1e-10)
    scale = max(float(p.grad.abs().max()) for p in ref.parameters())
    worst = max(float((got["grads"][k] - p.grad).abs().max()) for k, p in ref.named_parameters())
    assert scale > 1e-3 and worst < 1e-8 * scale, (worst, scale)


def test_global_batch_must_split_over_the_processes(cache, tmp_path):
    assert main(["train", "--data", str(cache), "--out", str(tmp_path / "r"), "--nproc", "2", "--max-steps", "1",
                 "--p", "3", "--k", "2", "--width", "0.25", "--embedding-size", "32", "--val-fraction", "0.34",
                 "--no-progress", "--threads", "1"]) == 1
