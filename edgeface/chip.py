"""dlib's face chip: ``dlib.get_face_chip(img, shape, size, padding)`` reproduced in numpy, pixel for pixel.

What dlib does (``dlib/image_transforms/interpolation.h``: ``get_face_chip_details``, ``chip_details``,
``extract_image_chips``; ``dlib/image_transforms/image_pyramid.h``: ``pyramid_down<2>``):

1. The 5-point template ``t`` (dlib's parts 0-4) goes to chip coordinates ``(padding + t) / (1 + 2 padding) * size``;
   a least-squares similarity fit from those to the five image points gives an angle, a scale and the chip's
   centre: the chip is a rotated rectangle of side ``size * scale`` in the image.
2. When that rectangle is much larger than the chip (its area still above ``size**2`` after one
   ``pyramid_down<2>`` step), the region around it is first halved, as often as needed, with dlib's 5x5
   [1 4 6 4 1] integer filter (``// 256``, dropping every other row and column; ``(n - 3) // 2`` pixels out).
3. Every chip pixel is sampled bilinearly (float64 weights, per channel) from the region or the pyramid level;
   a pixel whose four neighbours are not all inside is 0; values are truncated, not rounded.

Channel by channel: a BGR image gives the BGR version of dlib's RGB chip; a grey image gives a grey chip.
The points are dlib's five landmarks in dlib's order (:class:`edgeface.landmarks.shape5.ShapePredictor5`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import AlignmentError

#: dlib's 5-point chip template (``get_face_chip_details``), box-relative, in dlib's part order
DLIB_TEMPLATE5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=np.float64,
)

Point = tuple[float, float]


@dataclass(frozen=True)
class ChipDetails:
    """dlib's ``chip_details``: the chip's rectangle in the image (l, t, r, b, float64), its angle, its size."""

    rect: tuple[float, float, float, float]
    angle: float
    rows: int
    cols: int


def _points5(points5) -> list[Point]:
    pts = np.asarray(points5, dtype=np.float64)
    if pts.shape != (5, 2):
        raise AlignmentError(f"expected dlib's 5 landmarks of shape (5, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise AlignmentError("landmarks contain NaN or infinity")
    return [(float(x), float(y)) for x, y in pts]


def _similarity(src: list[Point], dst: list[Point]) -> tuple[float, float, float, float]:
    """Least-squares similarity src -> dst (``find_similarity_transform``): (a, b, tx, ty) with
    x' = a x - b y + tx, y' = b x + a y + ty."""
    n = len(src)
    sx, sy = sum(p[0] for p in src) / n, sum(p[1] for p in src) / n
    dx, dy = sum(p[0] for p in dst) / n, sum(p[1] for p in dst) / n
    ss = dot = cross = 0.0
    for (x, y), (u, v) in zip(src, dst):
        x, y, u, v = x - sx, y - sy, u - dx, v - dy
        ss += x * x + y * y
        dot += x * u + y * v
        cross += x * v - y * u
    if ss == 0.0:
        raise AlignmentError("degenerate template")
    a, b = dot / ss, cross / ss
    return a, b, dx - (a * sx - b * sy), dy - (b * sx + a * sy)


def dlib_chip_details(points5, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """``get_face_chip_details`` for five dlib landmarks: where the chip lies in the image."""
    if size <= 0 or padding < 0:
        raise ValueError(f"size must be > 0 and padding >= 0, got {size}, {padding}")
    # dlib's Python get_face_chip takes padding as a C float: 0.25 is exact, 0.2 becomes 0.2000000029...
    padding = float(np.float32(padding))
    img_pts = _points5(points5)
    chip_pts = [((padding + x) / (2 * padding + 1) * size, (padding + y) / (2 * padding + 1) * size) for x, y in DLIB_TEMPLATE5]
    a, b, tx, ty = _similarity(chip_pts, img_pts)
    angle = math.atan2(b, a)
    scale = math.hypot(a, b)
    if not scale > 0:
        raise AlignmentError("landmarks are degenerate: the face has no size")
    cx, cy = a * (size / 2.0) - b * (size / 2.0) + tx, b * (size / 2.0) + a * (size / 2.0) + ty
    # centered_drect(p, w, h): w - 1, h - 1 wide around p
    hw, hh = (size * scale - 1) / 2, (size * scale - 1) / 2
    return ChipDetails((cx - hw, cy - hh, cx + hw, cy + hh), angle, int(size), int(size))


def dlib_chip_transform(points5, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The 2x3 float64 matrix that maps chip pixel (x, y) to image coordinates at full resolution."""
    d = dlib_chip_details(points5, size, padding)
    tl, tr, bl = _rotated_corners(d.rect, d.angle)
    return _corner_map(tl, tr, bl, d.rows, d.cols)


# ---------------------------------------------------------------------------------------------- geometry


def _area(r) -> float:
    """drectangle area: (r - l + 1) * (b - t + 1), 0 when empty."""
    l, t, rr, b = r
    if t > b or l > rr:
        return 0.0
    return (rr - l + 1) * (b - t + 1)


def _rect_down(r):
    """``pyramid_down<2>::rect_down``: both corners p / 2 - (1.25, 0.75)."""
    l, t, rr, b = r
    x0, y0, x1, y1 = l / 2.0 - 1.25, t / 2.0 - 0.75, rr / 2.0 - 1.25, b / 2.0 - 0.75
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _halvings(rect, size: int) -> tuple[int, tuple[float, float, float, float]]:
    """How many ``pyramid_down<2>`` steps ``extract_image_chips`` takes before sampling: while the rectangle
    halved once more would still be larger than the chip (area > rows * cols); and the rectangle at that level."""
    n = 0
    while _area(_rect_down(rect)) > size:
        rect = _rect_down(rect)
        n += 1
    return n, rect


def pyramid_levels(details: ChipDetails) -> int:
    """The number of times dlib halves the image region before sampling this chip (0: sampled directly)."""
    return _halvings(details.rect, details.rows * details.cols)[0]


def _rotate(cx: float, cy: float, x: float, y: float, angle: float) -> Point:
    """``rotate_point(center, p, angle)``."""
    s, c = math.sin(angle), math.cos(angle)
    px, py = x - cx, y - cy
    return (c * px - s * py + cx, s * px + c * py + cy)


def _rotated_corners(r, angle: float) -> tuple[Point, Point, Point]:
    l, t, rr, b = r
    cx, cy = (l + rr) / 2.0, (t + b) / 2.0
    return _rotate(cx, cy, l, t, angle), _rotate(cx, cy, rr, t, angle), _rotate(cx, cy, l, b, angle)


def _corner_map(tl: Point, tr: Point, bl: Point, rows: int, cols: int) -> np.ndarray:
    """The affine map chip (0,0) -> tl, (cols-1, 0) -> tr, (0, rows-1) -> bl."""
    w, h = max(cols - 1, 1), max(rows - 1, 1)
    return np.array(
        [
            [(tr[0] - tl[0]) / w, (bl[0] - tl[0]) / h, tl[0]],
            [(tr[1] - tl[1]) / w, (bl[1] - tl[1]) / h, tl[1]],
        ]
    )


def _lround(v: float) -> int:
    """C's lround: halves away from zero."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


# ---------------------------------------------------------------------------------------------- pixels


_PYR_KERNEL = np.array([1, 4, 6, 4, 1], np.float32)


def pyramid_down2(img: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>``: separable [1 4 6 4 1] filter, integer sums, ``// 256``, every other pixel:
    ``down[i, j] = sum(k[a] k[b] img[2i + a, 2j + b]) // 256`` for ``(n - 3) // 2`` rows and columns. OpenCV
    filters in float32, which is exact here: every partial sum is an integer below 2**24 (at most 65,280)."""
    nr, nc = img.shape[:2]
    if nr <= 8 or nc <= 8:
        return np.zeros((0, 0) + img.shape[2:], np.uint8)
    orow, ocol = (nr - 3) // 2, (nc - 3) // 2
    full = cv2.sepFilter2D(img, cv2.CV_32F, _PYR_KERNEL, _PYR_KERNEL, borderType=cv2.BORDER_CONSTANT)
    # the kernel centred on (2i + 2, 2j + 2) covers rows 2i..2i+4 and columns 2j..2j+4, all inside the image
    down = full[2 : 2 + 2 * orow : 2, 2 : 2 + 2 * ocol : 2]
    return np.floor(down * np.float32(1 / 256)).astype(np.uint8)  # exact: a power of two


def _bilinear(img: np.ndarray, m: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``transform_image`` with ``interpolate_bilinear`` and a black background, vectorised."""
    nr, nc = img.shape[:2]
    if nr == 0 or nc == 0:
        return np.zeros((rows, cols) + img.shape[2:], np.uint8)
    c = np.arange(cols, dtype=np.float64)[None, :]
    r = np.arange(rows, dtype=np.float64)[:, None]
    x = (m[0, 0] * c + m[0, 1] * r) + m[0, 2]
    y = (m[1, 0] * c + m[1, 1] * r) + m[1, 2]
    left, top = np.floor(x), np.floor(y)
    ok = (left >= 0) & (top >= 0) & (left + 1 < nc) & (top + 1 < nr)
    lr, tb = x - left, y - top
    at = np.where(ok, top * nc + left, 0).astype(np.intp)
    flat = img.reshape(nr * nc, -1) if img.ndim == 3 else img.reshape(-1)
    if img.ndim == 3:
        lr, tb = lr[:, :, None], tb[:, :, None]
    tl, tr = np.take(flat, at, axis=0), np.take(flat, at + 1, axis=0)
    bl, br = np.take(flat, at + nc, axis=0), np.take(flat, at + nc + 1, axis=0)
    # dlib's expression, in float64, channel by channel; the cast truncates as static_cast<unsigned char>
    v = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    out = v.astype(np.uint8).reshape((rows, cols) + img.shape[2:])
    out[~ok] = 0
    return out


def extract_dlib_chip(image: np.ndarray, points5, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The (size, size[, C]) uint8 chip ``dlib.get_face_chip`` cuts from ``image`` (grey or colour uint8) for
    dlib's five landmarks ``points5`` (5, 2)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"expected a grey or colour uint8 image, got {img.dtype} {img.shape}")
    return extract_image_chip(img, dlib_chip_details(points5, size, padding))


def extract_image_chip(image: np.ndarray, d: ChipDetails) -> np.ndarray:
    """dlib's ``extract_image_chip`` for any chip location: the (rows, cols[, C]) uint8 chip of the rectangle
    ``d.rect`` rotated by ``d.angle`` about its centre (``extract_image_chips`` with a single location)."""
    img = np.asarray(image)
    nr, nc = img.shape[:2]
    l, t, r, b = d.rect
    if d.angle == 0 and d.rows == b - t + 1 and d.cols == r - l + 1:
        return _copy_chip(img, (_lround(l), _lround(t), _lround(r), _lround(b)))
    size = d.rows * d.cols
    grow = 2.0
    for _ in range(_halvings(d.rect, size)[0]):
        grow = grow * 2 + 2  # 2 px of border per level against the filter's edge effects
    # bounding box of the rotated chip rectangle, grown, clipped to the image, rounded (rectangle += drectangle)
    cx, cy = (l + r) / 2.0, (t + b) / 2.0
    corners = [_rotate(cx, cy, x, y, d.angle) for x, y in ((l, t), (r, t), (l, b), (r, b))]
    gl = max(min(p[0] for p in corners) - grow, 0.0)
    gt = max(min(p[1] for p in corners) - grow, 0.0)
    gr = min(max(p[0] for p in corners) + grow, float(nc - 1))
    gb = min(max(p[1] for p in corners) + grow, float(nr - 1))
    if gl > gr or gt > gb:  # the chip lies wholly outside the image
        return np.zeros((d.rows, d.cols) + img.shape[2:], np.uint8)
    bx0, by0, bx1, by1 = _lround(gl), _lround(gt), _lround(gr), _lround(gb)
    region = img[by0 : by1 + 1, bx0 : bx1 + 1]
    levels, rect = _halvings((l - bx0, t - by0, r - bx0, b - by0), size)
    src = region
    for _ in range(levels):
        src = pyramid_down2(src)
    tl, tr, bl = _rotated_corners(rect, d.angle)
    return _bilinear(src, _corner_map(tl, tr, bl, d.rows, d.cols), d.rows, d.cols)


def _copy_chip(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``basic_extract_image_chip``: an unscaled, unrotated copy, 0 outside the image."""
    l, t, r, b = box
    out = np.zeros((b - t + 1, r - l + 1) + img.shape[2:], np.uint8)
    nr, nc = img.shape[:2]
    x0, y0, x1, y1 = max(l, 0), max(t, 0), min(r, nc - 1), min(b, nr - 1)
    if x0 <= x1 and y0 <= y1:
        out[y0 - t : y1 - t + 1, x0 - l : x1 - l + 1] = img[y0 : y1 + 1, x0 : x1 + 1]
    return out
