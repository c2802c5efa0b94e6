"""`edgeface prepare` on real ORL photos: crops, manifest, no-face photos listed, identity-disjoint split."""

import json

import numpy as np
import pytest

from edgeface.cli import main
from edgeface.cropcache import load_cache, split_identities
from edgeface.errors import EdgefaceError
from facekit import orl_subset


@pytest.fixture(scope="module")
def prepared(orl_dir, yunet_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    photos = orl_subset(orl_dir, root / "photos", identities=3, per_identity=3, blank=True)
    rc = main(["prepare", "--data", str(photos), "--out", str(root / "cache"), "--detector-model", str(yunet_path),
               "--no-progress"])
    assert rc == 0
    return root / "cache"


def test_prepare_writes_crops_and_manifest(prepared):
    cache = load_cache(prepared)
    m = cache.manifest
    assert m["counts"] == {"images": 10, "crops": 9, "no_face": 1, "unreadable": 0, "identities": 3}
    assert cache.crops.shape == (9, 112, 112, 3) and cache.crops.dtype == np.uint8
    item = m["items"][0]
    assert set(item) == {"identity", "source", "landmarks", "score"}
    assert len(item["landmarks"]) == 5 and 0 < item["score"] <= 1
    assert (prepared.parent / "photos" / item["source"]).is_file()
    assert cache.crops[0].std() > 10  # a face, not an empty crop


def test_no_face_photo_is_listed_not_dropped(prepared):
    cache = load_cache(prepared)
    assert [n["source"].split("/")[-1] for n in cache.no_face] == ["zz_blank.png"]
    assert cache.no_face[0]["reason"] == "no face"
    ident = cache.no_face[0]["identity"]
    _, _, no_face = cache.select([ident])
    assert len(no_face) == 1


def test_cache_refuses_a_truncated_crop_file(prepared, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text((prepared / "manifest.json").read_text())
    np.save(bad / "crops.npy", np.zeros((2, 112, 112, 3), np.uint8))
    with pytest.raises(EdgefaceError, match="corrupt"):
        load_cache(bad)


def test_split_is_identity_disjoint_and_seeded():
    names = [f"id{i:03d}" for i in range(239)]
    train, val = split_identities(names, 0.2, seed=0)
    assert len(val) == 48 and len(train) == 191
    assert not set(train) & set(val) and set(train) | set(val) == set(names)
    assert split_identities(names, 0.2, seed=0) == (train, val)
    assert split_identities(names, 0.2, seed=1) != (train, val)


def test_manifest_is_json_with_sources_relative_to_the_data(prepared):
    m = json.loads((prepared / "manifest.json").read_text())
    assert all(not it["source"].startswith("/") for it in m["items"])
