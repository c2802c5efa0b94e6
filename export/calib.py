"""Real faces for int8 calibration and for the parity report, aligned by the core.

``--calib DIR`` is a folder of photos (``DIR/<identity>/*.jpg`` or flat ``DIR/*.jpg``), aligned here by the core
detector and :func:`edgeface.faceset.aligned_crop` (through :func:`edgeface.cropcache.collect_crops`), or an
aligned-crop cache made by ``edgeface prepare`` (same alignment, done once).

Identities are split so that nothing is measured on the faces it was calibrated on:

* calibration crops come from the *calibration identities*,
* the method-selection probe comes from other crops of the calibration identities,
* the parity report's validation set is ``--val DIR`` or, by default, the *validation identities* of the
  ``--calib`` data: a checkpoint run's ``split.json`` ``val`` list when there is one (faces training never saw),
  else :func:`edgeface.cropcache.split_identities` with ``val_fraction=0.2, seed=0`` (the training default, so
  both paths hold out the same people).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError

#: the CLI never calibrates on fewer crops than this
MIN_CALIB_CROPS = 200
DEFAULT_CALIB_CROPS = 512
DEFAULT_PROBE_CROPS = 256
VAL_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass
class FaceSet:
    """Aligned 112x112 BGR uint8 crops and the identity of each."""

    crops: np.ndarray
    labels: np.ndarray
    source: str
    no_face: int = 0

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def identities(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    @property
    def flat(self) -> bool:
        """True when every crop is its own identity (a flat folder): no genuine pairs to verify with."""
        return len(self.identities) == len(self)

    def subset(self, identities) -> "FaceSet":
        keep = set(identities)
        mask = np.array([lab in keep for lab in self.labels], bool)
        return FaceSet(np.asarray(self.crops[mask]), self.labels[mask], self.source)


def load_faces(path: str | Path, detector=None, progress: bool = True, aligner=None) -> FaceSet:
    """All aligned crops of a photo folder (detected and aligned now with the model's ``aligner``, default ArcFace
    112) or of a prepared crop cache (refused when prepared with another alignment)."""
    from edgeface.cropcache import collect_crops, is_cache, load_cache
    from edgeface.faceset import scan_identities

    path = Path(path)
    if is_cache(path):
        cache = load_cache(path)
        if aligner is not None:
            from edgeface.alignment import check_cache_alignment

            check_cache_alignment(cache.manifest, aligner, str(path))
        return FaceSet(np.asarray(cache.crops), np.asarray(cache.identities), str(path), len(cache.no_face))
    if not path.is_dir():
        raise EdgefaceError(f"face folder not found: {path}")
    photos = scan_identities(path)
    if not photos:
        raise EdgefaceError(f"no photos under {path} (expected DIR/<identity>/*.jpg or DIR/*.jpg)")
    if detector is None:
        from edgeface.recognizer import build_detector

        detector = build_detector(frames=False)
    got = collect_crops(photos, detector, root=path, progress=progress, aligner=aligner)
    labels = np.array([it["identity"] for it in got.items])
    return FaceSet(got.crops, labels, str(path), len(got.no_face))


def split_calib_val(faces: FaceSet, val_identities: list[str] | None = None) -> tuple[FaceSet, FaceSet | None]:
    """(calibration-side faces, validation faces) with disjoint identities.

    ``val_identities``: the held-out people (e.g. a training run's split); default: the seed-0 20 % split.
    A flat folder has no identities to split: everything is calibration, validation must come from ``--val``."""
    if faces.flat:
        return faces, None
    from edgeface.cropcache import split_identities

    if val_identities is None:
        _, val_identities = split_identities(faces.identities, VAL_FRACTION, SPLIT_SEED)
    val_set = set(val_identities) & set(faces.identities)
    calib_ids = [i for i in faces.identities if i not in val_set]
    if not val_set or not calib_ids:
        return faces, None
    return faces.subset(calib_ids), faces.subset(sorted(val_set))


def pick_calibration(faces: FaceSet, n_calib: int = DEFAULT_CALIB_CROPS, n_probe: int = DEFAULT_PROBE_CROPS,
                     min_crops: int = MIN_CALIB_CROPS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(calibration crops, probe crops): disjoint crops, spread round-robin over identities so that no single
    person dominates the activation ranges. Raises when fewer than ``min_crops`` can be used."""
    if len(faces) < min_crops:
        raise EdgefaceError(
            f"{faces.source}: only {len(faces)} aligned face crops for calibration, at least {min_crops} are needed "
            f"({faces.no_face} photos had no face); add photos or point --calib at a larger folder")
    rng = np.random.default_rng(seed)
    by_id: dict[str, list[int]] = {}
    for idx in rng.permutation(len(faces)):
        by_id.setdefault(str(faces.labels[idx]), []).append(int(idx))
    order: list[int] = []
    queues = [by_id[k] for k in sorted(by_id)]
    depth = 0
    while len(order) < len(faces):
        for q in queues:
            if depth < len(q):
                order.append(q[depth])
        depth += 1
    n_calib = max(min_crops, min(n_calib, len(faces)))
    calib = order[:n_calib]
    probe = order[n_calib:n_calib + n_probe]
    if not probe:  # a small set: probe on the calibration crops themselves rather than not at all
        probe = calib[: min(n_probe, len(calib))]
    return np.asarray(faces.crops[np.sort(calib)]), np.asarray(faces.crops[np.sort(probe)])
