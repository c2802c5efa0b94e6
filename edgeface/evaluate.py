"""Evaluate any embedder (exported ONNX / TFLite, a bundle, or a training checkpoint wrapped as an Embedder) on a
folder of photos or a prepared crop cache. Torch-free.

Two views, both on cosine similarities of L2-normalised embeddings (:mod:`edgeface.metrics`):

- verification over all pairs: TAR at FAR 1e-2 / 1e-3 / 1e-4 and EER. Every genuine pair is used; impostor pairs
  are all used up to ``max_impostors`` (2,000,000 by default), beyond that a seeded uniform sample of that many
  (the report's ``impostor_pairs`` says how many). All of celeba-loose (4,804 faces) has about 11.5M impostor
  pairs, so it is sampled; its 49 validation identities (about 980 faces) are not.
- one-shot open-set identification: half the identities (seeded) are enrolled with one photo each, their other
  photos are mated probes, the other identities are strangers: rank-1 and FNIR at FPIR 1e-2 / 1e-3.

Photos without a detected face are counted (``no_face``); in open-set they are failures: a mated probe without a
face is a miss. Enrollment photos are chosen among photos with a face (enrollment retakes until one is found).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cropcache import collect_crops, is_cache, load_cache, read_split
from .detect.base import Detector
from .faceset import scan_identities
from .fileutil import atomic_write_bytes
from .metrics import open_set, one_shot_split, roc, verification


@dataclass
class FaceSet:
    """Aligned crops with their identities, and the photos of the same identities that gave no face."""

    crops: np.ndarray  # (N, 112, 112, 3) uint8 BGR
    labels: np.ndarray  # (N,) identity names
    no_face: list[dict]  # identity, source, reason
    identities: int
    source: str


def load_faces(data: str | Path, detector: Detector | None = None, identities=None, progress: bool = True,
               aligner=None) -> FaceSet:
    """Faces of a prepared cache, or of a photo folder (detected and aligned now with ``detector`` and the model's
    ``aligner``, default ArcFace 112); restricted to ``identities`` when given (e.g. a run's validation split).
    A cache prepared with another alignment than ``aligner`` is refused."""
    data = Path(data)
    if is_cache(data):
        cache = load_cache(data)
        if aligner is not None:
            from .alignment import check_cache_alignment

            check_cache_alignment(cache.manifest, aligner, str(data))
        keep = cache.identity_names if identities is None else sorted(set(identities) & set(cache.identity_names))
        crops, labels, no_face = cache.select(keep)
        return FaceSet(crops, labels, no_face, len(keep), str(data))
    if detector is None:
        raise ValueError("a photo folder needs a detector (or prepare a cache first)")
    photos = scan_identities(data)
    if identities is not None:
        wanted = set(identities)
        photos = [p for p in photos if p.identity in wanted]
    got = collect_crops(photos, detector, root=data, progress=progress, aligner=aligner)
    return FaceSet(got.crops, np.array(got.identities), got.no_face, len({p.identity for p in photos}), str(data))


def split_identities_of(run_dir: str | Path, part: str = "val") -> list[str]:
    """The identities of one part ("val" or "train") of a training run's recorded split."""
    return list(read_split(run_dir)[part])


def embed_all(embedder, crops: np.ndarray, batch: int = 64, progress: bool = True) -> np.ndarray:
    from tqdm import tqdm

    out = [embedder.embed(np.ascontiguousarray(crops[i:i + batch]))
           for i in tqdm(range(0, len(crops), batch), desc="embed", unit="batch", disable=not progress)]
    return np.concatenate(out) if out else np.zeros((0, embedder.embedding_size), np.float32)


def evaluate(model, faces: FaceSet, max_impostors: int | None = 2_000_000, seed: int = 0,
             enrolled_fraction: float = 0.5, batch: int = 64, progress: bool = True):
    """(report dict, genuine scores, impostor scores) of ``model`` (a :class:`edgeface.recognizer.Recognizer`, or
    a bare embedder in tests). Report keys: tar_at_far, eer, rank1, fnir_at_fpir, images, identities, no_face,
    plus pair counts, thresholds and the open-set breakdown."""
    embedder = getattr(model, "embedder", model)
    if len(np.unique(faces.labels)) < 2:
        raise ValueError(f"{faces.source}: need faces of at least 2 identities to evaluate")
    from .scorer import scorer_of

    scorer = scorer_of(model)
    emb = embed_all(model, faces.crops, batch, progress)
    ver, genuine, impostor = verification(emb, faces.labels, max_impostors=max_impostors, seed=seed, scorer=scorer)
    gallery, mated, non_mated = one_shot_split(faces.labels, enrolled_fraction, seed)
    enrolled = set(faces.labels[gallery].tolist())
    mated_fail = sum(1 for n in faces.no_face if n["identity"] in enrolled)
    osr = open_set(emb, faces.labels, gallery, mated, non_mated, mated_failures=mated_fail,
                   non_mated_failures=len(faces.no_face) - mated_fail, scorer=scorer)
    report = {
        "tar_at_far": ver.tar_at_far,
        "eer": ver.eer,
        "rank1": osr.rank1,
        "fnir_at_fpir": osr.fnir_at_fpir,
        "images": int(len(faces.crops) + len(faces.no_face)),
        "identities": int(faces.identities),
        "no_face": int(len(faces.no_face)),
        "faces": int(len(faces.crops)),
        "eer_threshold": ver.eer_threshold,
        "genuine_pairs": ver.genuine_pairs,
        "impostor_pairs": ver.impostor_pairs,
        "impostors_sampled": max_impostors is not None and ver.impostor_pairs >= max_impostors,
        "open_set": osr.to_json(),
        "seed": seed,
        "scorer": scorer.kind,
        "data": faces.source,
        "model": {"path": str(getattr(embedder, "path", "")), "key": getattr(embedder, "key", None),
                  "backend": getattr(embedder, "backend", None),
                  "fingerprint": getattr(embedder, "fingerprint", None)},
    }
    return report, genuine, impostor


def write_report(report: dict, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(report, indent=2) + "\n").encode(), mode=0o644)
    return path


def plot_roc_det(genuine: np.ndarray, impostor: np.ndarray, path: str | Path, title: str = "") -> Path:
    """ROC (TAR against FAR, log FAR) and DET (FNMR against FMR, log-log) side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar, _ = roc(genuine, impostor)
    floor = 1.0 / max(len(impostor), 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax1.plot(np.maximum(far, floor), tar)
    ax1.set_xscale("log")
    ax1.set_xlim(floor, 1)
    ax1.set_ylim(0, 1)
    ax1.set_xlabel("false accept rate")
    ax1.set_ylabel("true accept rate")
    ax1.set_title("ROC")
    for x in (1e-2, 1e-3, 1e-4):
        if x >= floor:
            ax1.axvline(x, color="grey", lw=0.5, ls=":")
    ax1.grid(alpha=0.3)
    frr = np.maximum(1.0 - tar, 1.0 / max(len(genuine), 1))
    ax2.plot(np.maximum(far, floor), frr)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("false match rate")
    ax2.set_ylabel("false non-match rate")
    ax2.set_title("DET")
    ax2.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
