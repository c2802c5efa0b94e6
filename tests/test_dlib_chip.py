"""dlib's face chip: extract_dlib_chip equals dlib.get_face_chip(img, shape, size=150, padding=0.25) pixel for
pixel, on dlib's own landmarks of real faces (celeba-loose colour, ORL grey), on faces large enough for dlib's
pyramid_down path (photos upscaled 3x), and on faces cut by the image edge. dlib is the reference only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dlibkit import dlib_model_or_skip, dlib_or_skip, dlib_points, real_cases
from edgeface.chip import dlib_chip_details, dlib_chip_transform, extract_dlib_chip, pyramid_levels
from edgeface.errors import AlignmentError


@pytest.fixture(scope="module")
def reference():
    return dlib_or_skip().shape_predictor(str(dlib_model_or_skip("shape_predictor_5_face_landmarks.dat")))


@pytest.fixture(scope="module")
def cases(celeba_dir, orl_dir):
    return real_cases(celeba_dir, orl_dir)


@pytest.fixture(scope="module")
def few_cases(celeba_dir, orl_dir):
    """A handful of real faces for the quick tests."""
    return real_cases(celeba_dir, orl_dir, celeba=6, orl=3)


def _compare(reference, image: np.ndarray, dlib_image: np.ndarray, box) -> tuple[np.ndarray, int, int]:
    """(our chip, pixels that differ from dlib's, max abs difference) for dlib's landmarks in ``box``."""
    dlib = dlib_or_skip()
    pts, shape = dlib_points(reference, dlib_image, box)
    want = dlib.get_face_chip(dlib_image, shape, size=150, padding=0.25)
    if want.ndim == 3:
        want = want[:, :, ::-1]  # dlib's RGB chip -> the BGR chip of our BGR image
    got = extract_dlib_chip(image, pts, size=150, padding=0.25)
    assert got.shape == want.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    return got, int(np.count_nonzero(diff)), int(diff.max())


def _all_equal(reference, triples) -> list[np.ndarray]:
    """Our chips for (name, image, dlib_image, box) triples, asserting each equals dlib's."""
    chips, differing = [], []
    for name, *args in triples:
        chip, n, mx = _compare(reference, *args)
        chips.append(chip)
        if n:
            differing.append((name, n, mx))
    assert not differing, f"chips differ from dlib's (name, pixels, max abs diff): {differing[:5]}"
    return chips


@pytest.mark.slow
def test_chip_equals_dlib_on_its_own_landmarks(reference, cases):
    triples = [(c.name, c.image, c.dlib_image, b) for c in cases for b in c.hog_boxes]
    assert len(triples) >= 50 and sum(t[1].ndim == 2 for t in triples) >= 10
    _all_equal(reference, triples)


@pytest.mark.slow
def test_chip_equals_dlib_through_the_pyramid(reference, cases):
    """Upscaled 3x, a celeba face's chip rectangle is over twice the chip's side: dlib halves the region first."""
    dlib = dlib_or_skip()
    hog = dlib.get_frontal_face_detector()
    triples = []
    for c in [c for c in cases if c.image.ndim == 3][:20]:
        big = cv2.resize(c.image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        rgb = np.ascontiguousarray(big[:, :, ::-1])
        triples.extend((c.name + "@3x", big, rgb, (r.left(), r.top(), r.right(), r.bottom())) for r in hog(rgb, 0))
    levels = [pyramid_levels(dlib_chip_details(dlib_points(reference, t[2], t[3])[0])) for t in triples]
    assert sum(n >= 1 for n in levels) >= 10, f"pyramid levels {levels}: too few chips take the pyramid path"
    _all_equal(reference, triples)


@pytest.mark.slow
def test_chip_of_a_face_cut_by_the_image_edge_is_black_where_dlib_is(reference, cases):
    """Crop each photo through the face (left, top, right, bottom): the chip's missing part is 0 as in dlib."""
    triples = []
    for c in [c for c in cases if c.hog_boxes][:12]:
        l, t, r, b = c.hog_boxes[0]
        cx, cy = (l + r) // 2, (t + b) // 2
        h, w = c.image.shape[:2]
        for y0, y1, x0, x1 in ((0, h, cx, w), (cy, h, 0, w), (0, h, 0, cx), (0, cy, 0, w)):
            img = np.ascontiguousarray(c.image[y0:y1, x0:x1])
            ref = np.ascontiguousarray(c.dlib_image[y0:y1, x0:x1])
            triples.append((c.name, img, ref, (l - x0, t - y0, r - x0, b - y0)))
    chips = _all_equal(reference, triples)
    black = [int((chip.reshape(150, 150, -1) == 0).all(axis=2).sum()) for chip in chips]
    assert sum(n > 500 for n in black) >= len(triples) // 2, f"the crops should leave large black parts: {black}"


def test_chip_transform_puts_the_template_on_the_landmarks(reference, few_cases):
    """The chip -> image map sends dlib's template points (in chip pixels) close to the five landmarks."""
    from edgeface.chip import DLIB_TEMPLATE5

    c = next(c for c in few_cases if c.hog_boxes and c.image.ndim == 3)
    pts, _ = dlib_points(reference, c.dlib_image, c.hog_boxes[0])
    m = dlib_chip_transform(pts)
    chip_pts = (0.25 + DLIB_TEMPLATE5) / 1.5 * 150
    mapped = chip_pts @ m[:, :2].T + m[:, 2]
    eye = np.linalg.norm(pts[0] - pts[2])
    assert np.median(np.linalg.norm(mapped - pts, axis=1)) < 0.1 * eye


def test_grey_and_colour_channels_are_sampled_alike(reference, few_cases):
    """A grey image given as 3 equal channels yields 3 equal channels, each the grey chip."""
    c = next(c for c in few_cases if c.image.ndim == 2 and c.hog_boxes)
    pts, _ = dlib_points(reference, c.dlib_image, c.hog_boxes[0])
    grey = extract_dlib_chip(c.image, pts)
    colour = extract_dlib_chip(np.repeat(c.image[:, :, None], 3, axis=2), pts)
    assert grey.shape == (150, 150) and colour.shape == (150, 150, 3)
    for k in range(3):
        np.testing.assert_array_equal(colour[:, :, k], grey)


def test_degenerate_landmarks_are_refused():
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(AlignmentError):
        extract_dlib_chip(img, np.full((5, 2), 20.0))
    with pytest.raises(AlignmentError):
        extract_dlib_chip(img, np.zeros((4, 2)))
    with pytest.raises(AlignmentError):
        extract_dlib_chip(img, [[np.nan, 1]] * 5)


@pytest.mark.slow
def test_chip_equals_dlib_for_other_sizes_paddings_and_scales(reference, cases):
    """Random chip sizes (40-260), paddings (0-0.6, including ones a C float cannot hold exactly) and photo
    scales (0.5x-4x, so 0 to 3 pyramid levels): still identical."""
    dlib = dlib_or_skip()
    hog = dlib.get_frontal_face_detector()
    rng = np.random.default_rng(1)
    checked, differing, levels = 0, [], set()
    for c in [c for c in cases if c.image.ndim == 3][:40]:
        up = float(rng.uniform(0.5, 4.0))
        img = cv2.resize(c.image, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        for r in hog(rgb, 1 if up < 1.5 else 0):
            size, padding = int(rng.integers(40, 261)), float(rng.uniform(0.0, 0.6))
            pts, shape = dlib_points(reference, rgb, (r.left(), r.top(), r.right(), r.bottom()))
            want = dlib.get_face_chip(rgb, shape, size=size, padding=padding)[:, :, ::-1]
            got = extract_dlib_chip(img, pts, size=size, padding=padding)
            levels.add(pyramid_levels(dlib_chip_details(pts, size, padding)))
            checked += 1
            if not np.array_equal(got, want):
                differing.append((c.name, up, size, padding, int(np.count_nonzero(got != want))))
    assert checked >= 30 and len(levels) >= 3, (checked, levels)
    assert not differing, f"{len(differing)} of {checked} chips differ: {differing[:5]}"


def test_extract_image_chip_equals_dlib_for_any_location(few_cases):
    """The extraction alone against dlib.extract_image_chip: rotated and scaled rectangles, non-square chips,
    rectangles partly or wholly outside the image, and the unscaled, unrotated copy dlib takes as a shortcut
    (its corners rounded)."""
    dlib = dlib_or_skip()
    from edgeface.chip import ChipDetails, extract_image_chip

    rng = np.random.default_rng(3)
    img = next(c.image for c in few_cases if c.image.ndim == 3)
    h, w = img.shape[:2]
    rgb = np.ascontiguousarray(img[:, :, ::-1])
    locations = [((10.0, 12.0, 159.0, 161.0), 0.0, 150, 150), ((10.3, 12.6, 109.3, 81.6), 0.0, 70, 100),
                 ((-40.0, 100.0, 109.0, 249.0), 0.0, 150, 150), ((w + 5.0, 0.0, w + 40.0, 30.0), 0.3, 20, 20)]
    for _ in range(20):
        side = float(rng.uniform(20, 400))
        cx, cy = rng.uniform(-20, w + 20), rng.uniform(-20, h + 20)
        rows, cols = int(rng.integers(16, 200)), int(rng.integers(16, 200))
        rect = (cx - side / 2, cy - side * rows / cols / 2, cx + side / 2, cy + side * rows / cols / 2)
        locations.append((rect, float(rng.uniform(-np.pi, np.pi)), rows, cols))
    differing = []
    for rect, angle, rows, cols in locations:
        want = dlib.extract_image_chip(rgb, dlib.chip_details(dlib.drectangle(*rect), dlib.chip_dims(rows, cols), angle))
        got = extract_image_chip(img, ChipDetails(rect, angle, rows, cols))[:, :, ::-1]
        if got.shape != want.shape or not np.array_equal(got, want):
            differing.append((rect, angle, rows, cols))
    assert not differing, f"{len(differing)} of {len(locations)} chips differ: {differing[:3]}"
