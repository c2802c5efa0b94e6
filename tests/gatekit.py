"""Test helpers for the gate: a model bundle around the reference ONNX, a gallery enrolled from real photos,
a door-camera video composed from real photos, and a gate config. Everything is written under a tmp dir;
nothing from ../shared is copied into the repository."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeface.bundle import Bundle, BundleMeta, Threshold, describe_model_file
from edgeface.faceset import aligned_crop, read_image
from edgeface.gallery import Gallery
from edgeface.runtime import open_embedder

W, H = 640, 480


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
        crop, _ = aligned_crop(detector, read_image(photo))
        assert crop is not None, f"no face in enrollment photo {photo}"
        gallery.add(name, emb.embed(crop[None]), person_id=name)
    gallery.save(gallery_path)
    return gallery


def background(seed: int = 0) -> np.ndarray:
    """A plain, slightly textured wall (smooth gradient plus blurred noise), 640x480 BGR."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = 110 + 40 * (x / W) + 25 * (y / H)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (H, W)).astype(np.float32), (0, 0), 9)
    img = np.clip(base + noise, 0, 255).astype(np.uint8)
    return cv2.merge([img, (img * 0.95).astype(np.uint8), (img * 0.9).astype(np.uint8)])


@dataclass(frozen=True)
class Appearance:
    label: str  # the enrolled name, or "stranger:<id>"
    photo: Path
    seconds: float
    height: int  # pasted photo height in pixels
    start: tuple[float, float]  # top-left, as fractions of the free space
    end: tuple[float, float]


@dataclass(frozen=True)
class Span:
    label: str
    t0: float
    t1: float

    @property
    def enrolled(self) -> bool:
        return not self.label.startswith("stranger")


def compose_video(path: Path, appearances: list[Appearance], fps: float = 10.0, gap_s: float = 1.0,
                  seed: int = 0) -> list[Span]:
    """An MJPG .avi, 640x480 at ``fps``: ``gap_s`` of empty wall, then each appearance (the photo drifting
    from ``start`` to ``end`` while slightly changing size) followed by ``gap_s`` of empty wall.
    Returns when each appearance is on screen, in video seconds (frame i is at i / fps)."""
    bg = background(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened(), "OpenCV cannot write MJPG video"
    spans, i = [], 0

    def write(img):
        nonlocal i
        writer.write(img)
        i += 1

    for _ in range(round(gap_s * fps)):
        write(bg)
    for a in appearances:
        photo = read_image(a.photo)
        n = max(1, round(a.seconds * fps))
        t0 = i / fps
        for j in range(n):
            u = j / max(1, n - 1)
            h = int(a.height * (1.0 + 0.06 * np.sin(2 * np.pi * u)))
            w = int(round(photo.shape[1] * h / photo.shape[0]))
            face = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA if h < photo.shape[0] else cv2.INTER_CUBIC)
            fx = a.start[0] + (a.end[0] - a.start[0]) * u
            fy = a.start[1] + (a.end[1] - a.start[1]) * u
            x, y = int(fx * (W - w)), int(fy * (H - h))
            frame = bg.copy()
            frame[y:y + h, x:x + w] = face
            write(frame)
        spans.append(Span(a.label, t0, (i - 1) / fps))
        for _ in range(round(gap_s * fps)):
            write(bg)
    writer.release()
    return spans


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
