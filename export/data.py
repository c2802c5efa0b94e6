"""Training data: the aligned-crop cache (:mod:`edgeface.cropcache`, shared with evaluation), an identity-disjoint
train/val split recorded in the run directory, and batches as model-input tensors.

``--data`` may be a prepared cache or a photo folder; a folder is prepared once into ``RUN_DIR/cache`` (reused on
``--resume``), with the core detector and alignment, exactly as ``edgeface prepare`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgeface.bundle import DEFAULT_INPUT, InputSpec
from edgeface.cropcache import (CropCache, build_cache, is_cache, load_cache, read_split, split_identities,
                                write_split)
from edgeface.preprocess import to_model_input

__all__ = ["prepare", "open_cache", "TrainData", "make_split", "to_tensor"]


def prepare(data_dir, out_dir, detector_model=None, detector: str = "yunet", progress: bool = True,
            aligner=None) -> CropCache:
    """Detect + align every photo of ``data_dir`` into a cache at ``out_dir`` (with the model's ``aligner``)."""
    from edgeface.config import DetectorConfig
    from edgeface.recognizer import build_detector

    det = build_detector(DetectorConfig(kind=detector, model_path=detector_model), frames=False)
    return build_cache(data_dir, out_dir, det, progress=progress, aligner=aligner)


def open_cache(data, run_dir: Path, detector_model=None, progress: bool = True, aligner=None) -> CropCache:
    """The training cache: ``data`` itself when it is one, else ``RUN_DIR/cache`` (prepared once). Either must
    have been prepared with the model's alignment (``aligner``; default ArcFace 112)."""
    from edgeface.alignment import Aligner, check_cache_alignment

    aligner = aligner or Aligner.arcface(DEFAULT_INPUT.size[0])
    cached = Path(run_dir) / "cache"
    if is_cache(data) or is_cache(cached):
        where = data if is_cache(data) else cached
        cache = load_cache(where)
        check_cache_alignment(cache.manifest, aligner, str(where))
        return cache
    return prepare(data, cached, detector_model, progress=progress, aligner=aligner)


@dataclass
class TrainData:
    train_x: np.ndarray  # (N, 112, 112, 3) uint8 BGR
    train_y: np.ndarray  # (N,) int labels
    val_x: np.ndarray
    val_y: np.ndarray
    train_ids: list[str]
    val_ids: list[str]
    manifest_sha256: str


def make_split(cache: CropCache, run_dir: Path, val_fraction: float = 0.2, seed: int = 0) -> TrainData:
    """Split by identity (seeded), or reuse the split already recorded in ``run_dir`` (resume)."""
    run_dir = Path(run_dir)
    if (run_dir / "split.json").is_file():
        doc = read_split(run_dir)
        train_ids, val_ids = doc["train"], doc["val"]
    else:
        train_ids, val_ids = split_identities(cache.identity_names, val_fraction, seed)
        write_split(run_dir, train_ids, val_ids, seed, val_fraction, cache.manifest_sha256)
    tx, ty, _ = cache.select(train_ids)
    vx, vy, _ = cache.select(val_ids)
    names = {n: i for i, n in enumerate(sorted(set(train_ids) | set(val_ids)))}
    return TrainData(tx, np.array([names[n] for n in ty], np.int64), vx, np.array([names[n] for n in vy], np.int64),
                     list(train_ids), list(val_ids), cache.manifest_sha256)


def to_tensor(crops_bgr: np.ndarray, spec: InputSpec = DEFAULT_INPUT) -> torch.Tensor:
    """uint8 BGR crops -> the model input, through the one core preprocessing."""
    return torch.from_numpy(to_model_input(crops_bgr, spec))
