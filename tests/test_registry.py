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
