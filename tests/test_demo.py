"""``edgeface demo``: finding data, the identity split, and the message when there is no data."""

from __future__ import annotations

import json

import pytest

from edgeface.cli import main
from edgeface.export.demo import find_photo_set, split_identities


def test_demo_without_data_says_exactly_what_to_provide(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EDGEFACE_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--data", str(tmp_path / "empty"), "--workdir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert "needs real face photos" in err and "EDGEFACE_DATA=" in err and "EDGEFACE_YUNET=" in err
    assert "Labeled Faces in the Wild" in err and "fetch_lfw_people" in err  # where to get faces, and how
    assert str(tmp_path / "empty") in err
    assert not (tmp_path / "w" / "run").exists()


def test_demo_prefers_orl_in_a_folder_of_sets(orl_dir):
    root, photos = find_photo_set(orl_dir.parent)
    assert root == orl_dir.resolve() and len({p.identity for p in photos}) == 40


def test_demo_split_is_identity_disjoint_and_seeded(orl_dir):
    _, photos = find_photo_set(orl_dir)
    a = split_identities(photos, seed=0, people=5)
    b = split_identities(photos, seed=0, people=5)
    assert a == b
    groups = [set(a.train), set(a.calib), set(a.enrolled), set(a.strangers)]
    assert sum(len(g) for g in groups) == len(set().union(*groups)) == 40
    assert len(a.enrolled) == len(a.strangers) == 5 and len(a.train) >= 20


def test_demo_on_your_photos_without_a_public_set_says_which_to_download(tmp_path, capsys, monkeypatch):
    """No ../shared needed: a folder of one's own photos, and no other faces anywhere."""
    monkeypatch.delenv("EDGEFACE_DATA", raising=False)
    staff = tmp_path / "staff"
    staff.mkdir()
    (staff / "Ada.jpg").write_bytes(b"\xff\xd8 not really a photo")
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--photos", str(staff), "--data", str(tmp_path / "empty"), "--workdir",
                 str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert f"edgeface demo --photos {staff} also needs other people's faces" in err
    assert "Labeled Faces in the Wild" in err and "pip install scikit-learn" in err
    assert "fetch_lfw_people" in err and "--data ~/scikit_learn_data/lfw_home/lfw_funneled" in err
    assert "Traceback" not in err and not (tmp_path / "w" / "bundle").exists()


def test_demo_photo_options_go_with_photos(tmp_path, capsys):
    assert main(["demo", "--hard", "--workdir", str(tmp_path / "w")]) == 1
    assert "--hard goes with --photos DIR" in capsys.readouterr().err


def _staff(tmp_path, orl_dir, people=("s1", "s2", "s3"), single=("s4",)):
    """Staff photos as a facility manager has them: a folder per person, and one person with a single photo."""
    staff = tmp_path / "staff"
    for p in people:
        (staff / p).mkdir(parents=True)
        for f in sorted((orl_dir / p).iterdir())[:4]:
            (staff / p / f.name).symlink_to(f)
    for p in single:
        (staff / f"{p}.png").symlink_to(sorted((orl_dir / p).iterdir())[0])
    return staff


@pytest.mark.slow
def test_demo_on_your_photos_lets_them_in_and_no_stranger(tmp_path, orl_dir, reference_onnx, yunet_path, capsys):
    """--photos with --bundle (no export: the reference MobileFaceNet, calibrated again on the public people):
    each person enrolled from their first photo is let in on a clip of their other photos, no stranger is."""
    from gatekit import make_bundle

    staff = _staff(tmp_path, orl_dir)
    bundle = make_bundle(tmp_path / "bundle", reference_onnx, None)
    before = (bundle / "edgeface.json").read_bytes()
    assert main(["demo", "--photos", str(staff), "--data", str(orl_dir), "--bundle", str(bundle), "--workdir",
                 str(tmp_path / "w"), "--strangers", "6", "--detector-model", str(yunet_path)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "w" / "demo.json").read_text())
    assert summary["enrolled"] == ["s1", "s2", "s3", "s4"] and summary["same_photo"] == ["s4"]
    assert not set(summary["public_split"]["strangers"] + summary["public_split"]["calibrate"]) & {"s1", "s2", "s3", "s4"}
    rows = summary["appearances"]
    employees = {r["who"]: r for r in rows if r["enrolled"]}
    assert set(employees) == {"s1", "s2", "s3", "s4"}
    for name in ("s1", "s2", "s3"):  # seen with another photo than the enrolled (first) one
        assert employees[name]["photo"] != sorted((staff / name).iterdir())[0].name
    assert summary["employees_let_in"] == "4/4" and summary["strangers_let_in"] == "0/6"
    assert summary["wrong_unlocks"] == 0
    assert "employees let in: 4/4; strangers let in: 0/6; wrong unlocks: 0" in out
    assert "stranger stranger:" not in out
    assert "employee s4: door opened for s4 (seen with s4.png, the enrollment photo)" in out
    assert (bundle / "edgeface.json").read_bytes() == before  # the user's bundle is not touched
