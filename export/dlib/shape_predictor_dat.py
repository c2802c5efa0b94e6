"""dlib's ``shape_predictor_5_face_landmarks.dat`` read to the last byte, and converted to edgeface's ``.npz``.

Layout (``dlib/image_processing/shape_predictor.h``, ``serialize``), every value in dlib's integer encoding
(:mod:`edgeface.export.dlib.serialize`):

- version 1;
- ``initial_shape``: a float column matrix, its dimensions stored negated (-10, -1), then x0, y0, ..., x4, y4 in
  box-relative coordinates;
- ``forests``: cascades x trees; a tree is its splits (``ulong idx1, ulong idx2, float thresh``) then its leaves
  (float column matrices of 10 values); trees are complete (leaves = splits + 1, a power of two);
- ``anchor_idx``: per cascade, one ulong per feature pixel; ``deltas``: per cascade, one (x, y) float pair per
  feature pixel.

The 68-point model is refused by its shape (68 parts): it was trained on iBUG 300-W, whose terms forbid
commercial use. The torch-free core reads the ``.npz`` (:class:`edgeface.landmarks.shape5.ShapePredictor5`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeface.errors import ModelError
from edgeface.fileutil import atomic_write_bytes
from edgeface.landmarks.shape5 import FORMAT_TAG, FORMAT_VERSION

from .serialize import DlibReader

PARTS = 5
REFUSED_68 = (
    "is dlib's 68-point landmark model (68 parts): its training data (iBUG 300-W) forbids commercial use, so "
    "edgeface refuses it; use shape_predictor_5_face_landmarks.dat (public domain)"
)


@dataclass(frozen=True)
class ShapePredictorDat:
    """The arrays of a 5-point ``.dat``: C cascades, T trees of S splits and L = S + 1 leaves, F feature pixels."""

    initial_shape: np.ndarray  # (2 * parts,) float32, x0, y0, x1, y1, ...
    split_idx1: np.ndarray  # (C, T, S) int32
    split_idx2: np.ndarray  # (C, T, S) int32
    split_thresh: np.ndarray  # (C, T, S) float32
    leaf_values: np.ndarray  # (C, T, L, 2 * parts) float32
    anchor_idx: np.ndarray  # (C, F) int32
    deltas: np.ndarray  # (C, F, 2) float32
    sha256: str
    name: str


def _floats(pairs: np.ndarray, r: DlibReader, what: str) -> np.ndarray:
    """(…, 2) mantissa/exponent integer pairs -> float32, refusing inf/nan (exponents 32000-32002)."""
    mant, expo = pairs[..., 0], pairs[..., 1]
    if np.any(expo >= 32000) or np.any(np.abs(expo) > 1100):
        raise r.fail(f"{what} holds an infinite, NaN or out-of-range value")
    return np.ldexp(mant.astype(np.float64), expo.astype(np.int32)).astype(np.float32)


def _column_matrix(r: DlibReader, what: str, nr: int, nc: int) -> np.ndarray:
    """The values of a float column matrix whose stored dimensions ``nr``, ``nc`` were just read."""
    if nc != -1 or nr >= 0:
        raise r.fail(f"{what} is not a float column matrix (stored dimensions {nr} x {nc})")
    if nr == -136:
        raise ModelError(f"{r.name} {REFUSED_68}")
    if nr != -2 * PARTS:
        raise r.fail(f"{what} has {-nr // 2} parts, not {PARTS}: not dlib's 5-point landmark model")
    return _floats(r.ints(2 * PARTS * 2).reshape(-1, 2), r, what)


def _read_forest(r: DlibReader, n_trees: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One cascade's trees, read in bulk: every tree must have the same complete layout as the first."""
    n_splits = r.uint()
    n_leaves = n_splits + 1
    if n_splits < 1 or n_splits > 1023 or n_leaves & n_splits:
        raise r.fail(f"a tree with {n_splits} splits is not a complete binary tree")
    p2 = 2 * PARTS
    per_tree = 1 + 4 * n_splits + 1 + n_leaves * (2 + 2 * p2)
    tok = np.concatenate([[n_splits], r.ints(per_tree * n_trees - 1)]).reshape(n_trees, per_tree)
    splits = tok[:, 1 : 1 + 4 * n_splits].reshape(n_trees, n_splits, 4)
    leaves = tok[:, 2 + 4 * n_splits :].reshape(n_trees, n_leaves, 2 + 2 * p2)
    if (
        np.any(tok[:, 0] != n_splits)
        or np.any(tok[:, 1 + 4 * n_splits] != n_leaves)
        or np.any(leaves[:, :, 0] != -p2)
        or np.any(leaves[:, :, 1] != -1)
    ):
        raise r.fail("the trees of a cascade do not share one layout (splits, leaves of 10 values)")
    if np.any(splits[:, :, :2] < 0):
        raise r.fail("a split index is negative")
    thresh = _floats(splits[:, :, 2:], r, "a split threshold")
    values = _floats(leaves[:, :, 2:].reshape(n_trees, n_leaves, p2, 2), r, "a leaf value")
    return splits[:, :, 0], splits[:, :, 1], thresh, values


def read_shape_predictor(path: str | Path) -> ShapePredictorDat:
    """Read a 5-point ``.dat`` completely; :class:`ModelError` for anything else (truncated, 68-point, not dlib)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    r = DlibReader(data, path.name)
    try:  # a file that does not even start like a shape_predictor (a dlib network, anything else)
        version, nr, nc = r.int(), r.int(), r.int()
    except ModelError as exc:
        detail = str(exc).removeprefix(f"{path.name}: ")
        raise ModelError(f"{path.name}: not a dlib shape_predictor file ({detail})") from exc
    if version != 1:
        raise r.fail("not a dlib shape_predictor file (version is not 1)")
    initial = _column_matrix(r, "initial_shape", nr, nc)
    n_cascades = r.uint()
    if not 1 <= n_cascades <= 100:
        raise r.fail(f"{n_cascades} cascades: not a dlib shape_predictor file")
    forests = []
    for _ in range(n_cascades):
        n_trees = r.uint()
        if not 1 <= n_trees <= 10000 or (forests and n_trees != len(forests[0][0])):
            raise r.fail(f"{n_trees} trees in a cascade: not a dlib shape_predictor file")
        forests.append(_read_forest(r, n_trees))
    if len({f[0].shape for f in forests}) != 1:
        raise r.fail("the cascades' trees differ in depth")
    idx1, idx2, thresh, leaves = (np.stack(parts) for parts in zip(*forests))

    if r.uint() != n_cascades:
        raise r.fail("anchor_idx does not have one entry per cascade")
    anchors = []
    for _ in range(n_cascades):
        n = r.uint()
        if not 1 <= n <= 100000 or (anchors and n != len(anchors[0])):
            raise r.fail(f"{n} feature pixels in a cascade: not a dlib shape_predictor file")
        anchors.append(r.ints(n))
    anchor_idx = np.stack(anchors)
    n_pixels = anchor_idx.shape[1]
    if r.uint() != n_cascades:
        raise r.fail("deltas do not have one entry per cascade")
    deltas = []
    for _ in range(n_cascades):
        if r.uint() != n_pixels:
            raise r.fail("deltas and anchor_idx differ in length")
        deltas.append(_floats(r.ints(4 * n_pixels).reshape(n_pixels, 2, 2), r, "a delta"))
    r.expect_end()

    if np.any(anchor_idx < 0) or np.any(anchor_idx >= PARTS):
        raise ModelError(f"{path.name}: an anchor index is not one of the {PARTS} parts")
    if np.any(idx1 >= n_pixels) or np.any(idx2 >= n_pixels):
        raise ModelError(f"{path.name}: a split refers to a feature pixel beyond the {n_pixels} of its cascade")
    return ShapePredictorDat(
        initial_shape=initial,
        split_idx1=idx1.astype(np.int32),
        split_idx2=idx2.astype(np.int32),
        split_thresh=thresh,
        leaf_values=leaves,
        anchor_idx=anchor_idx.astype(np.int32),
        deltas=np.stack(deltas),
        sha256=hashlib.sha256(data).hexdigest(),
        name=path.name,
    )


def convert_shape_predictor(dat_path: str | Path, out_npz: str | Path) -> Path:
    """Read ``dat_path`` and write the arrays the torch-free core loads to ``out_npz`` (atomically)."""
    sp = read_shape_predictor(dat_path)
    import io

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        format=np.array(FORMAT_TAG),
        version=np.array(FORMAT_VERSION, np.int32),
        source_name=np.array(sp.name),
        source_sha256=np.array(sp.sha256),
        initial_shape=sp.initial_shape,
        split_idx1=sp.split_idx1,
        split_idx2=sp.split_idx2,
        split_thresh=sp.split_thresh,
        leaf_values=sp.leaf_values,
        anchor_idx=sp.anchor_idx,
        deltas=sp.deltas,
    )
    out = Path(out_npz)
    atomic_write_bytes(out, buf.getvalue(), mode=0o644)
    return out
