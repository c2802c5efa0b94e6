"""The gallery file: round trip, every corruption with its own error, atomic writes, privacy of remove."""

from __future__ import annotations

import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from edgeface.gallery import (
    MAGIC,
    DuplicatePersonError,
    Gallery,
    GalleryChecksumError,
    GalleryEmbeddingSizeError,
    GalleryError,
    GalleryFingerprintError,
    GalleryFormatError,
    GalleryNonFiniteError,
    GalleryNotFoundError,
    GalleryTruncatedError,
    GalleryVersionError,
    GalleryZeroVectorError,
    PersonNotFoundError,
)

FP = "ab" * 32
D = 16


def unit(rng, k, d=D):
    e = rng.standard_normal((k, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


@pytest.fixture
def gallery():
    rng = np.random.default_rng(1)
    g = Gallery.new(FP, D)
    g.add("Ada Lovelace", unit(rng, 2))
    g.add("Grace", unit(rng, 1))
    g.add("Émile", unit(rng, 3))
    return g


def reseal(body: bytes) -> bytes:
    """Recompute the trailing checksum after editing a gallery's bytes (to test the checks behind it)."""
    import hashlib

    return body + hashlib.sha256(body).digest()


def rebuild(g: Gallery, mutate) -> bytes:
    """A gallery file whose header JSON or payload was changed by ``mutate(header, payload)`` and resealed."""
    import json

    data = g.to_bytes()
    _, version, hl, pl = struct.unpack_from("<8sIIQ", data)
    header = json.loads(data[24:24 + hl])
    payload = bytearray(data[24 + hl:24 + hl + pl])
    header, payload, version = mutate(header, payload, version)
    head = json.dumps(header).encode()
    return reseal(struct.pack("<8sIIQ", MAGIC, version, len(head), len(payload)) + head + bytes(payload))


def test_round_trip_keeps_everything(tmp_path, gallery):
    path = gallery.save(tmp_path / "gallery.efg")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = Gallery.load(path, expected_fingerprint=FP)
    assert back.fingerprint == FP and back.embedding_size == D
    assert [(p.id, p.name, p.created, p.updated) for p in back.people] == \
        [(p.id, p.name, p.created, p.updated) for p in gallery.people]
    for a, b in zip(back.people, gallery.people):
        assert a.embeddings.dtype == np.float32
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
    assert back.to_bytes() == gallery.to_bytes()


def test_add_appends_to_the_same_person_and_normalises(gallery):
    ada = gallery.find("Ada Lovelace")
    before = ada.id
    gallery.add("Ada Lovelace", np.full((1, D), 3.0, np.float32))
    assert gallery.find("Ada Lovelace").id == before
    assert len(gallery.find(before).embeddings) == 3
    np.testing.assert_allclose(np.linalg.norm(gallery.find(before).embeddings, axis=1), 1.0, rtol=1e-6)


def test_add_rejects_bad_vectors(gallery):
    with pytest.raises(GalleryZeroVectorError, match="zero vector"):
        gallery.add("Zed", np.zeros((1, D)))
    with pytest.raises(GalleryNonFiniteError, match="NaN"):
        gallery.add("Nan", np.full((1, D), np.nan))
    with pytest.raises(GalleryEmbeddingSizeError, match="8-d"):
        gallery.add("Short", np.ones((1, 8)))
    assert gallery.find("Zed") is None and gallery.find("Nan") is None


def test_rename_remove_and_lookup_errors(gallery):
    gallery.rename("Grace", "Grace Hopper")
    assert gallery.find("Grace") is None and gallery.find("Grace Hopper") is not None
    with pytest.raises(DuplicatePersonError, match="already enrolled"):
        gallery.rename("Émile", "Grace Hopper")
    with pytest.raises(PersonNotFoundError, match="Nobody"):
        gallery.remove("Nobody")
    pid = gallery.find("Émile").id
    assert gallery.remove(pid).name == "Émile"
    assert [p.name for p in gallery.people] == ["Ada Lovelace", "Grace Hopper"]


def test_remove_leaves_no_trace_of_the_embeddings(tmp_path, gallery):
    path = tmp_path / "g.efg"
    gallery.save(path)
    gone = gallery.find("Émile")
    vectors = [row.astype("<f4").tobytes() for row in gone.embeddings]
    assert all(v in path.read_bytes() for v in vectors)
    gallery.remove("Émile")
    gallery.save(path)
    data = path.read_bytes()
    assert "Émile".encode() not in data and gone.id.encode() not in data
    for v in vectors:
        assert v not in data
        assert v[:16] not in data  # not even a fragment of a vector
    assert [p.name for p in Gallery.load(path).people] == ["Ada Lovelace", "Grace"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_missing_file(tmp_path):
    with pytest.raises(GalleryNotFoundError, match="no gallery file"):
        Gallery.load(tmp_path / "absent.efg")


def test_truncated(gallery):
    data = gallery.to_bytes()
    for cut in (len(data) - 1, len(data) // 2, 30, 12):
        with pytest.raises(GalleryTruncatedError, match="truncated"):
            Gallery.from_bytes(data[:cut])


def test_not_a_gallery():
    with pytest.raises(GalleryFormatError, match="not an edgeface gallery"):
        Gallery.from_bytes(b'{"people": []}' + b" " * 64)
    with pytest.raises(GalleryTruncatedError, match="empty"):
        Gallery.from_bytes(b"")


@pytest.mark.parametrize("where", ["header", "payload", "checksum"])
def test_one_flipped_byte(gallery, where):
    data = bytearray(gallery.to_bytes())
    hl = struct.unpack_from("<I", data, 12)[0]
    i = {"header": 24 + hl // 2, "payload": 24 + hl + 10, "checksum": len(data) - 3}[where]
    data[i] ^= 0x01
    with pytest.raises(GalleryChecksumError, match="checksum mismatch"):
        Gallery.from_bytes(bytes(data))


def test_wrong_version(gallery):
    data = rebuild(gallery, lambda h, p, v: (h, p, 2))
    with pytest.raises(GalleryVersionError, match="version 2 is not supported"):
        Gallery.from_bytes(data)
    def header_only(h, p, v):
        h["format_version"] = 7
        return h, p, v
    with pytest.raises(GalleryVersionError, match="header says format version 7"):
        Gallery.from_bytes(rebuild(gallery, header_only))


def test_nan_in_file(gallery):
    def poison(h, p, v):
        p[4 * D + 4 * 3:4 * D + 4 * 4] = np.array([np.nan], "<f4").tobytes()  # second vector, 4th value
        return h, p, v
    with pytest.raises(GalleryNonFiniteError, match="Ada Lovelace.*NaN"):
        Gallery.from_bytes(rebuild(gallery, poison))
    def inf(h, p, v):
        p[-4:] = np.array([np.inf], "<f4").tobytes()
        return h, p, v
    with pytest.raises(GalleryNonFiniteError, match="Émile"):
        Gallery.from_bytes(rebuild(gallery, inf))


def test_zero_vector_in_file(gallery):
    def zero(h, p, v):
        p[2 * 4 * D:3 * 4 * D] = bytes(4 * D)  # the third vector: Grace's only one
        return h, p, v
    with pytest.raises(GalleryZeroVectorError, match="Grace.*zero vector"):
        Gallery.from_bytes(rebuild(gallery, zero))


def test_wrong_size(gallery):
    def claim_32(h, p, v):
        h["embedding_size"] = 32
        return h, p, v
    with pytest.raises(GalleryEmbeddingSizeError, match="size 32|32-d"):
        Gallery.from_bytes(rebuild(gallery, claim_32))
    def drop_a_value(h, p, v):
        return h, p[:-4], v
    with pytest.raises(GalleryEmbeddingSizeError, match="not whole"):
        Gallery.from_bytes(rebuild(gallery, drop_a_value))


def test_wrong_fingerprint(tmp_path, gallery):
    path = gallery.save(tmp_path / "g.efg")
    with pytest.raises(GalleryFingerprintError, match="re-enroll"):
        Gallery.load(path, expected_fingerprint="cd" * 32)
    assert Gallery.load(path).fingerprint == FP  # without an expectation it loads


def test_each_failure_has_its_own_class():
    classes = [GalleryTruncatedError, GalleryChecksumError, GalleryVersionError, GalleryNonFiniteError,
               GalleryZeroVectorError, GalleryEmbeddingSizeError, GalleryFingerprintError]
    assert len(set(classes)) == len(classes)
    for a in classes:
        assert issubclass(a, GalleryError)
        for b in classes:
            assert a is b or not issubclass(a, b)


def test_failed_replace_keeps_the_previous_gallery(tmp_path, gallery, monkeypatch):
    path = gallery.save(tmp_path / "g.efg")
    before = path.read_bytes()
    gallery.remove("Grace")

    def broken(*a, **k):
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk pulled out"):
        gallery.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in Gallery.load(path).people] == ["Ada Lovelace", "Grace", "Émile"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from edgeface.gallery import Gallery, Person
    path, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    g = Gallery.new("ab" * 32, 128)
    g.people = [Person(f"id{p}", f"person {p}", "t", "t", rng.standard_normal((1, 128)).astype(np.float32))
                for p in range(n)]
    marker = g.add("generation", np.eye(128, dtype=np.float32)[:1])
    i = 0
    while True:
        marker.embeddings = np.eye(128, dtype=np.float32)[i % 128][None]
        g.save(path)
        i += 1
        print(i, flush=True)
""")


def _start_writer(path, n):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout.readline().strip() == "1", "writer did not complete its first save"
    return proc


def test_writer_killed_midway_leaves_a_loadable_gallery(tmp_path):
    path = tmp_path / "big.efg"
    proc = _start_writer(path, 4000)  # ~2 MB a save
    try:
        time.sleep(0.8)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    g = Gallery.load(path, expected_fingerprint="ab" * 32)
    assert len(g) == 4001 and g.find("generation") is not None


def test_concurrent_reader_never_sees_a_partial_file(tmp_path):
    path = tmp_path / "live.efg"
    proc = _start_writer(path, 2000)
    seen = set()
    try:
        deadline = time.monotonic() + 15.0
        reads = 0
        while time.monotonic() < deadline and (len(seen) < 3 or reads < 20):
            g = Gallery.load(path)  # raises on any half-written file
            seen.add(int(np.argmax(g.find("generation").embeddings[0])))
            reads += 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert reads > 5 and len(seen) >= 2, f"{reads} reads saw {len(seen)} generations: the writer was not racing"


def test_attributes_and_version_counter_round_trip(tmp_path, gallery):
    path = tmp_path / "g.gallery"
    person = gallery.people[0]
    person.attributes = {"access": {"badges": ["0012345"]}, "note": "ünïcode"}
    start = gallery.version
    gallery.save(path)
    gallery.save(path)
    back = Gallery.load(path)
    assert back.version == start + 2
    assert back.find(person.name).attributes == {"access": {"badges": ["0012345"]}, "note": "ünïcode"}
    assert all(p.attributes == {} for p in back.people if p.name != person.name)
    copy = back.copy()
    copy.find(person.name).attributes["access"]["badges"].append("x")
    assert back.find(person.name).attributes["access"]["badges"] == ["0012345"]
