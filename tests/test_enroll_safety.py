"""Enrollment safety on real faces: one face under two names, two people under one name, names, corrupt and
unsupported photos, a read-only gallery, Ctrl-C and a closed pipe."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from edgeface.cli import main
from edgeface.enroll_photos import CorruptImageError, normalise_name, read_photo_strict, scan_enroll_folder
from edgeface.gallery import Gallery


@pytest.fixture
def bundle(tmp_path, reference_onnx):
    from gatekit import make_bundle

    return make_bundle(tmp_path / "bundle", reference_onnx, 0.40)  # calibrated: the identity checks are FARs


@pytest.fixture
def enroll(tmp_path, bundle, yunet_path):
    gallery = tmp_path / "people.efg"

    def run(photos, *extra):
        return main(["enroll", "--bundle", str(bundle), "--photos", str(photos), "--gallery", str(gallery),
                     "--detector-model", str(yunet_path), *map(str, extra)])
    run.gallery = gallery
    return run


def _folder(root, files: dict):
    """files: relative path -> source photo."""
    for rel, src in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    return root


def test_the_same_face_under_a_second_name_is_refused(tmp_path, orl_dir, enroll, capsys):
    assert enroll(_folder(tmp_path / "a", {"s13/1.png": orl_dir / "s13" / "1.png"})) == 0
    capsys.readouterr()
    sam = _folder(tmp_path / "b", {"Sam.png": orl_dir / "s13" / "2.png"})
    assert enroll(sam) == 1
    out = capsys.readouterr().out
    assert "REFUSED Sam" in out and "'s13'" in out and "same face under two names" in out
    assert [p.name for p in Gallery.load(enroll.gallery).people] == ["s13"]
    assert enroll(sam, "--allow-similar") == 0
    assert "WARNING (--allow-similar) Sam" in capsys.readouterr().out
    assert sorted(p.name for p in Gallery.load(enroll.gallery).people) == ["Sam", "s13"]


def test_a_folder_holding_two_people_is_refused_with_the_pair(tmp_path, orl_dir, enroll, capsys):
    alice = _folder(tmp_path / "p", {"Alice/1.png": orl_dir / "s1" / "1.png", "Alice/2.png": orl_dir / "s1" / "2.png",
                                     "Alice/3.png": orl_dir / "s2" / "1.png", "Alice/4.png": orl_dir / "s2" / "2.png",
                                     "Bob/1.png": orl_dir / "s5" / "1.png", "Bob/2.png": orl_dir / "s5" / "3.png"})
    assert enroll(alice) == 1
    out = capsys.readouterr().out
    assert "REFUSED Alice" in out and "do not all show one person" in out and "Alice/" in out
    assert [p.name for p in Gallery.load(enroll.gallery).people] == ["Bob"]  # the consistent one enrolled


def test_names_are_normalised_and_clashing_sources_are_an_error(tmp_path, orl_dir, enroll, capsys):
    one = orl_dir / "s7" / "1.png"
    assert normalise_name("  Ada \t Lovelace ") == "Ada Lovelace"
    assert enroll(_folder(tmp_path / "a", {"Ada.png": one, "Ada/1.png": orl_dir / "s7" / "2.png"})) == 1
    err = capsys.readouterr().err
    assert "'Ada': folder Ada/, file Ada.png" in err and not enroll.gallery.exists()
    assert enroll(_folder(tmp_path / "b", {"Ada.png": one, "Ada .png": orl_dir / "s7" / "2.png"})) == 1
    assert "file Ada .png, file Ada.png" in capsys.readouterr().err
    assert enroll(_folder(tmp_path / "c", {"Ada  Lovelace .png": one})) == 0
    assert [p.name for p in Gallery.load(enroll.gallery).people] == ["Ada Lovelace"]


def _truncated_and_damaged(celeba_dir, dest):
    src = sorted((celeba_dir / "07201").glob("*.jpg"))[0]
    data = src.read_bytes()
    dest.mkdir(parents=True)
    (dest / "Cut").mkdir()
    files = {}
    for frac in (0.5, 0.9, 0.99):
        p = dest / "Cut" / f"cut{int(frac * 100)}.jpg"
        p.write_bytes(data[:int(len(data) * frac)])
        files[p] = "truncated"
    rng = np.random.default_rng(0)
    b = bytearray(data)
    for i in rng.integers(len(b) // 3, len(b) - 10, 200):
        b[i] = int(rng.integers(0, 256))
    (dest / "Cut" / "damaged.jpg").write_bytes(bytes(b))
    return src, files


def test_truncated_and_damaged_photos_are_named_corrupt(tmp_path, celeba_dir, orl_dir, enroll, capsys):
    src, cut = _truncated_and_damaged(celeba_dir, tmp_path / "p")
    assert read_photo_strict(src).ndim == 3
    for p in list(cut) + [tmp_path / "p" / "Cut" / "damaged.jpg"]:
        with pytest.raises(CorruptImageError, match="corrupt or truncated image"):
            read_photo_strict(p)
    png = (orl_dir / "s1" / "1.png").read_bytes()
    (tmp_path / "p" / "Cut" / "cut.png").write_bytes(png[:len(png) // 2])
    for name in ("scan.tiff", "notes.txt", ".hidden.jpg", "face.heic"):
        (tmp_path / "p" / name).write_bytes(b"x")
    assert enroll(tmp_path / "p") == 1
    out = capsys.readouterr().out
    for name in ("cut50.jpg", "cut90.jpg", "cut99.jpg", "damaged.jpg", "cut.png"):
        assert f"corrupt or truncated image: {tmp_path / 'p' / 'Cut' / name}" in out
    for name in ("scan.tiff", "notes.txt", ".hidden.jpg", "face.heic"):
        assert f"SKIPPED {tmp_path / 'p' / name}" in out
    assert not enroll.gallery.exists()


def test_a_read_only_gallery_is_refused_before_embedding(tmp_path, orl_dir, enroll, capsys):
    assert enroll(_folder(tmp_path / "a", {"s1.png": orl_dir / "s1" / "1.png"})) == 0
    before = enroll.gallery.read_bytes()
    enroll.gallery.chmod(0o400)
    capsys.readouterr()
    assert enroll(_folder(tmp_path / "b", {"s2.png": orl_dir / "s2" / "1.png"})) == 1
    cap = capsys.readouterr()
    assert "read-only" in cap.err and "identity checks" not in cap.out  # refused before the model even loaded
    assert enroll.gallery.read_bytes() == before


def _default_sigint() -> None:
    """A shell's background job (``cmd &``, nohup, some CI runners) starts with SIGINT ignored, and Python keeps an
    ignored SIGINT ignored: give the child the disposition a terminal gives it, so Ctrl-C is Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "edgeface.cli", *map(str, args)], text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=_default_sigint, **kw)


@pytest.mark.slow
def test_ctrl_c_during_enroll_leaves_the_gallery_and_lists_rejections(tmp_path, orl_dir, bundle, yunet_path):
    import cv2

    photos = tmp_path / "p"
    _folder(photos, {f"s{i}/{n}.png": orl_dir / f"s{i}" / f"{n}.png" for i in range(2, 30) for n in (1, 2, 3)})
    (photos / "A blurred").mkdir()
    cv2.imwrite(str(photos / "A blurred" / "1.png"), cv2.GaussianBlur(cv2.imread(str(orl_dir / "s1" / "1.png")), (0, 0), 6))
    gallery = tmp_path / "g.efg"
    from edgeface.runtime import open_embedder

    seed = Gallery.new(open_embedder(bundle).fingerprint, 128)
    seed.save(gallery)
    before = gallery.read_bytes()
    p = _cli("enroll", "--bundle", bundle, "--photos", photos, "--gallery", gallery, "--detector-model",
             yunet_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    while first and not first.startswith("REJECTED"):
        first = p.stdout.readline()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert "A blurred" in first
    assert p.returncode == 130, err
    assert "interrupted; gallery unchanged (1 photo(s) rejected so far)" in err
    assert "Traceback" not in err and gallery.read_bytes() == before


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    g = Gallery.new("0" * 64, 8)
    rng = np.random.default_rng(0)
    for i in range(3000):
        g.add(f"person {i:05d}", rng.normal(size=(1, 8)).astype(np.float32))
    g.save(tmp_path / "g.efg")
    p = _cli("people", "list", "--gallery", tmp_path / "g.efg", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(str(tmp_path))
    p.stdout.close()
    err = p.stderr.read()
    p.wait(60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert p.returncode == 141


def test_a_cut_jpeg_with_its_end_marker_and_gif_or_tiff_are_refused_by_the_cli(tmp_path, celeba_dir, enroll, capsys):
    """Issue 23: a JPEG cut short with an end marker appended (libjpeg fills the rest grey) was enrolled; the page
    took GIF and TIFF that the CLI refused. One reader, one set of formats (tests/test_admin_limits.py: the page)."""
    from hostilekit import as_format, cut_jpeg

    jpeg = sorted((celeba_dir / "07201").glob("*.jpg"))[0].read_bytes()
    photos = tmp_path / "p"
    photos.mkdir()
    (photos / "Cut.jpg").write_bytes(cut_jpeg(jpeg))
    (photos / "Gif.jpg").write_bytes(as_format(jpeg, "GIF"))  # a GIF whatever it is called
    (photos / "Tiff.jpg").write_bytes(as_format(jpeg, "TIFF"))
    (photos / "Scan.tiff").write_bytes(as_format(jpeg, "TIFF"))
    (photos / "Anim.gif").write_bytes(as_format(jpeg, "GIF"))
    assert enroll(photos) == 1
    out = capsys.readouterr().out
    assert f"corrupt or truncated image: {photos / 'Cut.jpg'}" in out
    assert "GIF images are not accepted" in out and "TIFF images are not accepted" in out
    assert f"SKIPPED {photos / 'Scan.tiff'}" in out and f"SKIPPED {photos / 'Anim.gif'}" in out
    assert not enroll.gallery.exists()
