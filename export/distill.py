"""Distillation: a student (the MobileFaceNet on ArcFace 112 crops) learns to reproduce a teacher's embeddings
(``edgeface train --teacher BUNDLE|dlib-resnet-v1``).

Each model sees the face aligned its own way: the student its 112 crop from the run's cache, the teacher its own
chip (dlib's 150x150 ``get_face_chip`` for the ResNet), cut from the same photo into ``RUN_DIR/teacher-cache`` at
prepare time with the same detector; the two caches are matched photo by photo (manifest ``source``).

Targets (``--teacher-targets``):

- ``cached`` (default, measured faster: docs/training.md): the teacher embeds every training chip once and its
  mirror image once (``RUN_DIR/teacher/targets.npy``, reused on ``--resume``); a student view that augmentation
  flipped is pulled toward the mirrored chip's embedding, the photometric and small affine jitter toward the
  clean view's (augmentation invariance is what the student should learn anyway).
- ``online``: the teacher embeds its chip under the very augmentation the student's crop got (same random
  draws) in every step; exact, and one teacher forward per face per step.

Objectives (``--distill-loss``):

- ``cosine``: ``1 - cos(student, teacher)``; ``l2``: squared L2 of the raw embeddings.
- ``centred``: ``1 - cos(student, t - mu)`` with ``t`` the teacher's normalised embedding and ``mu`` their mean over
  the training chips. dlib's descriptors sit in a narrow cone (different people have cosine ~0.8), so plain cosine
  is mostly satisfied by the cone's mean direction; after centring, the student's cosine reproduces the spread
  that tells people apart (the direction left once the shared part is removed).
- ``relational``: ``centred`` plus ``--relation-weight`` x the mean squared difference between the student's and
  the centred teacher's cosine-similarity matrices over the batch (off-diagonal), the quantity verification
  thresholds. Under DDP it is computed over each rank's own rows (DDP averages the ranks' gradients).

Labels are optional: with ``--metric-weight 0`` (the default with ``--teacher``) no triplet/pair term is computed,
so a flat folder of photos (every photo its own "identity", ``--k 1``) trains. Validation reports the mean cosine
between student and teacher on the held-out photos (``val_teacher_cos``), and TAR/EER when the held-out
identities have genuine pairs; best.pt is chosen by TAR when there is one, else by ``val_teacher_cos``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgeface.bundle import InputSpec
from edgeface.errors import EdgefaceError
from edgeface.preprocess import l2_normalize

from .augment import AugmentConfig, augment, augment_flips, value_range
from .data import to_tensor

log = logging.getLogger(__name__)

TEACHER_CACHE = "teacher-cache"
TEACHER_DIR = "teacher"
DISTILL_LOSSES = ("cosine", "l2", "centred", "relational")
#: teacher rows sampled to estimate the centre of its embeddings when targets are computed online
CENTRE_SAMPLE = 1024
TARGET_MODES = ("cached", "online")


@dataclass
class Teacher:
    """A frozen embedder with its own preprocessing and alignment: dlib's ResNet (torch) or a bundle's fp32
    ONNX model (onnxruntime)."""

    name: str
    spec: InputSpec
    aligner: object  # edgeface.alignment.Aligner
    embedding_size: int
    fingerprint: str
    licence: str | None
    provenance: dict = field(default_factory=dict)
    torch_model: torch.nn.Module | None = None
    embedder: object = None  # edgeface.runtime Embedder

    @torch.no_grad()
    def embed_input(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) embeddings of preprocessed input (N, 3, H, W), float32 on x's device."""
        if self.torch_model is not None:
            self.torch_model.to(x.device)
            return self.torch_model(x).float()
        raw = np.asarray(self.embedder._run(x.detach().float().cpu().numpy()), np.float32).reshape(len(x), -1)
        return torch.from_numpy(raw).to(x.device)

    def checkpoint_info(self, cache, steps: int, objective: dict | None = None) -> dict:
        """``provenance`` / ``licence`` for the student's checkpoint (the exporter copies them into the bundle)."""
        data = cache.manifest.get("source")
        provenance = {"distilled_from": {"teacher": self.name, "fingerprint": self.fingerprint,
                                         "teacher_provenance": self.provenance, "teacher_licence": self.licence,
                                         "objective": objective or {}},
                      "training": {"data": data, "manifest_sha256": cache.manifest_sha256, "steps": steps}}
        licence = (f"distilled from {self.name} ({self.licence or 'licence unknown'}); trained on {data}: the "
                   "student's weights also carry the terms of that training data")
        return {"provenance": provenance, "licence": licence}


def open_teacher(name: str, run_dir: Path, threads: int = 1, device: torch.device | None = None) -> Teacher:
    """``dlib-resnet-v1`` (dlib's ported ResNet; its landmark model written to RUN_DIR/teacher) or a bundle
    directory (its fp32 ONNX model)."""
    from edgeface.alignment import Aligner

    tdir = Path(run_dir) / TEACHER_DIR
    tdir.mkdir(parents=True, exist_ok=True)
    from .dlib.pretrained import PRETRAINED

    if name in PRETRAINED:
        from .dlib.pretrained import LANDMARK_FILE, load_pretrained

        pre = load_pretrained(name)
        if not (tdir / LANDMARK_FILE).is_file():
            pre.write_landmarks(tdir)
        model = pre.model.eval().requires_grad_(False)
        if device is not None:
            model.to(device)
        return Teacher(name, pre.spec, Aligner(pre.align, tdir / LANDMARK_FILE), 128,
                       pre.provenance["source_files"][0]["sha256"], pre.licence, pre.provenance, torch_model=model)
    from edgeface.bundle import Bundle
    from edgeface.runtime import open_embedder

    path = Path(name)
    if not path.is_dir():
        raise EdgefaceError(f"--teacher {name}: neither a bundle directory nor one of {', '.join(PRETRAINED)}")
    bundle = Bundle.load(path)
    key = "onnx_fp32" if "onnx_fp32" in bundle.meta.models else bundle.default_key()
    emb = open_embedder(bundle, key, threads=threads)
    return Teacher(str(path.resolve()), bundle.meta.input, emb.aligner, bundle.meta.embedding_size, emb.fingerprint,
                   bundle.meta.licence, dict(bundle.meta.provenance), embedder=emb)


def teacher_rows(cache, run_dir: Path, teacher: Teacher, detector_model=None, progress: bool = True):
    """(teacher chip cache, index of each student-cache crop's teacher chip or -1). The teacher cache is
    RUN_DIR/teacher-cache, prepared once from the photo folder the student cache was made from."""
    from edgeface.alignment import check_cache_alignment
    from edgeface.cropcache import is_cache, load_cache

    where = Path(run_dir) / TEACHER_CACHE
    if is_cache(where):
        tcache = load_cache(where)
        check_cache_alignment(tcache.manifest, teacher.aligner, str(where))
    else:
        from .data import prepare

        source = cache.manifest.get("source")
        model = detector_model or (cache.manifest.get("detector") or {}).get("model")
        if not source or not Path(source).is_dir():
            raise EdgefaceError(f"--teacher: the photos the cache was made from ({source}) are needed to cut the "
                                "teacher's own chips, and are not there")
        tcache = prepare(source, where, model, progress=progress, aligner=teacher.aligner)
    return tcache, chip_rows(cache, tcache)


def chip_rows(cache, tcache) -> np.ndarray:
    """For each crop of the student's cache, the row of the teacher's chip of the same photo, or -1."""
    by_source = {it["source"]: i for i, it in enumerate(tcache.manifest["items"])}
    return np.array([by_source.get(it["source"], -1) for it in cache.manifest["items"]], np.int64)


def restrict(td, cache, rows: np.ndarray):
    """Keep only the training/validation crops that have a teacher chip; (train teacher rows, val teacher rows)."""
    out = []
    for part in ("train", "val"):
        ids = set(getattr(td, f"{part}_ids"))
        r = rows[np.array([i in ids for i in cache.identities], bool)]
        keep = r >= 0
        if not keep.all():
            log.info("%d %s photos have no teacher chip (the teacher's alignment found no face) and are left out",
                     int((~keep).sum()), part)
        setattr(td, f"{part}_x", getattr(td, f"{part}_x")[keep])
        setattr(td, f"{part}_y", getattr(td, f"{part}_y")[keep])
        out.append(r[keep])
    return out


@torch.no_grad()
def embed_chips(teacher: Teacher, chips: np.ndarray, device, mirror: bool = False, batch: int = 32,
                progress: bool = False) -> np.ndarray:
    from tqdm import tqdm

    out = []
    for i in tqdm(range(0, len(chips), batch), desc="teacher", unit="batch", disable=not progress):
        c = np.asarray(chips[i:i + batch])
        if mirror:
            c = c[:, :, ::-1]
        out.append(teacher.embed_input(to_tensor(np.ascontiguousarray(c), teacher.spec).to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, teacher.embedding_size), np.float32)


def cached_targets(teacher: Teacher, tcache, run_dir: Path, device, progress: bool = True) -> np.ndarray:
    """(N_chips, 2, D) raw teacher embeddings of every chip (view 0) and its mirror (view 1), cached in
    RUN_DIR/teacher/targets.npy for this teacher and chip cache."""
    tdir = Path(run_dir) / TEACHER_DIR
    key = {"teacher": teacher.name, "fingerprint": teacher.fingerprint, "chips_sha256": tcache.manifest_sha256}
    meta, arr = tdir / "targets.json", tdir / "targets.npy"
    if meta.is_file() and arr.is_file() and json.loads(meta.read_text()) == key:
        return np.load(arr)
    chips = tcache.crops
    t = np.stack([embed_chips(teacher, chips, device, False, progress=progress),
                  embed_chips(teacher, chips, device, True, progress=progress)], 1).astype(np.float32)
    tmp = tdir / "targets.npy.tmp"
    with open(tmp, "wb") as f:
        np.save(f, t)
    tmp.replace(arr)
    meta.write_text(json.dumps(key) + "\n")
    return t


def relation_gap(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two cosine-similarity matrices of a batch, over the off-diagonal pairs."""
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    n = len(s)
    off = ~torch.eye(n, dtype=torch.bool, device=s.device)
    return ((s @ s.T - t @ t.T)[off] ** 2).mean()


class Distiller:
    """The teacher term of one step: targets for this rank's rows, and the loss against them."""

    def __init__(self, teacher: Teacher, tcache, train_rows: np.ndarray, val_rows: np.ndarray, mode: str,
                 loss: str, run_dir: Path, device, progress: bool, relation_weight: float = 1.0) -> None:
        if mode not in TARGET_MODES:
            raise EdgefaceError(f"unknown --teacher-targets {mode!r}; use {' or '.join(TARGET_MODES)}")
        if loss not in DISTILL_LOSSES:
            raise EdgefaceError(f"unknown --distill-loss {loss!r}; use {' or '.join(DISTILL_LOSSES)}")
        self.teacher, self.tcache, self.mode, self.loss = teacher, tcache, mode, loss
        self.train_rows, self.device = train_rows, device
        self.relation_weight = float(relation_weight)
        self.vrange = value_range(teacher.spec)
        if mode == "cached":
            self.targets = cached_targets(teacher, tcache, run_dir, device, progress)
            self.val_targets = self.targets[val_rows, 0]
        else:
            self.targets = None
            self.val_targets = embed_chips(teacher, tcache.crops[val_rows], device, progress=progress)
        self.centred = loss in ("centred", "relational")
        self.centre = None
        if self.centred:
            centre = self.teacher_centre(progress)
            self.centre = torch.from_numpy(centre).to(device)
            self.val_targets = l2_normalize(self.val_targets) - centre

    def teacher_centre(self, progress: bool) -> np.ndarray:
        """Mean of the teacher's normalised embeddings over the training chips (every chip and its mirror when
        cached; a seeded sample of CENTRE_SAMPLE chips when online)."""
        if self.targets is not None:
            t = self.targets[self.train_rows].reshape(-1, self.targets.shape[-1])
        else:
            rows = self.train_rows
            if len(rows) > CENTRE_SAMPLE:
                rows = np.sort(np.random.default_rng(0).choice(rows, CENTRE_SAMPLE, replace=False))
            t = embed_chips(self.teacher, self.tcache.crops[rows], self.device, progress=progress)
        if not len(t):
            raise EdgefaceError("--distill-loss centred/relational: no training photo has a teacher chip")
        return l2_normalize(np.asarray(t, np.float32)).mean(0).astype(np.float32)

    def info(self) -> dict:
        """How the student was taught (recorded in the checkpoint's provenance)."""
        out = {"loss": self.loss, "targets": self.mode}
        if self.loss == "relational":
            out["relation_weight"] = self.relation_weight
        if self.centred:
            out["teacher_centre_norm"] = round(float(self.centre.norm()), 6)
        return out

    def step_targets(self, idx: np.ndarray, gen_state: torch.Tensor | None, rows, aug: AugmentConfig) -> torch.Tensor:
        """Raw teacher embeddings for training rows ``idx`` under the augmentation drawn from ``gen_state`` (the
        generator state before the student's batch was augmented; None: no augmentation)."""
        trows = self.train_rows[idx]
        if self.mode == "cached":
            view = np.zeros(len(idx), np.int64)
            if gen_state is not None:
                g = torch.Generator().set_state(gen_state)
                view = augment_flips(g, len(idx), aug, rows).numpy().astype(np.int64)
            return torch.from_numpy(self.targets[trows, view]).to(self.device)
        x = to_tensor(np.asarray(self.tcache.crops[trows]), self.teacher.spec)
        if gen_state is not None:
            x = augment(x, torch.Generator().set_state(gen_state), aug, self.vrange, rows)
        return self.teacher.embed_input(x.to(self.device))

    def term(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = out.float()
        if self.loss == "l2":
            return ((out - target) ** 2).sum(1).mean()
        if self.centred:
            target = F.normalize(target.float(), dim=1) - self.centre
        loss = (1.0 - F.cosine_similarity(out, target, dim=1)).mean()
        if self.loss == "relational" and len(out) > 1:
            loss = loss + self.relation_weight * relation_gap(out, target)
        return loss

    def agreement(self, val_emb: np.ndarray) -> float:
        """Mean cosine between the student's (normalised) validation embeddings and the teacher's."""
        return float(np.mean(np.sum(val_emb * l2_normalize(self.val_targets), axis=1))) if len(val_emb) else 0.0
