"""dlib's 5-point landmark model: the .dat reader, the .npz it writes, and point-for-point parity of
ShapePredictor5 with dlib.shape_predictor on real faces (celeba-loose colour, ORL grey) for dlib's own HOG boxes,
boxes mapped from YuNet's, and boxes pushed past each edge of the image. dlib is the reference only."""

from __future__ import annotations

import numpy as np
import pytest

from edgeface.errors import ModelError
from edgeface.landmarks.box import dlib_box_from_detector
from edgeface.landmarks.shape5 import ShapePredictor5
from dlibkit import dlib_model_or_skip, dlib_or_skip, dlib_points, real_cases

SP5 = "shape_predictor_5_face_landmarks.dat"


@pytest.fixture(scope="module")
def sp5_dat():
    return dlib_model_or_skip(SP5)


@pytest.fixture(scope="module")
def sp5_npz(sp5_dat, tmp_path_factory):
    from edgeface.export.dlib.shape_predictor_dat import convert_shape_predictor

    return convert_shape_predictor(sp5_dat, tmp_path_factory.mktemp("sp5") / "sp5.npz")


@pytest.fixture(scope="module")
def ours(sp5_npz):
    return ShapePredictor5.load(sp5_npz)


@pytest.fixture(scope="module")
def reference(sp5_dat):
    return dlib_or_skip().shape_predictor(str(sp5_dat))


@pytest.fixture(scope="module")
def cases(celeba_dir, orl_dir):
    return real_cases(celeba_dir, orl_dir)


@pytest.fixture(scope="module")
def few_cases(celeba_dir, orl_dir):
    """A handful of real faces for the quick tests."""
    return real_cases(celeba_dir, orl_dir, celeba=6, orl=3)


def _differing(ours, reference, cases_boxes) -> tuple[int, int, list]:
    """(points that differ, points compared, the first few differences) over (case, box) pairs."""
    differ, total, examples = 0, 0, []
    for case, box in cases_boxes:
        want, _ = dlib_points(reference, case.dlib_image, box)
        got = ours.predict(case.image, box)
        bad = np.any(got != want, axis=1)
        differ += int(bad.sum())
        total += len(want)
        if bad.any() and len(examples) < 5:
            examples.append((case.name, box, got[bad].tolist(), want[bad].tolist()))
    return differ, total, examples


# ---------------------------------------------------------------------------------------------- the file


def test_reader_reads_the_whole_file_into_the_documented_layout(sp5_dat, ours):
    from edgeface.export.dlib.shape_predictor_dat import read_shape_predictor

    sp = read_shape_predictor(sp5_dat)
    assert sp.split_idx1.shape == (15, 500, 15) and sp.leaf_values.shape == (15, 500, 16, 10)
    assert sp.anchor_idx.shape == (15, 800) and sp.deltas.shape == (15, 800, 2)
    assert sp.sha256 == "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    # the initial shape measured in the notes: image-right eye (x ~ 0.78, 0.62), image-left eye, nose
    np.testing.assert_allclose(
        sp.initial_shape.reshape(5, 2),
        [[0.7763, 0.3455], [0.6186, 0.3538], [0.2265, 0.3455], [0.3842, 0.3538], [0.5014, 0.6576]],
        atol=1e-4,
    )
    # the .npz holds the same arrays
    np.testing.assert_array_equal(ours.leaf_values, sp.leaf_values)
    np.testing.assert_array_equal(ours.deltas, sp.deltas)
    assert ours.source_sha256 == sp.sha256


def test_truncated_dat_is_refused(sp5_dat, tmp_path):
    from edgeface.export.dlib.shape_predictor_dat import convert_shape_predictor

    data = sp5_dat.read_bytes()
    for keep in (3, 1000, len(data) - 1):
        bad = tmp_path / f"cut{keep}.dat"
        bad.write_bytes(data[:keep])
        with pytest.raises(ModelError, match="truncated"):
            convert_shape_predictor(bad, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_trailing_bytes_and_random_bytes_are_refused(sp5_dat, tmp_path):
    from edgeface.export.dlib.shape_predictor_dat import read_shape_predictor

    longer = tmp_path / "longer.dat"
    longer.write_bytes(sp5_dat.read_bytes() + b"\x01\x00")
    with pytest.raises(ModelError, match="unexpected bytes"):
        read_shape_predictor(longer)
    rng = np.random.default_rng(0)
    for i in range(5):
        junk = tmp_path / f"junk{i}.dat"
        junk.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(ModelError):
            read_shape_predictor(junk)
    other = dlib_model_or_skip("dlib_face_recognition_resnet_model_v1.dat")
    with pytest.raises(ModelError, match="not a dlib shape_predictor"):
        read_shape_predictor(other)


def test_68_point_model_is_refused_for_its_licence(tmp_path):
    from edgeface.export.dlib.shape_predictor_dat import convert_shape_predictor

    path = dlib_model_or_skip("shape_predictor_68_face_landmarks.dat")
    with pytest.raises(ModelError, match="68 parts.*commercial use"):
        convert_shape_predictor(path, tmp_path / "out.npz")


def test_corrupt_or_foreign_npz_is_refused(sp5_npz, tmp_path):
    good = dict(np.load(sp5_npz, allow_pickle=False))
    tampered = dict(good, anchor_idx=good["anchor_idx"] + 5)
    np.savez(tmp_path / "tampered.npz", **tampered)
    with pytest.raises(ModelError, match="anchor_idx out of range"):
        ShapePredictor5.load(tmp_path / "tampered.npz")
    np.savez(tmp_path / "nan.npz", **dict(good, leaf_values=np.full_like(good["leaf_values"], np.nan)))
    with pytest.raises(ModelError, match="non-finite"):
        ShapePredictor5.load(tmp_path / "nan.npz")
    np.savez(tmp_path / "other.npz", **dict(good, format=np.array("something-else")))
    with pytest.raises(ModelError, match="format"):
        ShapePredictor5.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ModelError):
        ShapePredictor5.load(tmp_path / "junk.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(sp5_npz.read_bytes()[:5000])
    with pytest.raises(ModelError):
        ShapePredictor5.load(cut)


# ---------------------------------------------------------------------------------------------- parity


@pytest.mark.slow
def test_points_equal_dlib_on_dlib_detector_boxes(ours, reference, cases):
    pairs = [(c, b) for c in cases for b in c.hog_boxes]
    grey = sum(1 for c, _ in pairs if c.image.ndim == 2)
    assert len(pairs) >= 50 and grey >= 10, f"{len(pairs)} HOG boxes ({grey} grey): too few faces to compare"
    differ, total, examples = _differing(ours, reference, pairs)
    assert differ == 0, f"{differ} of {total} points differ from dlib: {examples}"


@pytest.mark.slow
def test_points_equal_dlib_on_boxes_mapped_from_yunet(ours, reference, cases, detector):
    pairs = []
    for c in cases:
        for box in detector.detect(c.image).boxes:
            pairs.append((c, dlib_box_from_detector(box)))
    assert len(pairs) >= 50, f"only {len(pairs)} YuNet boxes"
    differ, total, examples = _differing(ours, reference, pairs)
    assert differ == 0, f"{differ} of {total} points differ from dlib: {examples}"


@pytest.mark.slow
def test_points_equal_dlib_on_boxes_past_each_edge(ours, reference, cases):
    """Shift each HOG box so that a third of it, then two thirds, lies past the left, top, right or bottom edge
    (feature pixels outside the image read 0 in both); and boxes wholly outside, empty, inverted or huge."""
    pairs = []
    for c in cases[::2]:
        h, w = c.image.shape[:2]
        for l, t, r, b in c.hog_boxes[:1]:
            bw, bh = r - l + 1, b - t + 1
            for frac in (1 / 3, 2 / 3):
                shifts = [(-l - round(bw * frac), 0), (0, -t - round(bh * frac)),
                          (w - 1 - r + round(bw * frac), 0), (0, h - 1 - b + round(bh * frac))]
                pairs.extend((c, (l + dx, t + dy, r + dx, b + dy)) for dx, dy in shifts)
    c = cases[0]
    h, w = c.image.shape[:2]
    # wholly outside, empty, inverted, one pixel, far larger than the image
    extreme = [(w + 10, h + 10, w + 110, h + 110), (-300, -300, -200, -200), (0, 0, 0, 0), (10, 10, 10, 50),
               (50, 50, 40, 40), (20, 20, 21, 21), (-5 * w, -5 * h, 6 * w, 6 * h)]
    pairs.extend((c, box) for box in extreme)
    assert any(box[0] < 0 for _, box in pairs) and any(box[3] >= c.image.shape[0] for c, box in pairs)
    assert len(pairs) >= 100
    differ, total, examples = _differing(ours, reference, pairs)
    assert differ == 0, f"{differ} of {total} points differ from dlib: {examples}"


def test_predict_many_equals_predict_and_parts_come_in_dlib_order(ours, reference, few_cases):
    case = next(c for c in few_cases if c.image.ndim == 3 and c.hog_boxes)
    box = case.hog_boxes[0]
    l, t, r, b = box
    boxes = [box, (l + 7, t - 5, r + 7, b - 5), (l - 3, t + 4, r + 9, b + 16)]
    many = ours.predict_many(case.image, np.array(boxes))
    assert many.shape == (3, 5, 2) and many.dtype == np.float32
    for got, bx in zip(many, boxes):
        np.testing.assert_array_equal(got, ours.predict(case.image, bx))
        np.testing.assert_array_equal(got, dlib_points(reference, case.dlib_image, bx)[0])
    # dlib's order: 0/1 outer/inner corner of the eye on the image's right, 2/3 of the other eye, 4 the nose
    p = many[0]
    assert p[0, 0] > p[1, 0] > p[4, 0] > p[3, 0] > p[2, 0]
    assert p[4, 1] > max(p[0, 1], p[2, 1])
    assert ours.predict_many(case.image, np.zeros((0, 4), int)).shape == (0, 5, 2)


def test_bad_inputs_are_refused(ours, few_cases):
    case = few_cases[0]
    with pytest.raises(ValueError, match="integers"):
        ours.predict(case.image, (10.5, 10, 60, 60))
    with pytest.raises(ValueError, match="uint8"):
        ours.predict(case.image.astype(np.float32), (10, 10, 60, 60))
    with pytest.raises(ValueError, match="shape"):
        ours.predict(np.zeros((10, 10, 4), np.uint8), (1, 1, 5, 5))


def test_dlib_box_from_detector_matches_the_fitted_mapping():
    # s = 100: centre moves by (DX, DY) * 100, side SIDE * 100 (rounded), as a dlib rectangle right - left + 1 wide
    from edgeface.landmarks import box as boxmod

    l, t, r, b = dlib_box_from_detector((50, 40, 100, 100))
    assert r - l + 1 == b - t + 1 == round(boxmod.SIDE * 100)
    assert abs((l + r) / 2 - (100 + boxmod.DX * 100)) <= 0.5
    assert abs((t + b) / 2 - (90 + boxmod.DY * 100)) <= 0.5
    with pytest.raises(ValueError):
        dlib_box_from_detector((0, 0, 0, 10))


def test_tree_walk_by_table_equals_the_node_by_node_walk(sp5_npz, few_cases):
    """Trees of up to 15 splits are walked through a 16-bit outcome table; deeper ones node by node. Both walks
    reach the same leaves on the real model (the node-by-node walk forced by dropping the table)."""
    by_table = ShapePredictor5.load(sp5_npz)
    by_node = ShapePredictor5.load(sp5_npz)
    by_node._leaf_of_code = None
    for c in [c for c in few_cases if c.hog_boxes]:
        l, t, r, b = c.hog_boxes[0]
        boxes = np.array([(l, t, r, b), (l - 9, t + 6, r - 9, b + 6)])
        np.testing.assert_array_equal(by_table.predict_many(c.image, boxes), by_node.predict_many(c.image, boxes))
