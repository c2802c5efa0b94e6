"""Detection and alignment on real faces (ORL, celeba-loose)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeface.align import ARCFACE_TEMPLATE, align_face, similarity_transform, transform_points
from edgeface.detect import create_detector
from edgeface.errors import AlignmentError, DetectorError
from edgeface.faces import Detections, largest_face, most_central_face
from edgeface.faceset import read_image, scan_identities


def _sample(root, step):
    return scan_identities(root)[::step]


@pytest.mark.parametrize("which,step", [("orl", 1), ("celeba", 3)])
def test_yunet_finds_faces_with_landmarks_in_98_percent(which, step, detector, orl_dir, celeba_dir):
    root = orl_dir if which == "orl" else celeba_dir
    photos = _sample(root, step)
    found = 0
    for p in photos:
        dets = detector.detect(read_image(p.path))
        assert dets.boxes.dtype == np.float32 and dets.landmarks.shape[1:] == (5, 2)
        if len(dets) and np.all(np.isfinite(dets.landmarks)):
            found += 1
    rate = found / len(photos)
    print(f"\nYuNet detection rate on {which}: {found}/{len(photos)} = {rate:.4f}")
    assert rate >= 0.98


def test_aligned_eyes_land_within_3px_of_template(detector, celeba_dir, orl_dir):
    errors = []
    for p in _sample(orl_dir, 4) + _sample(celeba_dir, 10):
        face = largest_face(detector.detect(read_image(p.path)))
        if face is None:
            continue
        m = similarity_transform(face.landmarks)
        eyes = transform_points(m, face.landmarks[:2])
        errors.extend(np.linalg.norm(eyes - ARCFACE_TEMPLATE[:2], axis=1))
    errors = np.array(errors)
    print(f"\neye error px: median {np.median(errors):.2f}, p90 {np.percentile(errors, 90):.2f}, "
          f"within 3 px {np.mean(errors <= 3):.3f} of {len(errors)} eyes")
    assert np.median(errors) <= 3.0
    assert np.mean(errors <= 3.0) >= 0.8


def test_align_output_is_exact_for_template_points():
    # an image whose landmarks are the template scaled x2 and shifted aligns back onto the template exactly
    src = ARCFACE_TEMPLATE * 2.0 + np.array([30.0, 10.0], np.float32)
    m = similarity_transform(src)
    np.testing.assert_allclose(transform_points(m, src), ARCFACE_TEMPLATE, atol=1e-3)
    img = np.zeros((300, 300, 3), np.uint8)
    for x, y in src.astype(int):
        img[y - 2:y + 3, x - 2:x + 3] = 255
    crop = align_face(img, src)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE.round().astype(int):
        assert crop[y, x].max() > 100


def test_grey_images_align_to_three_channels(detector, orl_dir):
    import cv2

    grey = cv2.imread(str(scan_identities(orl_dir)[0].path), cv2.IMREAD_GRAYSCALE)
    face = largest_face(detector.detect(grey))
    assert face is not None
    assert align_face(grey, face.landmarks).shape == (112, 112, 3)


@pytest.mark.parametrize("landmarks,msg", [
    (np.zeros((5, 2)), "degenerate"),
    (np.full((5, 2), np.nan), "NaN"),
    (np.array([[0, 0], [10, 0], [20, 0], [30, 0], [40, 0]], float), "collinear"),
    (np.zeros((4, 2)), "5 landmarks"),
])
def test_degenerate_landmarks_give_clear_error(landmarks, msg):
    with pytest.raises(AlignmentError, match=msg):
        align_face(np.zeros((50, 50, 3), np.uint8), landmarks)


def test_no_face_gives_empty_arrays_with_stable_shapes(detector):
    dets = detector.detect(np.full((240, 320, 3), 127, np.uint8))
    assert len(dets) == 0
    assert dets.boxes.shape == (0, 4) and dets.landmarks.shape == (0, 5, 2) and dets.scores.shape == (0,)
    assert largest_face(dets) is None and most_central_face(dets, (240, 320)) is None


def test_face_selection_helpers():
    boxes = np.array([[0, 0, 50, 50], [100, 100, 30, 30], [10, 150, 80, 80]], np.float32)
    lm = np.zeros((3, 5, 2), np.float32)
    dets = Detections(boxes, lm, np.ones(3))
    assert largest_face(dets).box[2] == 80
    assert largest_face(dets, min_size=90) is None
    assert most_central_face(dets, (230, 230)).box[2] == 30


def test_haar_fallback_is_labelled_and_finds_orl_faces(orl_dir):
    det = create_detector("haar")
    assert det.approximate is True
    photos = scan_identities(orl_dir)[::10]
    found = sum(len(det.detect(read_image(p.path))) > 0 for p in photos)
    assert found / len(photos) >= 0.8
    dets = det.detect(read_image(photos[0].path))
    assert dets.landmarks.shape == (len(dets), 5, 2)


def test_missing_or_corrupt_detector_model_gives_clear_error(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        create_detector("yunet", tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx file")
    with pytest.raises(DetectorError, match="cannot load"):
        create_detector("yunet", bad)
    with pytest.raises(DetectorError, match="unknown detector"):
        create_detector("mtcnn")
