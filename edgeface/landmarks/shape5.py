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
        self._d = np.ascontiguousarray(self.deltas.transpose(0, 2, 1))  # (C, 2, F): dx, dy
        self.split_idx1 = np.ascontiguousarray(split_idx1, np.intp)
        self.split_idx2 = np.ascontiguousarray(split_idx2, np.intp)
        self.source_sha256 = source_sha256
        self.cascades, self.trees, self.splits = c, t, s
        self.leaves = self.leaf_values.shape[2]
        self.depth = int(self.leaves).bit_length() - 1
        self._leaf_rows = self.leaf_values.reshape(c, t * self.leaves, 2 * PARTS)
        self._tree_l = (np.arange(t, dtype=np.intp) * self.leaves)[None]
        # Trees of up to 15 splits are walked by a table: each tree's split outcomes, padded to 16 with splits
        # that never go left (threshold +inf), form a 16-bit code, and the table maps a code to its leaf.
        self._width = 16 if s <= 15 else s
        pad = self._width - s
        self._idx1_flat = np.pad(self.split_idx1, ((0, 0), (0, 0), (0, pad))).reshape(c, -1)
        self._idx2_flat = np.pad(self.split_idx2, ((0, 0), (0, 0), (0, pad))).reshape(c, -1)
        self._thresh_flat = np.pad(self.split_thresh, ((0, 0), (0, 0), (0, pad)), constant_values=np.inf).reshape(c, -1)
        self._tree_s = (np.arange(t, dtype=np.intp) * self._width)[None]
        self._leaf_of_code = None
        if s <= 15:
            codes = np.arange(1 << 16, dtype=np.intp)
            node = np.zeros_like(codes)
            for _ in range(self.depth):
                node = 2 * node + 2 - ((codes >> node) & 1)
            self._leaf_of_code = (node - s).astype(np.intp)
        # the initial shape's centred coordinates and spread, for the per-cascade similarity fit (float64)
        init = self.initial_shape.astype(np.float64)
        f = init - init.mean(axis=0)
        f_perp = np.stack([-f[:, 1], f[:, 0]], axis=1)
        self._fit_weights = np.stack([f.reshape(-1), f_perp.reshape(-1)], axis=1) / float((f**2).sum())

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
        image = np.asarray(image)
        pixels = _pixels(image)
        h, w = image.shape[:2]
        b = _boxes(boxes)
        n = len(b)
        if n == 0:
            return np.zeros((0, PARTS, 2), np.float32)
        # box-relative -> image: x = left + (right - left) * u, y = top + (bottom - top) * v, per face, float64
        origin = b[:, 0:2, None].astype(np.float64)  # (N, 2, 1)
        scale = (b[:, 2:4, None] - b[:, 0:2, None]).astype(np.float64)
        limit = np.array([[w], [h]], np.uintp)
        shape = np.repeat(self.initial_shape[None], n, axis=0)  # (N, P, 2) float32
        walk = np.empty((n, self.trees + 1, 2 * PARTS), np.float32)
        for c in range(self.cascades):
            m = self._fit_from_initial(shape)  # (N, 2, 2) float32
            d, anchors = self._d[c], np.take(shape.transpose(0, 2, 1), self.anchor_idx[c], axis=2)  # (2, F), (N, 2, F)
            # float32(M @ delta) + anchor point, operation by operation as dlib computes it: (N, 2, F)
            p = m[:, :, 0:1] * d[0] + m[:, :, 1:2] * d[1] + anchors
            q = np.floor(origin + scale * p + 0.5).astype(np.intp)
            # negative coordinates wrap to huge unsigned values: one comparison per axis tests both ends
            ok = q.view(np.uintp) < limit
            inside = ok[:, 0] & ok[:, 1]
            feats = np.where(inside, pixels(np.where(inside, q[:, 1] * w + q[:, 0], 0)), 0).astype(np.float32)
            goes_left = np.take(feats, self._idx1_flat[c], axis=1) - np.take(feats, self._idx2_flat[c], axis=1)
            goes_left = goes_left > self._thresh_flat[c]  # (N, T * width)
            walk[:, 0] = shape.reshape(n, 2 * PARTS)
            np.take(self._leaf_rows[c], self._tree_l + self._leaves_reached(goes_left), axis=0, out=walk[:, 1:])
            # dlib adds the trees' leaves one after the other in float32: an accumulate is that sequential sum
            shape = np.add.accumulate(walk, axis=1)[:, -1].reshape(n, PARTS, 2)
        return np.floor(origin.transpose(0, 2, 1) + scale.transpose(0, 2, 1) * shape + 0.5).astype(np.float32)

    def _leaves_reached(self, goes_left: np.ndarray) -> np.ndarray:
        """(N, T) leaf index of every tree from its split outcomes (N, T * width): left child 2i+1, right 2i+2."""
        n = len(goes_left)
        if self._leaf_of_code is not None:
            # 16 outcomes per tree: two whole bytes each, so packing the flat row keeps the trees apart
            code = np.packbits(goes_left, axis=-1, bitorder="little").view("<u2")  # (N, T)
            return self._leaf_of_code.take(code)
        flat = goes_left.reshape(-1)
        base = (np.arange(n, dtype=np.intp) * (self.trees * self._width))[:, None] + self._tree_s
        node = np.zeros((n, self.trees), np.intp)
        for _ in range(self.depth):
            node = 2 * node + 2 - flat.take(base + node)
        return node - self.splits

    def _fit_from_initial(self, current: np.ndarray) -> np.ndarray:
        """Least-squares rotation + scale from the initial shape to each current shape (N, P, 2) float32, as dlib's
        ``find_similarity_transform``: fitted in float64 and cast to float32 (N, 2, 2) like ``matrix_cast<float>``.
        With both shapes centred, M = [[a, -b], [b, a]], a = sum(f . t) / sum|f|^2, b = sum(f x t) / sum|f|^2."""
        cur = current.reshape(-1, PARTS, 2).astype(np.float64)
        cur -= cur.mean(axis=1, keepdims=True)
        ab = cur.reshape(len(cur), 2 * PARTS) @ self._fit_weights  # (N, 2): a, b
        m = np.empty((len(cur), 2, 2), np.float32)
        m[:, 0, 0] = m[:, 1, 1] = ab[:, 0]
        m[:, 0, 1] = -ab[:, 1]
        m[:, 1, 0] = ab[:, 1]
        return m


def _pixels(image: np.ndarray):
    """A reader of dlib intensities at flat pixel indices: only the sampled pixels are converted, (r + g + b) // 3."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        flat = img.reshape(-1)
        return lambda at: flat[at]
    if img.ndim == 3 and img.shape[2] == 3:
        flat = img.reshape(-1)
        return lambda at: (flat.take(3 * at).astype(np.uint16) + flat.take(3 * at + 1) + flat.take(3 * at + 2)) // 3
    raise ValueError(f"expected a grey (H, W) or colour (H, W, 3) image, got shape {img.shape}")


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
