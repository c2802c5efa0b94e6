"""A door-camera clip composed from real photos: people walk up to a plain wall, one after the other.

Used by ``edgeface demo``, the gate benchmarks and the end-to-end tests, so that all of them replay the same kind
of scene through the real pipeline (real decoding of an MJPG video, real faces).

:func:`hard_scene` draws the developer's *hard* door scene (docs/device.md, "The hard door scene"): every
appearance gets its own light (a gain that changes while the person is there, and a gamma), sensor noise, JPEG
compression, sometimes motion blur, sometimes a walk-in from far away (the face grows from under the quality
gate's minimum size) and sometimes a second, smaller face of another person in the background; the photo itself
is seen a little turned, as another camera would see it; and a group of visitors arrives one right after the
other. Everything is drawn from one seed, so the same photos and seed give the same clip, frame for frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
class Conditions:
    """What the camera makes of one appearance. The defaults change nothing (the plain scene)."""

    gain: tuple[float, float] = (1.0, 1.0)  # light: brightness factor at the start and at the end of the appearance
    gamma: float = 1.0  # > 1 darkens the mid-tones, < 1 lifts them
    blur_sigma: float = 0.0  # Gaussian blur of the whole frame (motion) at the start of the appearance...
    blur_until: float = 1.0  # ...fading to none at this fraction of it (1.0: blurred throughout)
    noise_sigma: float = 0.0  # sensor noise, grey levels
    jpeg_quality: int | None = None  # each frame re-encoded as a JPEG of this quality (a cheap camera's stream)
    walk_in: float = 0.0  # fraction of the appearance during which the person approaches...
    start_scale: float = 1.0  # ...from this fraction of their final size
    behind: Path | None = None  # another person's photo, standing further back
    behind_scale: float = 0.5  # its height, as a fraction of the main photo's
    behind_at: tuple[float, float] = (0.85, 0.1)  # its top-left, as fractions of the free space
    rotate_deg: float = 0.0  # the photo as another camera sees it: turned in the image plane...
    squeeze: float = 1.0  # ...and narrowed (a head turned slightly away)

    @property
    def plain(self) -> bool:
        return self == Conditions()


PLAIN = Conditions()


@dataclass(frozen=True)
class Appearance:
    label: str  # the enrolled name, or "stranger:<id>"
    photo: Path
    seconds: float
    height: int  # pasted photo height in pixels
    start: tuple[float, float]  # top-left, as fractions of the free space
    end: tuple[float, float]
    conditions: Conditions = PLAIN
    gap_after: float | None = None  # empty wall after it (None: compose_video's gap_s)


@dataclass(frozen=True)
class Span:
    label: str
    t0: float
    t1: float

    @property
    def enrolled(self) -> bool:
        return not self.label.startswith("stranger")


def spans_of(appearances: list[Appearance], fps: float = 10.0, gap_s: float = 1.0) -> list[Span]:
    """When each appearance is on screen in the clip :func:`compose_video` makes of them (without making it)."""
    spans, i = [], round(gap_s * fps)
    for a in appearances:
        n = max(1, round(a.seconds * fps))
        spans.append(Span(a.label, i / fps, (i + n - 1) / fps))
        i += n + round((gap_s if a.gap_after is None else a.gap_after) * fps)
    return spans


def compose_video(path: Path, appearances: list[Appearance], fps: float = 10.0, gap_s: float = 1.0,
                  seed: int = 0) -> list[Span]:
    """An MJPG .avi, 640x480 at ``fps``: ``gap_s`` of empty wall, then each appearance (the photo drifting
    from ``start`` to ``end`` while slightly changing size, under its :class:`Conditions`) followed by ``gap_s``
    of empty wall. Returns when each appearance is on screen, in video seconds (frame i is at i / fps)."""
    bg = background(seed)
    rng = np.random.default_rng(seed + 1)
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
        c = a.conditions
        photo = _recapture(read_image(a.photo), c.rotate_deg, c.squeeze)
        behind = read_image(c.behind) if c.behind is not None else None
        n = max(1, round(a.seconds * fps))
        t0 = i / fps
        for j in range(n):
            u = j / max(1, n - 1)
            approach = 1.0 if c.walk_in <= 0 else min(1.0, u / c.walk_in)
            scale = c.start_scale + (1.0 - c.start_scale) * approach
            h = max(8, int(a.height * scale * (1.0 + 0.06 * np.sin(2 * np.pi * u))))
            frame = bg.copy()
            if behind is not None:
                bh = max(8, int(a.height * c.behind_scale))
                _paste(frame, behind, bh, c.behind_at)
            fx = a.start[0] + (a.end[0] - a.start[0]) * u
            fy = a.start[1] + (a.end[1] - a.start[1]) * u
            _paste(frame, photo, h, (fx, fy))
            if not c.plain:
                frame = _camera(frame, c, u, rng)
            write(frame)
        spans.append(Span(a.label, t0, (i - 1) / fps))
        for _ in range(round((gap_s if a.gap_after is None else a.gap_after) * fps)):
            write(bg)
    writer.release()
    return spans


def _recapture(photo: np.ndarray, rotate_deg: float, squeeze: float) -> np.ndarray:
    """The photo turned by ``rotate_deg`` and narrowed to ``squeeze`` of its width, on its own edge colours."""
    if rotate_deg == 0.0 and squeeze == 1.0:
        return photo
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rotate_deg, 1.0)
    m[0] *= squeeze
    m[0, 2] += (1.0 - squeeze) * w / 2
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _paste(frame: np.ndarray, photo: np.ndarray, h: int, at: tuple[float, float]) -> None:
    w = int(round(photo.shape[1] * h / photo.shape[0]))
    h, w = min(h, H), min(w, W)
    img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA if h < photo.shape[0] else cv2.INTER_CUBIC)
    x, y = int(at[0] * (W - w)), int(at[1] * (H - h))
    frame[y:y + h, x:x + w] = img


def _camera(frame: np.ndarray, c: Conditions, u: float, rng: np.random.Generator) -> np.ndarray:
    """Light, blur, noise and compression of one frame (``u``: 0 at the start of the appearance, 1 at its end)."""
    gain = c.gain[0] + (c.gain[1] - c.gain[0]) * u
    x = frame.astype(np.float32) / 255.0
    if c.gamma != 1.0:
        x = np.power(x, c.gamma)
    x *= gain
    sigma = c.blur_sigma * max(0.0, 1.0 - u / c.blur_until) if c.blur_until > 0 else 0.0
    if sigma > 0.05:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x * 255.0
    if c.noise_sigma > 0:
        x += rng.normal(0.0, c.noise_sigma, x.shape).astype(np.float32)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if c.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(c.jpeg_quality)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


@dataclass(frozen=True)
class SceneCast:
    """Who appears in a hard scene: per employee their door photos (never the enrollment photo), per stranger
    their photos; ``background`` photos of other strangers, only ever seen behind someone."""

    employees: dict[str, list[Path]]
    strangers: dict[str, list[Path]]
    background: list[Path]


#: how hard the camera is: (gain range, gamma range, noise sigma range, JPEG quality range)
SEVERITY = {
    "hard": ((0.35, 1.5), (0.7, 1.5), (3.0, 14.0), (20, 61)),
    "harsh": ((0.25, 1.2), (0.8, 1.8), (6.0, 20.0), (10, 41)),
}


def hard_scene(cast: SceneCast, seed: int = 0, fps: float = 10.0, group: int = 10,
               severity: str = "hard") -> list[Appearance]:
    """One appearance per employee and per stranger, each under random hard conditions, in a random order but for
    a group of ``group`` visitors (strangers) arriving one right after the other (0.5 s apart) somewhere in it.

    Per appearance (all from ``seed``): 2.0-3.0 s; a photo height of 220-330 px (the face about half of it), seen
    turned by up to 12 degrees and narrowed to 85-100 % of its width; the light's gain drifting between two
    values in 0.35-1.5, gamma 0.7-1.5; sensor noise sigma 3-14; JPEG quality 20-60; motion blur (Gaussian, sigma
    0.8-2.0 at first, fading out over the first 60 % of the appearance as the person slows down) in 40 %; a
    walk-in from 45 % of the final size over the first half in 60 %; another person, at half the size, in the
    background in 30 %. ``severity`` "harsh": gain 0.25-1.2, gamma 0.8-1.8, noise sigma 6-20, JPEG quality 10-40."""
    gain, gamma, noise, quality = SEVERITY[severity]
    rng = np.random.default_rng(seed)
    people = [(name, photos) for name, photos in sorted(cast.employees.items())] + \
             [(f"stranger:{sid}", photos) for sid, photos in sorted(cast.strangers.items())]
    out = []
    for label, photos in people:
        photo = photos[int(rng.integers(len(photos)))]
        walk = rng.random() < 0.6
        behind = cast.background[int(rng.integers(len(cast.background)))] \
            if cast.background and rng.random() < 0.3 else None
        cond = Conditions(
            gain=(float(rng.uniform(*gain)), float(rng.uniform(*gain))),
            gamma=float(rng.uniform(*gamma)),
            blur_sigma=float(rng.uniform(0.8, 2.0)) if rng.random() < 0.4 else 0.0, blur_until=0.6,
            noise_sigma=float(rng.uniform(*noise)),
            jpeg_quality=int(rng.integers(*quality)),
            walk_in=0.5 if walk else 0.0, start_scale=0.45 if walk else 1.0,
            behind=behind, behind_scale=0.5,
            behind_at=(float(rng.choice([0.05, 0.9])), float(rng.uniform(0.0, 0.2))),
            rotate_deg=float(rng.uniform(-12.0, 12.0)), squeeze=float(rng.uniform(0.85, 1.0)))
        start_x = float(rng.uniform(0.1, 0.9))
        out.append(Appearance(label, photo, float(rng.uniform(2.0, 3.0)), int(rng.integers(220, 331)),
                              (start_x, float(rng.uniform(0.1, 0.4))),
                              (float(np.clip(start_x + rng.uniform(-0.2, 0.2), 0, 1)), float(rng.uniform(0.3, 0.6))),
                              cond))
    strangers = [i for i, a in enumerate(out) if a.label.startswith("stranger:")]
    visitors = [strangers[int(i)] for i in rng.permutation(len(strangers))[:group]]
    rest = [i for i in rng.permutation(len(out)) if i not in visitors]
    at = int(rng.integers(0, len(rest) + 1))
    order = rest[:at] + visitors + rest[at:]
    return [replace(out[i], gap_after=0.5) if i in visitors[:-1] else out[i] for i in order]


def celeba_cast(root: Path, employees: list[str], strangers: list[str], background: list[str],
                enroll: dict[str, Path] | None = None, door: str = "other") -> tuple[dict[str, Path], SceneCast]:
    """(enrollment photo per employee, the cast) from a folder-per-identity set. ``enroll`` names each employee's
    enrollment photo (default: their first, sorted by name). ``door`` says what the door camera sees of them:
    ``"other"``, one of their other photos (another day, pose, hair, make-up: the harder test) or ``"enrolled"``,
    the enrollment photo itself (the same look, so only the camera's conditions differ)."""
    def photos(ident: str) -> list[Path]:
        return sorted(p for p in (Path(root) / ident).iterdir() if p.is_file())

    if door not in ("other", "enrolled"):
        raise ValueError(f"door must be 'other' or 'enrolled', not {door!r}")
    enroll = dict(enroll) if enroll else {}
    for e in employees:
        enroll.setdefault(e, photos(e)[0])
    seen = {e: ([p for p in photos(e) if p != enroll[e]] if door == "other" else [enroll[e]]) for e in employees}
    cast = SceneCast(seen, {s: photos(s) for s in strangers}, [p for b in background for p in photos(b)[:1]])
    return enroll, cast
