"""Test helpers for the gate: a model bundle around the reference ONNX, a gallery enrolled from real photos,
a door-camera video composed from real photos, and a gate config. Everything is written under a tmp dir;
nothing from ../shared is copied into the repository."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edgeface.bundle import Bundle, BundleMeta, Threshold, describe_model_file
from edgeface.device.scene import H, W, Appearance, Span, background, compose_video  # noqa: F401  (re-exported)
from edgeface.faceset import aligned_crop, read_image
from edgeface.gallery import Gallery
from edgeface.runtime import open_embedder


def make_bundle(root: Path, onnx: Path, threshold: float | None) -> Path:
    """A bundle directory holding a copy of ``onnx`` as onnx_fp32, with ``threshold`` as its calibrated one."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx, root / "model_fp32.onnx")
    mf = describe_model_file(root, "model_fp32.onnx", "onnx", "fp32")
    thresholds = {} if threshold is None else {"onnx_fp32": Threshold(value=threshold, far=1e-3, data="test")}
    Bundle(root, BundleMeta(source="imported", embedding_size=128, models={"onnx_fp32": mf},
                            thresholds=thresholds)).save()
    return root


def enroll(gallery_path: Path, bundle_dir: Path, detector, people: dict[str, Path], key: str = "onnx_fp32") -> Gallery:
    """One photo per person through the core detect -> align -> embed, saved as a gallery file."""
    emb = open_embedder(bundle_dir, key, threads=1)
    gallery = Gallery(emb.fingerprint, emb.embedding_size, [])
    for name, photo in people.items():
        crop, _ = aligned_crop(detector, read_image(photo), aligner=emb.aligner)
        assert crop is not None, f"no face in enrollment photo {photo}"
        gallery.add(name, emb.embed(crop[None]), person_id=name)
    gallery.save(gallery_path)
    return gallery


def write_config(path: Path, bundle: Path, gallery: Path, source: str | Path, yunet: Path, extra: str = "") -> Path:
    """A gate config; ``extra`` is appended TOML (sections [policy], [relay], [audit], ...)."""
    path.write_text(f"""
[model]
bundle = "{bundle}"
gallery = "{gallery}"
key = "onnx_fp32"
threads = 1

[camera]
source = "{source}"

[detector]
kind = "yunet"
model_path = "{yunet}"
{extra}
""")
    return path


def pulses(pin) -> list[float]:
    """Lengths of the high pulses a gpiozero MockPin went through (its states hold time since the previous
    change, so a pulse's length is the timestamp of the state that ended it)."""
    out, high = [], False
    for st in pin.states[1:]:
        if st.state and not high:
            high = True
        elif not st.state and high:
            out.append(st.timestamp)
            high = False
    return out


class FaultyCamera:
    """Wraps a real replay camera; after ``after`` frames its read() raises (an unplugged USB camera,
    ``mode="raise"``) or blocks until ``release`` is set (a wedged driver, ``mode="hang"``). The monotonic
    time the fault began is appended to ``began``."""

    def __init__(self, inner, after: int, mode: str, release, began: list | None = None):
        self.inner, self.after, self.mode, self.release = inner, after, mode, release
        self.began = began if began is not None else []
        self.fps, self.description, self.count = inner.fps, f"faulty {inner.description}", 0

    def open(self):
        self.inner.open()

    def read(self):
        if self.count >= self.after:
            self.began.append(time.monotonic())
            if self.mode == "raise":
                from edgeface.device.camera import CameraError

                raise CameraError("USB camera unplugged")
            self.release.wait()
            return None
        self.count += 1
        return self.inner.read()

    def close(self):
        self.inner.close()


def wait_for(predicate, timeout_s: float = 30.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False
