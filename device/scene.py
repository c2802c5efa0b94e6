"""A door-camera clip composed from real photos: people walk up to a plain wall, one after the other.

Used by ``edgeface demo``, the gate benchmarks and the end-to-end tests, so that all of them replay the same kind
of scene through the real pipeline (real decoding of an MJPG video, real faces)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..faceset import read_image

W, H = 640, 480


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
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG video here")
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
