"""Test helpers for the gate: a model bundle around the reference ONNX, a gallery enrolled from real photos,
a door-camera video composed from real photos, and a gate config. Everything is written under a tmp dir;
nothing from ../shared is copied into the repository."""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from conftest import FACES, YUNET

from edgeface.bundle import Bundle, BundleMeta, Threshold, describe_model_file
from edgeface.device.scene import H, W, Appearance, Span, background, compose_video  # noqa: F401  (re-exported)
from edgeface.gallery import Gallery
from edgeface.recognizer import Recognizer

#: the people a test bundle is calibrated on: the last celeba-loose identities (tests use the first ones and ORL)
CALIBRATION_IDENTITIES = 40
CALIBRATION_PHOTOS = 10


def make_bundle(root: Path, onnx: Path, threshold: float | None) -> Path:
    """A bundle directory holding a copy of ``onnx`` as onnx_fp32. With a ``threshold``, it is calibrated for real
    (:func:`calibration`: the impostor tail of this model on 40 celeba-loose people the tests do not use) and
    ``threshold`` is its operating point, stored with the FAR the measured tail gives it."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx, root / "model_fp32.onnx")
    mf = describe_model_file(root, "model_fp32.onnx", "onnx", "fp32")
    bundle = Bundle(root, BundleMeta(source="imported", embedding_size=128, models={"onnx_fp32": mf}))
    bundle.save()
    if threshold is not None:
        bundle.meta.thresholds["onnx_fp32"] = calibration(root, threshold)
        bundle.save()
    return root


def calibration(bundle_dir: Path, threshold: float) -> Threshold:
    """The model's real calibration record (points, pair count, highest impostor), at ``threshold``."""
    from edgeface.thresholds import ScoreScale

    points, pairs, top, tail = _tail(describe_model_file(bundle_dir, "model_fp32.onnx", "onnx", "fp32").sha256,
                                     bundle_dir)
    base = Threshold(value=threshold, far=1e-3, points=points, impostor_pairs=pairs, top_impostor=top, tail=tail,
                     mirror=True,
                     data=f"celeba-loose, the last {CALIBRATION_IDENTITIES} identities")
    return base.model_copy(update={"far": float(f"{ScoreScale(base).far(threshold):.3g}")})


@functools.lru_cache(maxsize=4)
def _tail(sha256: str, bundle_dir: Path):
    from edgeface.calibrate import calibrate
    from edgeface.config import DetectorConfig
    from edgeface.faceset import Photo

    import pytest

    if not (FACES / "celeba-loose").is_dir() or not YUNET.is_file():
        pytest.skip(f"calibrating a test bundle needs celeba-loose faces and YuNet (not found under {FACES}, {YUNET})")
    ids = sorted(p.name for p in (FACES / "celeba-loose").iterdir() if p.is_dir())[-CALIBRATION_IDENTITIES:]
    photos = [Photo(i, p) for i in ids for p in sorted((FACES / "celeba-loose" / i).iterdir())[:CALIBRATION_PHOTOS]]
    rec = Recognizer.from_bundle(bundle_dir, "onnx_fp32", detector=DetectorConfig(model_path=YUNET))
    got = rec.embed_photos(photos, progress=False)
    cal = calibrate(got.embeddings, got.labels, 1e-3, scorer=rec.scorer)
    return cal.points, cal.impostor_pairs, cal.top_impostor, cal.tail


def recognizer(bundle_dir: Path, key: str = "onnx_fp32") -> Recognizer:
    return Recognizer.from_bundle(bundle_dir, key, detector=_detector_config())


def _detector_config():
    from edgeface.config import DetectorConfig

    return DetectorConfig(model_path=YUNET)


def enroll(gallery_path: Path, bundle_dir: Path, detector, people: dict[str, Path], key: str = "onnx_fp32") -> Gallery:
    """One photo per person through the model object (:meth:`Recognizer.enroll_photo`, as ``edgeface enroll``
    does), saved as a gallery file. ``detector`` is unused (kept for the callers): the model object builds its
    own from the ``[detector]`` defaults and the test YuNet file."""
    rec = recognizer(bundle_dir, key)
    gallery = Gallery(rec.fingerprint, rec.embedding_size, [])
    for name, photo in people.items():
        check, emb = rec.enroll_photo(rec.read_photo(photo))
        assert emb is not None, f"enrollment photo {photo} refused: {check.report.reasons}"
        gallery.add(name, emb[None], person_id=name)
    gallery.save(gallery_path)
    return gallery


def write_config(path: Path, bundle: Path, gallery: Path, source: str | Path, yunet: Path, extra: str = "",
                 key: str = "onnx_fp32") -> Path:
    """A gate config; ``extra`` is appended TOML (sections [policy], [relay], [audit], ...)."""
    path.write_text(f"""
[model]
bundle = "{bundle}"
gallery = "{gallery}"
key = "{key}"
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
