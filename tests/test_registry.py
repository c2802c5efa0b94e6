"""The model registry's download path against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest

from edgeface import registry
from edgeface.errors import ChecksumError, ModelError


@pytest.fixture()
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def fake_spec(monkeypatch, yunet_path):
    """Register the shared YuNet file under a test name with its real size and checksum."""
    data = yunet_path.read_bytes()
    spec = registry.ModelSpec("testmodel", "test_model.onnx", "http://unused.invalid/x", len(data),
                              hashlib.sha256(data).hexdigest(), "MIT", "test")
    monkeypatch.setitem(registry.REGISTRY, "testmodel", spec)
    monkeypatch.setenv("EDGEFACE_CACHE", str(yunet_path.parent.parent / "__never_written__"))
    return spec, data


def test_registered_models_carry_their_facts():
    y = registry.get_spec("yunet")
    assert (y.size, y.sha256, y.licence) == (232_589, "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", "MIT")
    s = registry.get_spec("sface")
    assert (s.size, s.licence) == (38_696_353, "Apache-2.0")
    with pytest.raises(ModelError, match="unknown model"):
        registry.get_spec("nope")


def test_download_verifies_and_caches(http_root, fake_spec, tmp_path):
    root, base = http_root
    spec, data = fake_spec
    (root / "m.onnx").write_bytes(data)
    cache = tmp_path / "cache"
    path = registry.download("testmodel", url=f"{base}/m.onnx", dest_dir=cache)
    assert path == cache / spec.filename and path.read_bytes() == data
    assert registry.verify(path, spec) == path


def test_download_refuses_a_checksum_mismatch_and_leaves_nothing(http_root, fake_spec, tmp_path):
    root, base = http_root
    spec, data = fake_spec
    tampered = bytearray(data)
    tampered[100] ^= 0xFF
    (root / "m.onnx").write_bytes(bytes(tampered))
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="sha256"):
        registry.download("testmodel", url=f"{base}/m.onnx", dest_dir=cache)
    assert list(cache.iterdir()) == []


def test_download_refuses_wrong_size(http_root, fake_spec, tmp_path):
    root, base = http_root
    (root / "m.onnx").write_bytes(b"short")
    with pytest.raises(ChecksumError, match="bytes, expected"):
        registry.download("testmodel", url=f"{base}/m.onnx", dest_dir=tmp_path / "c")


def test_download_http_error_is_a_model_error(http_root, fake_spec, tmp_path):
    _, base = http_root
    with pytest.raises(ModelError, match="download .* failed"):
        registry.download("testmodel", url=f"{base}/missing.onnx", dest_dir=tmp_path / "c")


def test_resolve_prefers_explicit_path_then_env_then_cache(monkeypatch, tmp_path, yunet_path, fake_spec):
    assert registry.resolve_model("testmodel", yunet_path) == yunet_path
    with pytest.raises(ModelError, match="file not found"):
        registry.resolve_model("testmodel", tmp_path / "absent.onnx")
    monkeypatch.setenv("EDGEFACE_TESTMODEL", str(yunet_path))
    assert registry.resolve_model("testmodel") == yunet_path
    monkeypatch.delenv("EDGEFACE_TESTMODEL")
    monkeypatch.setenv("EDGEFACE_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="not in the cache"):
        registry.resolve_model("testmodel", allow_download=False)
    (tmp_path / "test_model.onnx").write_bytes(b"tampered cache entry")
    with pytest.raises(ChecksumError):
        registry.resolve_model("testmodel", allow_download=False)


# -- dlib's models: the face_recognition_models package, a .bz2 download, the 68-point model refused --------------

@pytest.fixture()
def fake_dlib(monkeypatch, tmp_path):
    """A small registered dlib model (random bytes with their real size and sha256), no package, an empty cache."""
    import numpy as np

    data = np.random.default_rng(5).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    spec = registry.ModelSpec("dlib-test", "dlib_test.dat", "http://unused.invalid/dlib_test.dat.bz2", len(data),
                              hashlib.sha256(data).hexdigest(), registry.DLIB_LICENCE, "test")
    monkeypatch.setitem(registry.REGISTRY, "dlib-test", spec)
    monkeypatch.setattr(registry, "DLIB_MODELS", registry.DLIB_MODELS + ("dlib-test",))
    monkeypatch.setattr(registry, "dlib_package_models_dir", lambda: None)
    monkeypatch.setenv("EDGEFACE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEFACE_DLIB_TEST", raising=False)
    return spec, data


def test_dlib_models_are_registered_with_their_facts():
    r = registry.get_spec("dlib-resnet-v1")
    assert (r.filename, r.size, r.sha256) == ("dlib_face_recognition_resnet_model_v1.dat", 22_466_066,
                                              "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30")
    assert r.url == "http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2"
    s = registry.get_spec("dlib-shape5")
    assert (s.filename, s.size, s.sha256) == ("shape_predictor_5_face_landmarks.dat", 9_150_489,
                                              "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888")
    assert r.licence == s.licence and r.licence.startswith("public domain")
    with pytest.raises(ModelError, match="forbids commercial use"):
        registry.get_spec("dlib-shape68")


def test_bz2_download_is_decompressed_verified_and_cached(http_root, fake_dlib, tmp_path):
    import bz2

    root, base = http_root
    spec, data = fake_dlib
    (root / "dlib_test.dat.bz2").write_bytes(bz2.compress(data))
    path = registry.download("dlib-test", url=f"{base}/dlib_test.dat.bz2")
    assert path == tmp_path / "cache" / spec.filename and path.read_bytes() == data
    assert registry.resolve_dlib_model("dlib-test", allow_download=False) == path  # now from the cache


def test_bz2_download_tampered_or_cut_leaves_nothing(http_root, fake_dlib, tmp_path):
    import bz2

    root, base = http_root
    _, data = fake_dlib
    tampered = bytearray(data)
    tampered[10] ^= 0xFF
    (root / "tampered.dat.bz2").write_bytes(bz2.compress(bytes(tampered)))
    (root / "cut.dat.bz2").write_bytes(bz2.compress(data)[:-100])
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="sha256"):
        registry.download("dlib-test", url=f"{base}/tampered.dat.bz2")
    with pytest.raises(ModelError, match="ended early"):
        registry.download("dlib-test", url=f"{base}/cut.dat.bz2")
    assert list(cache.iterdir()) == []


def test_resolve_dlib_model_path_then_package_then_cache_then_download(http_root, fake_dlib, monkeypatch,
                                                                       tmp_path):
    import bz2

    root, base = http_root
    spec, data = fake_dlib
    local = tmp_path / "mine.dat"
    local.write_bytes(data)
    assert registry.resolve_dlib_model("dlib-test", local) == local
    local.write_bytes(data[:-1] + b"\x00" if data[-1] else data[:-1] + b"\x01")
    with pytest.raises(ChecksumError, match="sha256"):  # an explicit path is always verified
        registry.resolve_dlib_model("dlib-test", local)
    with pytest.raises(ModelError, match="pip install face_recognition_models"):
        registry.resolve_dlib_model("dlib-test", allow_download=False)
    package = tmp_path / "site" / "face_recognition_models" / "models"
    package.mkdir(parents=True)
    (package / spec.filename).write_bytes(data)
    monkeypatch.setattr(registry, "dlib_package_models_dir", lambda: package)
    assert registry.resolve_dlib_model("dlib-test", allow_download=False) == package / spec.filename
    (package / spec.filename).write_bytes(b"replaced")
    with pytest.raises(ChecksumError):
        registry.resolve_dlib_model("dlib-test", allow_download=False)
    monkeypatch.setattr(registry, "dlib_package_models_dir", lambda: None)
    (root / "dlib_test.dat.bz2").write_bytes(bz2.compress(data))
    monkeypatch.setitem(registry.REGISTRY, "dlib-test",
                        registry.ModelSpec(**{**spec.__dict__, "url": f"{base}/dlib_test.dat.bz2"}))
    assert registry.resolve_dlib_model("dlib-test").read_bytes() == data
    with pytest.raises(ModelError, match="not one of dlib's models"):
        registry.resolve_dlib_model("yunet")


def test_the_68_point_model_is_refused_by_name(tmp_path, yunet_path):
    named = tmp_path / "shape_predictor_68_face_landmarks.dat"
    named.write_bytes(yunet_path.read_bytes())
    for refuse in (lambda: registry.resolve_dlib_model("dlib-shape5", named),
                   lambda: registry.resolve_model("yunet", named)):
        with pytest.raises(ModelError, match=r"iBUG 300-W\) forbids commercial use"):
            refuse()
