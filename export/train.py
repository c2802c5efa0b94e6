"""The training loop: PxK batches -> augmentation -> network -> triplet or pairwise loss, a cosine schedule, a time
or epoch budget, validation TAR on unseen identities every epoch, checkpoints that resume.

Run directory::

    split.json        identity-disjoint train/val split (seed, manifest hash)
    checkpoint.pt     the latest state (weights, model config, optimizer, sampler and RNG state, metrics)
    best.pt           the weights with the best validation TAR@FAR=1e-2 so far
    metrics.json      one record per epoch; metrics.csv the same as a table
    config.json       the options of the run
    curves.png        training loss and validation TAR@1e-3 / EER (and teacher agreement) over steps

Under ``torchrun`` (or ``--nproc N``) the same loop runs as DistributedDataParallel over the global PxK batch
(:mod:`.distributed`); with ``teacher`` it distils a teacher's embeddings into the student (:mod:`.distill`).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgeface.bundle import DEFAULT_INPUT, InputSpec
from edgeface.errors import EdgefaceError
from edgeface.metrics import verification
from edgeface.preprocess import l2_normalize

from .augment import AugmentConfig, augment, value_range
from .checkpoint import read_checkpoint, save_checkpoint
from .curves import CURVES, plot_history
from .data import TrainData, make_split, open_cache, to_tensor
from .distributed import check_batch, gather_with_grad, local_rows, setup, unscale_loss_grads, wrap
from .losses import build_loss
from .model import build_model, full_config
from .precision import autocast, check_amp, grad_scaler
from .sampler import PKSampler

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    loss: str = "triplet"
    mining: str = "semi-hard"
    margin: float = 0.2
    pair_form: str = "abs"
    model: dict = field(default_factory=dict)
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.03
    p: int = 8
    k: int = 4
    epochs: int | None = None
    time_budget_min: float | None = None
    max_steps: int | None = None  # hard cap (tests, smoke runs)
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "cpu"
    threads: int = 2
    channels_last: bool = True  # NHWC activations: ~20-40 % less CPU time per step here (mkldnn depthwise convs)
    augment: bool = True
    progress: bool = True
    #: fine-tune a pretrained model (``dlib-resnet-v1``) instead of training from scratch
    init: str | None = None
    #: weight of a distillation term 1 - cos(f(x), f_start(x)) toward the starting model's embeddings (init only)
    distill: float = 0.0
    #: validate every N steps (default: once per epoch); the best checkpoint is chosen by validation TAR
    val_every: int | None = None
    #: the FAR whose validation TAR picks best.pt (default: 1e-3 when fine-tuning, else 1e-2)
    select_far: str | None = None
    #: stop when this many validations in a row did not improve the best one (None: never)
    patience: int | None = None
    #: automatic mixed precision: off, bf16 (CPU or CUDA), fp16 (CUDA)
    amp: str = "off"
    #: distil this teacher (a bundle directory or ``dlib-resnet-v1``) into the student
    teacher: str | None = None
    #: teacher embeddings: ``cached`` once per chip and mirrored chip, or ``online`` per augmented view
    teacher_targets: str = "cached"
    distill_loss: str = "cosine"
    #: with distill_loss "relational": weight of the similarity-matrix term
    relation_weight: float = 1.0
    #: weight of the triplet/pair term when distilling (0: identities are not used)
    metric_weight: float = 0.0

    @property
    def selection_far(self) -> str:
        return self.select_far or ("1e-3" if self.init else "1e-2")


def resolve_device(name: str) -> torch.device:
    if name == "cuda":
        if not torch.cuda.is_available():
            raise EdgefaceError("--device cuda was asked for, but torch sees no CUDA device here")
        return torch.device("cuda")
    if name != "cpu":
        raise EdgefaceError(f"unknown device {name!r}; use cpu or cuda")
    return torch.device("cpu")


@torch.no_grad()
def embed(model: torch.nn.Module, crops_bgr: np.ndarray, device: torch.device, batch: int = 64,
          spec: InputSpec = DEFAULT_INPUT) -> np.ndarray:
    """L2-normalised embeddings of uint8 crops with the model in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    fmt = _memory_format(model)
    out = [model(to_tensor(crops_bgr[i:i + batch], spec).to(device).contiguous(memory_format=fmt)).float().cpu().numpy()
           for i in range(0, len(crops_bgr), batch)]
    model.train(was_training)
    return l2_normalize(np.concatenate(out)) if out else np.zeros((0, 1), np.float32)


def _memory_format(model: torch.nn.Module) -> torch.memory_format:
    w = next(model.parameters())
    return torch.channels_last if w.dim() == 4 and w.is_contiguous(memory_format=torch.channels_last) \
        and not w.is_contiguous() else torch.contiguous_format


def validate(model, data: TrainData, device, spec: InputSpec = DEFAULT_INPUT, distiller=None) -> dict:
    """Validation TAR@FAR and EER on the held-out identities (none when they have no genuine pair, e.g. an
    unlabelled folder), and with a teacher the mean cosine to its embeddings."""
    emb = embed(model, data.val_x, device, spec=spec)
    out = {"val_tar_at_far": {}, "val_eer": None}
    _, counts = np.unique(data.val_y, return_counts=True)
    if np.any(counts > 1):
        res, _, _ = verification(emb, data.val_y)
        out = {"val_tar_at_far": res.tar_at_far, "val_eer": res.eer}
    if distiller is not None:
        out["val_teacher_cos"] = distiller.agreement(emb)
    return out


class _Schedule:
    """Linear warmup, then cosine decay to 0; progress is the larger of step and time fractions, so a
    time-budgeted run still ends its schedule when the budget ends."""

    def __init__(self, base_lr: float, total_steps: int | None, budget_s: float | None, warmup: float) -> None:
        self.base, self.total, self.budget, self.warmup = base_lr, total_steps, budget_s, warmup

    def progress(self, step: int, elapsed: float) -> float:
        fr = [step / self.total] if self.total else []
        if self.budget:
            fr.append(elapsed / self.budget)
        return min(1.0, max(fr)) if fr else 0.0

    def lr(self, step: int, elapsed: float) -> float:
        p = self.progress(step, elapsed)
        if p < self.warmup:
            return self.base * max(p / self.warmup, 0.01)
        return self.base * 0.5 * (1.0 + math.cos(math.pi * (p - self.warmup) / (1.0 - self.warmup)))


def _optimizer(cfg: TrainConfig, params):
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    raise EdgefaceError(f"unknown optimizer {cfg.optimizer!r}; use adamw or sgd")


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    (run_dir / "metrics.json").write_text(json.dumps(history, indent=1) + "\n")
    rows = []
    for h in history:
        row = {k: v for k, v in h.items() if not isinstance(v, dict)}
        for far, v in h.get("val_tar_at_far", {}).items():
            row[f"val_tar@{far}"] = v
        rows.append(row)
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)


def train(data, run_dir: str | Path, cfg: TrainConfig, resume: bool = False, detector_model=None) -> dict:
    """Train; returns the last epoch's metrics record. See the module docstring for what lands in ``run_dir``."""
    if cfg.epochs is None and cfg.time_budget_min is None and cfg.max_steps is None:
        raise EdgefaceError("give a budget: --epochs N or --time-budget MIN")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, int(cfg.threads)))
    env = setup(cfg.device)
    try:
        return _train(data, run_dir, cfg, resume, detector_model, env)
    finally:
        env.close()


def _train(data, run_dir: Path, cfg: TrainConfig, resume: bool, detector_model, env) -> dict:
    device, main = env.device, env.is_main
    ckpt_path = run_dir / "checkpoint.pt"
    state = read_checkpoint(ckpt_path) if resume and ckpt_path.is_file() else None
    if resume and state is None:
        raise EdgefaceError(f"--resume: no checkpoint at {ckpt_path}")
    if state is not None:  # the resumed run keeps its own options
        saved = state["info"]["train_config"]
        budget = {k: getattr(cfg, k) for k in ("epochs", "time_budget_min", "max_steps", "progress", "threads", "device")}
        cfg = TrainConfig(**{**saved, **budget})
    check_batch(cfg.p, env.world_size)
    check_amp(cfg.amp, device)
    if cfg.teacher and cfg.init:
        raise EdgefaceError("--teacher trains a student from scratch; it does not combine with --init")
    if not cfg.relation_weight >= 0:  # also rejects NaN
        raise EdgefaceError(f"--relation-weight must be 0 or more, got {cfg.relation_weight!r}")

    torch.manual_seed(cfg.seed)
    with env.main_first():  # rank 0 prepares caches, the split and the teacher's targets; the others read them
        start = _start(cfg, run_dir)
        spec = start.spec
        cache = open_cache(data, run_dir, detector_model, progress=cfg.progress and main, aligner=start.aligner)
        td = make_split(cache, run_dir, cfg.val_fraction, cfg.seed)
        distiller = _distiller(cfg, run_dir, cache, td, detector_model, device, main) if cfg.teacher else None
    if state is not None and state["info"].get("manifest_sha256") != td.manifest_sha256:
        raise EdgefaceError(f"--resume: {data} is not the data the checkpoint was trained on (manifest hash differs)")
    model_cfg = full_config(start.model_config or cfg.model)
    if distiller is not None and model_cfg["embedding_size"] != distiller.teacher.embedding_size:
        raise EdgefaceError(f"--teacher gives {distiller.teacher.embedding_size}-d embeddings; the student must "
                            f"have the same (--embedding-size {distiller.teacher.embedding_size})")
    model = (start.model if start.model is not None else build_model(model_cfg)).to(device)
    teacher = None
    if cfg.distill > 0:
        if start.model is None:
            raise EdgefaceError("--distill needs --init: it pulls the fine-tuned embeddings toward the start's")
        import copy

        teacher = copy.deepcopy(model).eval().requires_grad_(False)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = wrap(model, env)  # DDP with global-batch BatchNorm when distributed; `model` stays the plain module
    loss_fn = build_loss(cfg.loss, cfg.margin, cfg.mining, model_cfg["embedding_size"], cfg.pair_form).to(device)
    metric_w = cfg.metric_weight if cfg.teacher else 1.0
    opt = _optimizer(cfg, list(model.parameters()) + list(loss_fn.parameters()))
    scaler = grad_scaler(cfg.amp, device)
    sampler = PKSampler(td.train_y, cfg.p, cfg.k, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    if main:
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1) + "\n")

    step, epoch, elapsed0, history = 0, 0, 0.0, []
    best, best_step = -1.0, None
    sel = cfg.selection_far
    if state is not None:
        info = state["info"]
        model.load_state_dict(state["state_dict"])
        loss_fn.load_state_dict(info["loss_state"])
        opt.load_state_dict(info["optimizer"])
        sampler.set_state(info["sampler_state"])
        gen.set_state(info["augment_rng"])
        torch.set_rng_state(info["torch_rng"])
        step, epoch, elapsed0 = info["step"], info["epoch"], info["elapsed_s"]
        history, best = info["history"], info.get("best_val_tar", -1.0)
        best_step = info.get("best_step")
        if main:
            log.info("resumed %s at epoch %d, step %d (written at world size %s, now %d)", ckpt_path, epoch, step,
                     info.get("world_size", 1), env.world_size)

    steps_per_epoch = sampler.batches_per_epoch
    total = min(x for x in (cfg.max_steps, cfg.epochs * steps_per_epoch if cfg.epochs else None) if x) \
        if (cfg.max_steps or cfg.epochs) else None
    budget_s = cfg.time_budget_min * 60.0 if cfg.time_budget_min else None
    sched = _Schedule(cfg.lr, total, budget_s, cfg.warmup_fraction)
    aug_cfg = AugmentConfig()
    vrange = value_range(spec)
    t0 = time.monotonic() - elapsed0
    stopped_early = False
    validated_at = history[-1]["step"] if history else None

    def clock() -> tuple[bool, float]:
        """(stop now, elapsed seconds), rank 0's, so every rank takes the same decision and learning rate."""
        elapsed = time.monotonic() - t0
        stop = stopped_early or (total is not None and step >= total) or (budget_s is not None and elapsed >= budget_s)
        stop, elapsed = env.from_main([float(stop), elapsed])
        return stop > 0.5, elapsed

    def checkpoint(path: Path, metrics: dict) -> None:
        info = start.checkpoint_info(cache, step, len(td.train_ids))
        if distiller is not None:
            info.update(distiller.teacher.checkpoint_info(cache, step, distiller.info()))
        save_checkpoint(path, model, model_cfg, manifest_sha256=td.manifest_sha256, metrics=metrics, epoch=epoch,
                        step=step, elapsed_s=time.monotonic() - t0, train_config=asdict(cfg),
                        optimizer=opt.state_dict(), loss_state=loss_fn.state_dict(),
                        sampler_state=sampler.state(), augment_rng=gen.get_state(), torch_rng=torch.get_rng_state(),
                        history=history, best_val_tar=best, best_step=best_step,
                        split={"train": td.train_ids, "val": td.val_ids}, world_size=env.world_size,
                        global_batch={"p": sampler.p, "k": sampler.k, "size": sampler.p * sampler.k,
                                      "per_rank": sampler.p * sampler.k // env.world_size}, **info)

    def validate_now(losses: list[float], lr: float | None) -> dict | None:
        """Rank 0 validates and writes; the others go on to the next step's collective and wait there."""
        nonlocal best, best_step, validated_at, stopped_early
        validated_at = step
        if not main:
            return None
        metrics = {"epoch": epoch, "step": step, "elapsed_s": round(time.monotonic() - t0, 1),
                   "train_loss": float(np.mean(losses)) if losses else None, "lr": lr}
        metrics.update(validate(model, td, device, spec, distiller))
        history.append(metrics)
        _write_metrics(run_dir, history)
        plot_history(history, run_dir / CURVES)
        value = _selection_value(metrics, sel)
        if value > best:
            best, best_step = value, step
            checkpoint(run_dir / "best.pt", metrics)
        since_best = sum(1 for h in history if best_step is not None and h["step"] > best_step)
        stopped_early = bool(cfg.patience) and since_best >= cfg.patience
        checkpoint(ckpt_path, metrics)
        tars = metrics.get("val_tar_at_far") or {}
        log.info("epoch %d step %d loss %s val TAR@1e-3 %s EER %s (best.pt by %s: %.4f at step %s)%s", epoch, step,
                 _fmt(metrics["train_loss"]), _fmt(tars.get("1e-3")), _fmt(metrics.get("val_eer")), _selection_name(metrics, sel),
                 best, best_step, f"; early stop: {since_best} validations without improvement" if stopped_early else "")
        return metrics

    from tqdm import tqdm

    bar = tqdm(total=total, initial=step, unit="step", disable=not (cfg.progress and main), dynamic_ncols=True)
    if state is None and start.model is not None:
        # the unmodified pretrained model is a candidate: a fine-tune that validates below it is never chosen
        validate_now([], None)
    val_tar = (history[-1].get("val_tar_at_far") or {}).get(sel) if history else None
    net.train()
    lr = None
    stop, elapsed = clock()
    while not stop:
        epoch += 1
        losses = []
        for gidx in sampler.epoch():
            stop, elapsed = clock()
            if stop:
                break
            idx = local_rows(gidx, env, sampler.k)
            rows = (env.rank * len(idx), len(gidx)) if env.active else None
            lr = sched.lr(step, elapsed)
            for g in opt.param_groups:
                g["lr"] = lr
            x = to_tensor(td.train_x[idx], spec)
            gen_state = gen.get_state() if cfg.augment else None
            if cfg.augment:
                x = augment(x, gen, aug_cfg, vrange, rows)
            x = x.to(device).contiguous(memory_format=fmt)
            with autocast(cfg.amp, device):
                out = net(x)
            out = out.float()
            loss, local = None, None
            if metric_w > 0:  # mined over the global batch; scaled so DDP's gradient average gives d(loss)/dw
                y = torch.from_numpy(td.train_y[gidx]).to(device)
                mined = metric_w * loss_fn(gather_with_grad(out, env), y)
                loss = mined * env.world_size
            if teacher is not None:
                with torch.no_grad(), autocast(cfg.amp, device):
                    target = teacher(x).float()
                local = cfg.distill * (1.0 - torch.nn.functional.cosine_similarity(out, target, dim=1)).mean()
            if distiller is not None:
                term = distiller.term(out, distiller.step_targets(idx, gen_state, rows, aug_cfg))
                local = term if local is None else local + term
            if local is not None:
                loss = local if loss is None else loss + local
            value = (mined.item() if metric_w > 0 else 0.0) + (env.mean(local.item()) if local is not None else 0.0)
            if not math.isfinite(value):
                raise EdgefaceError(f"training diverged at step {step} (loss {value}); lower --lr")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            unscale_loss_grads(loss_fn, env)
            scaler.step(opt)
            scaler.update()
            step += 1
            losses.append(value)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-20:]):.4f}", lr=f"{lr:.2e}",
                            val_tar=f"{val_tar:.3f}" if val_tar is not None else "-")
            if cfg.val_every and step % cfg.val_every == 0 and not clock()[0]:
                metrics = validate_now(losses, lr)
                val_tar = (metrics["val_tar_at_far"].get(sel) or 0.0) if metrics else None
                net.train()
        if validated_at == step:
            stop, elapsed = clock()
            continue
        metrics = validate_now(losses, lr if losses else None)
        net.train()
        if metrics:
            val_tar = metrics["val_tar_at_far"].get(sel) or 0.0
            bar.set_postfix(epoch=epoch, loss=f"{metrics['train_loss'] or 0:.4f}", val_tar=f"{val_tar:.3f}")
        stop, elapsed = clock()
    bar.close()
    if not main:
        return {"step": step, "epoch": epoch, "rank": env.rank}
    last = dict(history[-1]) if history else {}
    last["best"] = {"step": best_step, f"val_tar@{sel}": best, "far": sel,
                    "by": _selection_name(history[-1], sel) if history else None,
                    "start_was_best": start.model is not None and best_step == 0}
    last["early_stop"] = stopped_early
    last["world_size"] = env.world_size
    return last


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _selection_name(metrics: dict, sel: str) -> str:
    return f"val TAR@{sel}" if metrics.get("val_tar_at_far") else "val cosine to the teacher"


def _selection_value(metrics: dict, sel: str) -> float:
    """What best.pt is chosen by: validation TAR at ``sel``; for unlabelled distillation (no genuine pairs among
    the held-out photos) the student's agreement with the teacher."""
    if metrics.get("val_tar_at_far"):
        return metrics["val_tar_at_far"].get(sel) or 0.0
    return metrics.get("val_teacher_cos") or 0.0


def _distiller(cfg: TrainConfig, run_dir: Path, cache, td, detector_model, device, main: bool):
    from .distill import Distiller, open_teacher, restrict, teacher_rows

    teacher = open_teacher(cfg.teacher, run_dir, threads=cfg.threads, device=device)
    tcache, rows = teacher_rows(cache, run_dir, teacher, detector_model, progress=cfg.progress and main)
    train_rows, val_rows = restrict(td, cache, rows)
    return Distiller(teacher, tcache, train_rows, val_rows, cfg.teacher_targets, cfg.distill_loss, run_dir, device,
                     progress=cfg.progress and main, relation_weight=cfg.relation_weight)


@dataclass
class _Start:
    """Where a run starts: from scratch (the MobileFaceNet, ArcFace 112 crops) or a pretrained model with its own
    preprocessing, alignment and landmark model (kept in the run directory for export)."""

    spec: InputSpec = field(default_factory=InputSpec)
    aligner: object = None
    model: torch.nn.Module | None = None
    model_config: dict | None = None
    pretrained: object = None  # export.dlib.pretrained.Pretrained

    def checkpoint_info(self, cache, step: int, train_identities: int) -> dict:
        info = {"input": self.spec.model_dump(mode="json")}
        if self.pretrained is None:
            return info
        from .dlib.pretrained import LANDMARK_FILE

        pre = self.pretrained
        provenance = pre.provenance
        base = {**info, "align": pre.align.model_dump(mode="json"), "landmark_file": LANDMARK_FILE, "init": pre.name}
        if step == 0:  # the unmodified pretrained weights: nothing was learnt from the training data
            return {**base, "licence": pre.licence, "provenance": provenance}
        provenance["fine_tuning"] = {"data": cache.manifest.get("source"), "manifest_sha256": cache.manifest_sha256,
                                     "train_identities": train_identities, "steps": step}
        licence = (f"{pre.licence}; fine-tuned on {cache.manifest.get('source')}: the fine-tuned weights also carry "
                   "the terms of that training data")
        return {**base, "licence": licence, "provenance": provenance}


def _start(cfg: TrainConfig, run_dir: Path) -> _Start:
    if not cfg.init:
        return _Start()
    from edgeface.alignment import Aligner

    from .dlib.pretrained import LANDMARK_FILE, load_pretrained
    from .model import DLIB_ARCH

    pre = load_pretrained(cfg.init)
    pre.write_landmarks(run_dir)
    return _Start(pre.spec, Aligner(pre.align, run_dir / LANDMARK_FILE), pre.model, {"arch": DLIB_ARCH}, pre)
