"""A gallery shared by the gate and the admin page through a group keeps its group and group bits when any
writer replaces it (a new inode each time), its lock file likewise; world bits are never kept or given."""

from __future__ import annotations

import grp
import os
import stat

import numpy as np
import pytest

from edgeface.gallery import Gallery
from edgeface.gallery_writer import GalleryWriter, lock_path
from edgeface.shared_files import shared_mode

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root here")
FP = "f" * 64


def _group() -> int:
    for name in ("nogroup", "users"):
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            pass
    pytest.skip("no group nogroup or users on this machine")


def _gallery(path, names=("Ada", "Bob")):
    g = Gallery.new(FP, 8)
    rng = np.random.default_rng(0)
    for name in names:
        g.add(name, rng.normal(size=(2, 8)).astype(np.float32))
    g.save(path)
    return path


def _mode(path):
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_gid


@pytest.mark.parametrize(("before", "after"), [(0o660, 0o660), (0o640, 0o640), (0o666, 0o660), (0o600, 0o600)])
def test_every_write_keeps_the_gallerys_group_and_group_bits_never_world(tmp_path, before, after):
    gid = _group()
    path = _gallery(tmp_path / "people.gallery")
    os.chown(path, -1, gid)
    os.chmod(path, before)
    inode = os.stat(path).st_ino
    with GalleryWriter.open(path) as g:
        g.remove("Bob")
    assert os.stat(path).st_ino != inode  # replaced atomically, a new file
    assert [p.name for p in Gallery.load(path).people] == ["Ada"]
    mode, got_gid = _mode(path)
    assert mode == after
    if before & 0o070:
        assert got_gid == gid
    lock_mode, lock_gid = _mode(lock_path(path))  # the lock is shared as the gallery is
    assert lock_mode == after and (lock_gid == gid or not after & 0o070)
    assert not mode & 0o007 and not lock_mode & 0o007


def test_a_new_gallery_in_a_shared_directory_is_shared_in_a_private_one_private(tmp_path):
    gid = _group()
    shared = tmp_path / "var-lib-edgeface"
    shared.mkdir()
    os.chown(shared, -1, gid)
    os.chmod(shared, 0o2770)
    with GalleryWriter.open(shared / "people.gallery", create=(FP, 8)) as g:
        g.add("Ada", np.ones((1, 8), np.float32))
    assert _mode(shared / "people.gallery") == (0o660, gid)
    assert _mode(lock_path(shared / "people.gallery")) == (0o660, gid)

    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    with GalleryWriter.open(private / "people.gallery", create=(FP, 8)) as g:
        g.add("Ada", np.ones((1, 8), np.float32))
    assert _mode(private / "people.gallery")[0] == 0o600
    assert _mode(lock_path(private / "people.gallery"))[0] == 0o600


def test_shared_mode_rules(tmp_path):
    os.chmod(tmp_path, 0o700)
    assert shared_mode(tmp_path / "absent", 0o600, 0o060) == (0o600, None)
    os.chmod(tmp_path, 0o770)  # a group-rwx directory shares new files with its group
    assert shared_mode(tmp_path / "absent", 0o600, 0o060) == (0o660, os.stat(tmp_path).st_gid)
    f = tmp_path / "f"
    f.write_bytes(b"")
    os.chmod(f, 0o777)
    assert shared_mode(f, 0o600, 0o040) == (0o640, os.stat(f).st_gid)
    assert shared_mode(f, 0o666, 0o070)[0] == 0o670  # base world bits are dropped too
