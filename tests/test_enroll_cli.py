"""enroll, people and calibrate through the real CLI, on real ORL faces with the reference ONNX embedder (in a bundle
calibrated for real: enrollment's identity checks are false-accept rates and refuse to guess without one)."""

from __future__ import annotations

import json
import shutil
import stat

import cv2
import numpy as np
import pytest

from gatekit import make_bundle as calibrated_bundle
from gatekit import recognizer

from edgeface.bundle import Bundle, BundleMeta, describe_model_file
from edgeface.cli import main
from edgeface.faceset import read_image
from edgeface.gallery import Gallery


@pytest.fixture
def det_args(yunet_path):
    return ["--detector-model", str(yunet_path)]


@pytest.fixture
def photos(tmp_path, orl_dir):
    """s1 and s2 with two photos each (folders), s3 as one flat photo, and two bad photos: a blurred copy
    and a tiny copy of s4."""
    root = tmp_path / "photos"
    for ident in ("s1", "s2"):
        (root / ident).mkdir(parents=True)
        for n in ("1", "2"):
            shutil.copy(orl_dir / ident / f"{n}.png", root / ident / f"{n}.png")
    shutil.copy(orl_dir / "s3" / "1.png", root / "Third Person.png")
    img = read_image(orl_dir / "s4" / "1.png")
    cv2.imwrite(str(root / "Blurry.png"), cv2.GaussianBlur(img, (0, 0), 6))
    cv2.imwrite(str(root / "Tiny.png"), cv2.resize(img, (31, 37), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture
def bundle(tmp_path, reference_onnx):
    return calibrated_bundle(tmp_path / "bundle", reference_onnx, 0.40)


def test_enroll_real_photos_rejects_with_reasons(tmp_path, photos, bundle, det_args, orl_dir, capsys):
    gallery_path = tmp_path / "gallery.efg"
    argv = ["enroll", "--bundle", str(bundle), "--photos", str(photos), "--gallery", str(gallery_path), *det_args]
    assert main(argv) == 1  # two photos were rejected
    out = capsys.readouterr().out
    assert "REJECTED" in out and "Blurry.png" in out and "blurred" in out
    assert "Tiny.png" in out and ("too small" in out or "no face" in out)
    assert "enrolled 5 photo(s) of 3 person(s)" in out and "NOT ENROLLED" in out
    assert stat.S_IMODE(gallery_path.stat().st_mode) == 0o600

    rec = recognizer(bundle)
    g = Gallery.load(gallery_path, expected_fingerprint=rec.fingerprint)
    assert sorted(p.name for p in g.people) == ["Third Person", "s1", "s2"]
    assert [len(g.find(n).embeddings) for n in ("s1", "s2", "Third Person")] == [2, 2, 1]

    # other photos of the enrolled people match them
    matcher = rec.matcher(g)
    for ident, name in (("s1", "s1"), ("s2", "s2"), ("s3", "Third Person")):
        _, emb = rec.enroll_photo(rec.read_photo(orl_dir / ident / "7.png"))
        m = matcher.match(emb)
        assert m.name == name and m.margin > 0

    # --skip-rejected: exit 0; re-enrolling the same photos says "already enrolled" and adds nothing
    assert main(argv + ["--skip-rejected"]) == 0
    out = capsys.readouterr().out
    assert "already enrolled: s1:" in out and "enrolled 0 photo(s) of 0 person(s)" in out
    again = Gallery.load(gallery_path)
    assert again.find("s1").id == g.find("s1").id and len(again.find("s1").embeddings) == 2
    # a new photo of an enrolled person joins them
    shutil.copy(orl_dir / "s1" / "3.png", photos / "s1" / "3.png")
    assert main(argv + ["--skip-rejected"]) == 0
    assert len(Gallery.load(gallery_path).find("s1").embeddings) == 3


def test_enroll_refuses_to_guess_without_a_calibration(tmp_path, photos, reference_onnx, det_args, capsys):
    rc = main(["enroll", "--bundle", str(reference_onnx), "--photos", str(photos / "s1"), "--gallery",
               str(tmp_path / "g.efg"), *det_args])
    assert rc == 78  # a config problem: nothing to compare with, and nothing written
    err = capsys.readouterr().err
    assert "no calibration" in err and "edgeface calibrate --bundle" in err and "Traceback" not in err
    assert not (tmp_path / "g.efg").exists()


def test_enroll_refuses_a_gallery_of_another_model(tmp_path, photos, bundle, det_args, capsys):
    gallery_path = tmp_path / "g.efg"
    other = Gallery.new("ff" * 32, 128)
    other.add("Someone", np.ones((1, 128), np.float32))
    other.save(gallery_path)
    before = gallery_path.read_bytes()
    rc = main(["enroll", "--bundle", str(bundle), "--photos", str(photos / "s1"), "--gallery",
               str(gallery_path), *det_args])
    assert rc == 1
    assert "re-enroll everyone with this model" in capsys.readouterr().err
    assert gallery_path.read_bytes() == before


@pytest.fixture
def saved_gallery(tmp_path):
    rng = np.random.default_rng(0)
    g = Gallery.new("cd" * 32, 8)
    for name in ("Alice", "Bob", "Carol"):
        g.add(name, rng.standard_normal((2, 8)))
    path = tmp_path / "people.efg"
    g.save(path)
    return path, g


def test_people_list_remove_rename(saved_gallery, capsys):
    path, g = saved_gallery
    assert main(["people", "list", "--gallery", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 enrolled" in out and all(n in out for n in ("Alice", "Bob", "Carol"))

    assert main(["people", "list", "--json", "--gallery", str(path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed["people"]] == ["Alice", "Bob", "Carol"]
    assert listed["fingerprint"] == "cd" * 32 and listed["people"][0]["embeddings"] == 2

    bob_bytes = g.find("Bob").embeddings.astype("<f4").tobytes()
    assert bob_bytes[:32] in path.read_bytes()
    assert main(["people", "--gallery", str(path), "remove", "Bob"]) == 0
    assert "removed Bob" in capsys.readouterr().out
    assert bob_bytes[:32] not in path.read_bytes() and b"Bob" not in path.read_bytes()

    carol_id = g.find("Carol").id
    assert main(["people", "rename", carol_id, "Caroline", "--gallery", str(path)]) == 0
    back = Gallery.load(path)
    assert [p.name for p in back.people] == ["Alice", "Caroline"] and back.find("Caroline").id == carol_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_people_errors_are_clear(saved_gallery, tmp_path, capsys):
    path, _ = saved_gallery
    assert main(["people", "remove", "Zoe", "--gallery", str(path)]) == 1
    assert "no enrolled person is called 'Zoe'" in capsys.readouterr().err
    assert main(["people", "rename", "Alice", "Bob", "--gallery", str(path)]) == 1
    assert "already enrolled" in capsys.readouterr().err
    broken = tmp_path / "broken.efg"
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    broken.write_bytes(bytes(data))
    assert main(["people", "list", "--gallery", str(broken)]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert main(["people", "list", "--gallery", str(tmp_path / "none.efg")]) == 1
    assert "no gallery file" in capsys.readouterr().err


def make_bundle(root, reference_onnx) -> Bundle:
    """A bundle directory around a copy of the reference ONNX (as an exported bundle would look)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(reference_onnx, root / "model.onnx")
    bare = Bundle.from_bare_model(root / "model.onnx")
    meta = BundleMeta(source="imported", name="reference", input=bare.meta.input,
                      embedding_size=bare.meta.embedding_size,
                      models={"onnx_fp32": describe_model_file(root, "model.onnx", "onnx", "fp32")})
    bundle = Bundle(root, meta)
    bundle.save()
    return bundle


def test_calibrate_stores_the_threshold_in_the_bundle(tmp_path, orl_dir, reference_onnx, det_args, capsys):
    # identities s21.. are disjoint from those the other tests enroll (s1-s4)
    data = tmp_path / "calib"
    for i in range(21, 31):
        (data / f"s{i}").mkdir(parents=True)
        for n in range(1, 4):
            shutil.copy(orl_dir / f"s{i}" / f"{n}.png", data / f"s{i}" / f"{n}.png")
    bundle_dir = tmp_path / "bundle"
    make_bundle(bundle_dir, reference_onnx)
    report = tmp_path / "cal.json"
    rc = main(["calibrate", "--bundle", str(bundle_dir), "--data", str(data), "--far", "1e-2",
               "--json", str(report), *det_args])
    assert rc == 0
    out = capsys.readouterr().out
    assert "threshold" in out and "expected TAR" in out and "FNIR" in out
    t = Bundle.load(bundle_dir).threshold("onnx_fp32")
    rep = json.loads(report.read_text())
    assert t is not None and t.far == 1e-2 and t.value == rep["threshold"]
    assert 0 < t.value < 1 and 0 <= t.tar <= 1 and 0 <= t.fnir <= 1
    assert rep["impostor_pairs"] == 10 * 9 // 2 * 9 and rep["genuine_pairs"] == 10 * 3
    assert rep["achieved_far"] <= 1e-2

    # a bare model has nowhere to store it; too few impostor pairs for the FAR is refused
    assert main(["calibrate", "--bundle", str(reference_onnx), "--data", str(data), *det_args]) == 1
    assert "bundle directory" in capsys.readouterr().err
    assert main(["calibrate", "--bundle", str(bundle_dir), "--data", str(data), "--far", "1e-4", *det_args]) == 1
    assert "cannot resolve FAR 1e-4" in capsys.readouterr().err
