"""The aligned-crop cache: detect + align every photo of a folder once, keep the 112x112 crops.

Torch-free, so that training (``edgeface.export``) and evaluation (core) read the same cache. Layout of a cache
directory::

    crops.npy       (N, 112, 112, 3) uint8 BGR aligned crops, one per photo where a face was found
    manifest.json   source folder, detector, one item per crop (identity, source file, landmarks, score),
                    the photos without a face (``no_face``) and unreadable ones, and counts

Photos without a face are listed and counted, never silently dropped. The identity-disjoint train/val split
(:func:`split_identities`) is a pure function of the identity names and a seed; runs record it in
``split.json`` (:func:`write_split` / :func:`read_split`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .detect.base import Detector
from .errors import AlignmentError, EdgefaceError
from .faceset import Photo, aligned_crop, read_image, scan_identities
from .fileutil import atomic_write_bytes

MANIFEST = "manifest.json"
CROPS = "crops.npy"
SPLIT = "split.json"
FORMAT_VERSION = 1


@dataclass
class Crops:
    """Aligned crops of a set of photos, in photo order, and the photos that gave no crop."""

    crops: np.ndarray  # (N, size, size, 3) uint8 BGR
    items: list[dict]  # identity, source, landmarks, score per crop
    no_face: list[dict]  # identity, source, reason ("no face" | "unreadable")

    @property
    def identities(self) -> list[str]:
        return [it["identity"] for it in self.items]


def collect_crops(photos: list[Photo], detector: Detector, size: int = 112, root: Path | None = None,
                  progress: bool = True, aligner=None) -> Crops:
    """Run the core detector and the one alignment (``aligner``, default ArcFace at ``size``) on each photo
    (largest face)."""
    if aligner is not None:
        size = aligner.size
    from tqdm import tqdm

    crops, items, no_face = [], [], []
    for photo in tqdm(photos, desc="detect+align", unit="img", disable=not progress):
        source = str(photo.path.relative_to(root)) if root is not None else str(photo.path)
        img = read_image(photo.path)
        if img is None:
            no_face.append({"identity": photo.identity, "source": source, "reason": "unreadable"})
            continue
        try:
            crop, face = aligned_crop(detector, img, size, aligner)
        except AlignmentError as exc:
            no_face.append({"identity": photo.identity, "source": source, "reason": f"alignment failed: {exc}"})
            continue
        if crop is None:
            no_face.append({"identity": photo.identity, "source": source, "reason": "no face"})
            continue
        crops.append(crop)
        items.append({"identity": photo.identity, "source": source,
                      "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
                      "score": round(float(face.score), 4)})
    arr = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return Crops(arr, items, no_face)


def build_cache(data_dir: str | Path, out_dir: str | Path, detector: Detector, size: int = 112,
                progress: bool = True, aligner=None) -> "CropCache":
    """Prepare ``out_dir`` from the folder-per-identity photos under ``data_dir`` (with the model's ``aligner``;
    default ArcFace at ``size``). The manifest records the alignment, and every reader checks it."""
    from .alignment import Aligner

    aligner = aligner or Aligner.arcface(size)
    size = aligner.size
    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir)
    photos = scan_identities(data_dir)
    if not photos:
        raise EdgefaceError(f"no photos found under {data_dir}")
    got = collect_crops(photos, detector, size, root=data_dir, progress=progress, aligner=aligner)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (CROPS + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, got.crops)
    tmp.replace(out_dir / CROPS)
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": str(data_dir),
        "detector": {"name": getattr(detector, "name", type(detector).__name__),
                     "model": str(getattr(detector, "model_path", "")) or None},
        "size": size,
        "align": aligner.describe(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {"images": len(photos), "crops": len(got.items),
                   "no_face": sum(1 for n in got.no_face if n["reason"] != "unreadable"),
                   "unreadable": sum(1 for n in got.no_face if n["reason"] == "unreadable"),
                   "identities": len({p.identity for p in photos})},
        "items": got.items,
        "no_face": got.no_face,
    }
    atomic_write_bytes(out_dir / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode(), mode=0o644)
    return load_cache(out_dir)


def is_cache(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file() and (Path(path) / CROPS).is_file()


class CropCache:
    """A prepared cache: crops (memory-mapped), identity per crop, the manifest and its sha256."""

    def __init__(self, root: Path, manifest: dict, manifest_sha256: str, crops: np.ndarray) -> None:
        self.root = root
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self.crops = crops
        self.identities = np.array([it["identity"] for it in manifest["items"]])
        self.no_face: list[dict] = list(manifest.get("no_face", []))

    @property
    def identity_names(self) -> list[str]:
        """Every identity with at least one photo, also those whose photos all lack a face."""
        return sorted(set(self.identities.tolist()) | {n["identity"] for n in self.no_face})

    def select(self, identities) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """(crops, identity per crop, no-face entries) of the given identities only."""
        keep = set(identities)
        mask = np.array([i in keep for i in self.identities], bool)
        return np.asarray(self.crops[mask]), self.identities[mask], [n for n in self.no_face if n["identity"] in keep]


def load_cache(path: str | Path) -> CropCache:
    path = Path(path)
    if not is_cache(path):
        raise EdgefaceError(f"{path} is not a prepared crop cache ({MANIFEST} and {CROPS} expected); run `edgeface prepare`")
    raw = (path / MANIFEST).read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EdgefaceError(f"{path / MANIFEST}: not valid JSON: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise EdgefaceError(f"{path / MANIFEST}: unsupported format_version {manifest.get('format_version')!r}")
    crops = np.load(path / CROPS, mmap_mode="r")
    if len(crops) != len(manifest["items"]):
        raise EdgefaceError(f"{path}: {len(crops)} crops but {len(manifest['items'])} manifest items: the cache is corrupt")
    return CropCache(path, manifest, hashlib.sha256(raw).hexdigest(), crops)


def split_identities(identities, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Identity-disjoint (train, val) split; the same names and seed always give the same split."""
    names = sorted(set(identities))
    if len(names) < 2:
        raise EdgefaceError(f"need at least 2 identities to split, got {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = min(len(names) - 1, max(1, int(round(len(names) * val_fraction))))
    val = sorted(names[i] for i in order[:n_val])
    train = sorted(names[i] for i in order[n_val:])
    return train, val


def write_split(run_dir: str | Path, train: list[str], val: list[str], seed: int, val_fraction: float,
                manifest_sha256: str | None = None) -> Path:
    out = Path(run_dir) / SPLIT
    doc = {"seed": seed, "val_fraction": val_fraction, "manifest_sha256": manifest_sha256,
           "train": list(train), "val": list(val)}
    atomic_write_bytes(out, (json.dumps(doc, indent=1) + "\n").encode(), mode=0o644)
    return out


def read_split(run_dir_or_file: str | Path) -> dict:
    p = Path(run_dir_or_file)
    if p.is_dir():
        p = p / SPLIT
    if not p.is_file():
        raise EdgefaceError(f"no split found: {p}")
    doc = json.loads(p.read_text())
    if not {"train", "val"} <= set(doc):
        raise EdgefaceError(f"{p}: a split needs 'train' and 'val' lists")
    return doc
