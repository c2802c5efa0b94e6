"""dlib's 5-point landmark predictor (an ensemble of regression trees, Kazemi & Sullivan 2014), torch-free.

Reproduces ``dlib.shape_predictor(...)(image, rect)`` exactly, point for point, from the arrays that
:func:`edgeface.export.dlib.shape_predictor_dat.convert_shape_predictor` writes. What exactness takes
(``dlib/image_processing/shape_predictor.h``; ``../shared/notes/dlib-formats.md``):

- intensity: a colour pixel is ``(r + g + b) // 3`` (dlib's ``assign_pixel``, integer division; the channel
  order does not matter), a grey one is used as-is;
- per cascade, the similarity transform from the initial shape to the current one is fitted in float64 and cast
  to float32; a feature pixel is ``float32(M @ delta) + anchor point`` in float32;
- box-relative coordinates map to the image by ``(0,0) -> (left, top)``, ``(1,1) -> (right, bottom)``, scale
  ``right - left`` (not + 1), in float64, rounded with ``floor(v + 0.5)``; a pixel outside the image reads 0;
- a split goes left when ``f[idx1] - f[idx2] > thresh`` (float32); the 500 leaves of a cascade are added to the
  shape one after the other in float32 (a pairwise or float64 sum moves points by pixels).

The trees of a cascade and the faces of :meth:`ShapePredictor5.predict_many` are evaluated together with numpy.
Parts come in dlib's order: 0/1 the outer/inner corner of the eye on the image's right, 2/3 the outer/inner
corner of the eye on the image's left, 4 the base of the nose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError

FORMAT_TAG = "edgeface-dlib-shape-predictor-5"
FORMAT_VERSION = 1
PARTS = 5

_ARRAYS = ("initial_shape", "split_idx1", "split_idx2", "split_thresh", "leaf_values", "anchor_idx", "deltas")


def dlib_intensity(image: np.ndarray) -> np.ndarray:
    """dlib's grey level of a BGR/RGB (H, W, 3) or grey (H, W) uint8 image: ``(r + g + b) // 3``."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        return (img.sum(axis=2, dtype=np.uint16) // 3).astype(np.uint8)
    raise ValueError(f"expected a grey (H, W) or colour (H, W, 3) image, got shape {img.shape}")


def _boxes(boxes) -> np.ndarray:
    b = np.asarray(boxes)
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (left, top, right, bottom), got shape {b.shape}")
    if not np.issubdtype(b.dtype, np.integer):
        if not np.all(np.isfinite(b)) or np.any(b != np.round(b)):
            raise ValueError("box corners must be integers, as in a dlib rectangle")
    return b.astype(np.int64)


class ShapePredictor5:
    """The 5-point predictor: C cascades of T complete trees (S splits, L leaves) over F feature pixels."""

    def __init__(
        self,
        initial_shape: np.ndarray,
        split_idx1: np.ndarray,
        split_idx2: np.ndarray,
        split_thresh: np.ndarray,
        leaf_values: np.ndarray,
        anchor_idx: np.ndarray,
        deltas: np.ndarray,
        source_sha256: str = "",
    ) -> None:
        self.initial_shape = np.ascontiguousarray(initial_shape, np.float32).reshape(PARTS, 2)
        self.split_thresh = np.ascontiguousarray(split_thresh, np.float32)
        c, t, s = self.split_thresh.shape
        self.leaf_values = np.ascontiguousarray(leaf_values, np.float32)
        self.anchor_idx = np.ascontiguousarray(anchor_idx, np.intp)
        self.deltas = np.ascontiguousarray(deltas, np.float32)
        self.split_idx1 = np.ascontiguousarray(split_idx1, np.intp)
        self.split_idx2 = np.ascontiguousarray(split_idx2, np.intp)
        self.source_sha256 = source_sha256
        self.cascades, self.trees, self.splits = c, t, s
        self.leaves = self.leaf_values.shape[2]
        self.depth = int(self.leaves).bit_length() - 1
        # flat indices for the vectorised walk: node n of tree i is bit i * S + n; leaf l of tree i is row i * L + l
        self._tree_s = (np.arange(t, dtype=np.intp) * s)[None]
        self._tree_l = (np.arange(t, dtype=np.intp) * self.leaves)[None]
        self._leaf_rows = self.leaf_values.reshape(c, t * self.leaves, 2 * PARTS)
        self._thresh_flat = self.split_thresh.reshape(c, t * s)
        self._idx1_flat = self.split_idx1.reshape(c, t * s)
        self._idx2_flat = self.split_idx2.reshape(c, t * s)
        # the initial shape's centred coordinates and spread, for the per-cascade similarity fit (float64)
        init = self.initial_shape.astype(np.float64)
        self._init_c = init - init.mean(axis=0)
        self._init_ss = float((self._init_c**2).sum())

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, npz_path: str | Path) -> "ShapePredictor5":
        """Load and check an ``.npz`` written by ``convert_shape_predictor``; :class:`ModelError` if it is not one."""
        path = Path(npz_path)
        try:
            with np.load(path, allow_pickle=False) as z:
                files = set(z.files)
                missing = [k for k in ("format", "version", *_ARRAYS) if k not in files]
                if missing:
                    raise ModelError(f"{path}: not an edgeface 5-point landmark model (missing {', '.join(missing)})")
                if str(z["format"]) != FORMAT_TAG:
                    raise ModelError(f"{path}: format {str(z['format'])!r}, expected {FORMAT_TAG!r}")
                if int(z["version"]) != FORMAT_VERSION:
                    raise ModelError(f"{path}: format version {int(z['version'])}, this edgeface reads {FORMAT_VERSION}")
                arrays = {k: z[k] for k in _ARRAYS}
                sha = str(z["source_sha256"]) if "source_sha256" in files else ""
        except ModelError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ModelError(f"{path}: cannot read the landmark model ({exc})") from exc
        except Exception as exc:  # zipfile.BadZipFile and zlib errors from a corrupt file
            raise ModelError(f"{path}: corrupt landmark model ({type(exc).__name__}: {exc})") from exc
        _check_arrays(path, arrays)
        return cls(**arrays, source_sha256=sha)

    # ------------------------------------------------------------------ prediction

    def predict(self, image: np.ndarray, box) -> np.ndarray:
        """The five points (5, 2) float32 (integer-valued, as dlib's) for one ``box`` = (left, top, right, bottom)."""
        return self.predict_many(image, [box])[0]

    def predict_many(self, image: np.ndarray, boxes) -> np.ndarray:
        """(N, 5, 2) float32 for N boxes in one image (BGR/RGB or grey uint8)."""
        grey = dlib_intensity(image)
        b = _boxes(boxes)
        n = len(b)
        if n == 0:
            return np.zeros((0, PARTS, 2), np.float32)
        h, w = grey.shape
        flat = grey.reshape(-1)
        left, top = b[:, 0:1].astype(np.float64), b[:, 1:2].astype(np.float64)
        sx = (b[:, 2:3] - b[:, 0:1]).astype(np.float64)
        sy = (b[:, 3:4] - b[:, 1:2]).astype(np.float64)
        shape = np.broadcast_to(self.initial_shape.reshape(1, 2 * PARTS), (n, 2 * PARTS)).copy()
        rows = np.arange(n)[:, None]
        for c in range(self.cascades):
            m = self._fit_from_initial(shape.reshape(n, PARTS, 2))  # (N, 2, 2) float32
            d = self.deltas[c]  # (F, 2)
            anchor = shape.reshape(n, PARTS, 2)[:, self.anchor_idx[c]]  # (N, F, 2)
            px = (m[:, 0:1, 0] * d[None, :, 0] + m[:, 0:1, 1] * d[None, :, 1]) + anchor[:, :, 0]
            py = (m[:, 1:2, 0] * d[None, :, 0] + m[:, 1:2, 1] * d[None, :, 1]) + anchor[:, :, 1]
            x = np.floor(left + sx * px.astype(np.float64) + 0.5)
            y = np.floor(top + sy * py.astype(np.float64) + 0.5)
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            at = np.where(inside, y * w + x, 0).astype(np.intp)
            feats = np.where(inside, flat[at], 0).astype(np.float32)  # (N, F)
            goes_left = (feats[:, self._idx1_flat[c]] - feats[:, self._idx2_flat[c]]) > self._thresh_flat[c]
            node = np.zeros((n, self.trees), np.intp)
            for _ in range(self.depth):
                node = 2 * node + 2 - goes_left[rows, self._tree_s + node]
            leaf = self._leaf_rows[c][self._tree_l + node - self.splits]  # (N, T, 2P)
            # dlib adds the trees' leaves one by one in float32: cumsum is that sequential sum
            shape = np.cumsum(np.concatenate([shape[:, None], leaf], axis=1), axis=1, dtype=np.float32)[:, -1]
        pts = shape.reshape(n, PARTS, 2).astype(np.float64)
        out = np.empty((n, PARTS, 2), np.float32)
        out[:, :, 0] = np.floor(left + sx * pts[:, :, 0] + 0.5)
        out[:, :, 1] = np.floor(top + sy * pts[:, :, 1] + 0.5)
        return out

    def _fit_from_initial(self, current: np.ndarray) -> np.ndarray:
        """Least-squares rotation + scale (no translation needed) from the initial shape to each current shape
        (N, P, 2) float32: fitted in float64, returned as float32 (N, 2, 2), as dlib's ``matrix_cast<float>``."""
        cur = current.astype(np.float64)
        cur = cur - cur.mean(axis=1, keepdims=True)
        f = self._init_c
        a = ((f[None, :, 0] * cur[:, :, 0]) + (f[None, :, 1] * cur[:, :, 1])).sum(axis=1) / self._init_ss
        b = ((f[None, :, 0] * cur[:, :, 1]) - (f[None, :, 1] * cur[:, :, 0])).sum(axis=1) / self._init_ss
        m = np.empty((len(cur), 2, 2), np.float64)
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a, -b, b, a
        return m.astype(np.float32)


def _check_arrays(path: Path, a: dict) -> None:
    """Shapes, dtypes and ranges: a tampered model must fail here, not index out of bounds at the door."""

    def bad(what: str) -> ModelError:
        return ModelError(f"{path}: corrupt landmark model ({what})")

    for k, v in a.items():
        if v.dtype.kind not in "iuf":
            raise bad(f"{k} has dtype {v.dtype}")
    if a["initial_shape"].shape != (2 * PARTS,):
        raise bad(f"initial_shape has shape {a['initial_shape'].shape}, expected ({2 * PARTS},)")
    th = a["split_thresh"]
    if th.ndim != 3 or 0 in th.shape:
        raise bad(f"split_thresh has shape {th.shape}")
    c, t, s = th.shape
    leaves = s + 1
    if leaves & s:
        raise bad(f"trees with {s} splits are not complete")
    expect = {
        "split_idx1": (c, t, s),
        "split_idx2": (c, t, s),
        "leaf_values": (c, t, leaves, 2 * PARTS),
    }
    for k, shp in expect.items():
        if a[k].shape != shp:
            raise bad(f"{k} has shape {a[k].shape}, expected {shp}")
    if a["anchor_idx"].ndim != 2 or a["anchor_idx"].shape[0] != c:
        raise bad(f"anchor_idx has shape {a['anchor_idx'].shape}")
    f = a["anchor_idx"].shape[1]
    if a["deltas"].shape != (c, f, 2):
        raise bad(f"deltas have shape {a['deltas'].shape}, expected {(c, f, 2)}")
    for k in ("initial_shape", "split_thresh", "leaf_values", "deltas"):
        if not np.all(np.isfinite(a[k])):
            raise bad(f"{k} holds a non-finite value")
    for k, hi in (("split_idx1", f), ("split_idx2", f), ("anchor_idx", PARTS)):
        if a[k].dtype.kind not in "iu" or a[k].min() < 0 or a[k].max() >= hi:
            raise bad(f"{k} out of range [0, {hi})")
