"""``edgeface demo``: finding data, the identity split, and the message when there is no data."""

from __future__ import annotations

from edgeface.cli import main
from edgeface.export.demo import find_photo_set, split_identities


def test_demo_without_data_says_exactly_what_to_provide(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EDGEFACE_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--data", str(tmp_path / "empty"), "--workdir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert "needs real face photos" in err and "EDGEFACE_DATA=" in err and "EDGEFACE_YUNET=" in err
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
