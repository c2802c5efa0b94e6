"""The one gallery writer: an flock'ed read-modify-write. Concurrent CLI writers (enroll, enroll, remove,
rename) as real subprocesses on real ORL faces lose nothing and never undo a removal."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from edgeface.gallery import Gallery, GalleryNotFoundError
from edgeface.gallery_writer import (GalleryLockTimeoutError, GalleryReadOnlyError, GalleryWriter, check_writable,
                                     lock_path)


def _unit(seed: int, d: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(1, d)).astype(np.float32)
    return v / np.linalg.norm(v)


def _seed_gallery(path, names=("A", "B")) -> Gallery:
    g = Gallery.new("ab" * 32, 8)
    for i, n in enumerate(names):
        g.add(n, _unit(i))
    g.save(path)
    return g


def test_writer_rereads_under_the_lock_bumps_the_version_and_writes_0600(tmp_path):
    path = tmp_path / "g.efg"
    _seed_gallery(path)
    stale = Gallery.load(path)
    with GalleryWriter.open(path) as g:  # someone else removes A meanwhile
        g.remove("A")
    with GalleryWriter.open(path) as g:
        g.add("C", _unit(3))
    final = Gallery.load(path)
    assert sorted(p.name for p in final.people) == ["B", "C"] and stale.find("A") is not None
    assert final.version == stale.version + 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(lock_path(path).stat().st_mode) == 0o600


def test_an_exception_or_discard_writes_nothing(tmp_path):
    path = tmp_path / "g.efg"
    _seed_gallery(path)
    before = path.read_bytes()
    with pytest.raises(KeyError):
        with GalleryWriter.open(path) as g:
            g.remove("A")
            raise KeyError("interrupted")
    with GalleryWriter.open(path) as g:
        g.remove("B")
    assert Gallery.load(path).find("B") is None
    before = path.read_bytes()
    w = GalleryWriter.open(path)
    with w as g:
        g.remove("A")
        w.discard()
    assert path.read_bytes() == before


def test_missing_gallery_needs_create(tmp_path):
    path = tmp_path / "new.efg"
    with pytest.raises(GalleryNotFoundError):
        with GalleryWriter.open(path):
            pass
    with GalleryWriter.open(path, create=("cd" * 32, 8)) as g:
        g.add("Ada", _unit(1))
    assert Gallery.load(path).version == 1 and len(Gallery.load(path)) == 1


def test_a_second_writer_waits_then_times_out_naming_the_holder(tmp_path):
    path = tmp_path / "g.efg"
    _seed_gallery(path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom edgeface.gallery_writer import GalleryWriter\n"
        f"with GalleryWriter.open({str(path)!r}) as g:\n"
        "    g.remove('A'); print('locked', flush=True); time.sleep(float(sys.argv[1]))\n"), "1.5"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(GalleryLockTimeoutError, match=f"process {holder.pid} is still writing"):
            with GalleryWriter.open(path, timeout=0.3):
                pass
        assert 0.25 < time.monotonic() - t0 < 1.4
        with GalleryWriter.open(path, timeout=30) as g:  # waits, then sees the holder's change
            assert g.find("A") is None
            g.rename("B", "Bea")
    finally:
        holder.wait(30)
    assert [p.name for p in Gallery.load(path).people] == ["Bea"]


def test_read_only_gallery_is_refused_before_any_work(tmp_path):
    path = tmp_path / "g.efg"
    _seed_gallery(path)
    path.chmod(0o400)
    with pytest.raises(GalleryReadOnlyError, match="read-only"):
        check_writable(path)
    with pytest.raises(GalleryReadOnlyError, match="does not exist"):
        check_writable(tmp_path / "nowhere" / "g.efg")


def _cli(*args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "edgeface.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.slow
def test_four_concurrent_cli_writers_lose_nothing_20_times(tmp_path, orl_dir, reference_onnx, yunet_path, detector):
    """enroll X, enroll Y, remove A, rename B -> Bea, all at once, 20 times; the final gallery must be exactly
    {Bea, C, X, Y} every time (today's main keeps one enroll's people only, and brings A back)."""
    from gatekit import make_bundle, recognizer

    from edgeface.faceset import Photo

    bundle = make_bundle(tmp_path / "bundle", reference_onnx, 0.40)  # enrollment's identity checks need a calibration
    emb = recognizer(bundle)
    base = emb.embed_photos([Photo(n, orl_dir / s / "1.png") for n, s in (("A", "s1"), ("B", "s2"), ("C", "s3"))],
                            progress=False)
    seed = Gallery.new(emb.fingerprint, emb.embedding_size)
    for i, p in enumerate(base.accepted):
        seed.add(p.identity, base.embeddings[i:i + 1])
    dirs = {}
    for name, ident in (("X", "s10"), ("Y", "s11")):
        dirs[name] = tmp_path / f"photos_{name}" / name
        dirs[name].mkdir(parents=True)
        shutil.copy(orl_dir / ident / "1.png", dirs[name] / "1.png")
    gallery = tmp_path / "people.efg"
    tried = lost = 0
    failures = []
    for rep in range(20):
        seed.copy().save(gallery)
        procs = [_cli("enroll", "--bundle", bundle, "--photos", dirs["X"].parent, "--gallery", gallery,
                      "--detector-model", yunet_path),
                 _cli("enroll", "--bundle", bundle, "--photos", dirs["Y"].parent, "--gallery", gallery,
                      "--detector-model", yunet_path),
                 _cli("people", "remove", "A", "--gallery", gallery),
                 _cli("people", "rename", "B", "Bea", "--gallery", gallery)]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        tried += len(procs)
        for p, out in zip(procs, outs):
            if p.returncode != 0:
                failures.append((rep, p.args, out[-500:]))
        final = Gallery.load(gallery, expected_fingerprint=emb.fingerprint)
        names = {p.name for p in final.people}
        expected = {"Bea", "C", "X", "Y"}
        lost += len(expected ^ names)
        assert final.version >= seed.version + 4
    print(f"\nconcurrent gallery writers: {tried} operations tried, {lost} lost updates")
    assert not failures, failures
    assert lost == 0


KILLED_WRITER = """
import sys, numpy as np
from edgeface.gallery_writer import GalleryWriter
path = sys.argv[1]
rng = np.random.default_rng(0)
rows = rng.standard_normal((12000, 128)).astype(np.float32)  # a 6 MB gallery, as in issue 23
while True:
    with GalleryWriter.open(path, create=("ab" * 32, 128)) as g:
        g.people = []
        g.add("everyone", rows)
"""


def test_temp_files_of_killed_writers_are_removed_by_the_next_writer(tmp_path):
    """Issue 23: 300 SIGKILLs during writes left stray 6 MB temp files that nothing ever removed. Writers are
    killed (kill -9) while their temp file exists until one is left behind; the next writer removes it."""
    import signal

    path = tmp_path / "people.gallery"
    Gallery.new("ab" * 32, 128).save(path)
    left: set[str] = set()
    for attempt in range(40):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        try:
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob(".people.gallery.*.tmp")) and time.monotonic() < deadline:
                time.sleep(0.001)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        left = {p.name for p in tmp_path.glob(".people.gallery.*.tmp")}
        if left:
            break
    assert left, "no writer was caught mid-write in 40 tries"
    Gallery.load(path)  # the gallery itself is whole
    with GalleryWriter.open(path) as g:
        g.add("one more", _unit(7, 128))
    assert not list(tmp_path.glob(".people.gallery.*.tmp")), "the stray temp files were kept"
    # an unlocked atomic write (accounts, bundle metadata) removes only leftovers older than STALE_TEMP_S
    from edgeface.fileutil import STALE_TEMP_S, atomic_write_bytes

    target = tmp_path / "accounts.json"
    old, fresh = tmp_path / ".accounts.json.abcd1234.tmp", tmp_path / ".accounts.json.efgh5678.tmp"
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y")
    os.utime(old, (time.time() - STALE_TEMP_S - 5,) * 2)
    atomic_write_bytes(target, b"{}")
    assert not old.exists() and fresh.exists()  # a live writer's fresh temp file is left alone
