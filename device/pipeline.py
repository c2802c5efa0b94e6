"""The per-frame pipeline of the door: frame -> detect -> largest face -> quality gate -> align -> embed -> match.

Every stage is the shared core (``edgeface.detect``, ``edgeface.quality``, ``edgeface.align``,
``edgeface.runtime``, ``edgeface.match``), the same code enrollment runs, so a face is seen the same way at
the desk and at the door. The pipeline decides nothing: it returns a :class:`FrameResult` (the best gallery
match, or why there was none) and :mod:`edgeface.device.policy` decides.

:func:`load_runtime` builds everything one config needs (detector, embedder, gallery, matcher, threshold) and
raises on any problem before anything is swapped in, which is what makes a SIGHUP reload atomic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from edgeface.bundle import Bundle
from edgeface.config import GateConfig, QualityConfig
from edgeface.errors import AlignmentError
from edgeface.faces import Face, largest_face
from edgeface.gallery import Gallery
from edgeface.match import Match, Matcher
from edgeface.quality import assess

from .policy import PolicyParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameResult:
    """What one frame showed. ``face`` is the chosen face (None: no face above the minimum size);
    ``usable`` is True when it passed the quality gate and was embedded and matched; ``match`` is the best
    gallery person (None when unusable or nobody is enrolled); ``crop`` the aligned crop (for the audit log
    when ``save_faces`` is on)."""

    faces: int
    face: Face | None
    usable: bool
    match: Match | None
    reasons: tuple[str, ...]
    crop: np.ndarray | None
    latency_ms: float
    embedding: np.ndarray | None = None
    #: milliseconds per stage of this frame (detect, landmarks, align, embed, match; the ones that ran)
    stages: dict | None = None


class Pipeline:
    """One frame in, one :class:`FrameResult` out. Stateless apart from the models it holds."""

    def __init__(self, detector, embedder, matcher: Matcher, quality: QualityConfig, aligner=None,
                 mirror: bool = False) -> None:
        from edgeface.alignment import aligner_of

        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.quality = quality
        #: the bundle's alignment (the same as enrollment's)
        self.aligner = aligner or aligner_of(embedder)
        self.size = self.aligner.size
        #: embed each live crop with its mirror image too (``[model] mirror``): as enrollment does, at twice the cost
        self.mirror = bool(mirror)

    def process(self, image: np.ndarray) -> FrameResult:
        t0 = time.perf_counter()
        clock = _Stages(t0)
        dets = self.detector.detect(image)
        clock.lap("detect")
        face = largest_face(dets, self.quality.min_face_px)
        if face is None:
            reasons = ("no face",) if len(dets) == 0 else ("face too small",)
            return FrameResult(len(dets), None, False, None, reasons, None, _ms(t0), stages=clock.ms)
        try:
            points = self.aligner.points(image, face)
            clock.lap("landmarks")
            crop = self.aligner.chip(image, points)
        except AlignmentError as exc:
            return FrameResult(len(dets), face, False, None, (str(exc),), None, _ms(t0), stages=clock.ms)
        report = assess(image, face, crop, self.quality, dets)
        clock.lap("align")  # the crop and its quality gate
        if not report.ok:
            return FrameResult(len(dets), face, False, None, tuple(report.codes), crop, _ms(t0), stages=clock.ms)
        emb = self.embedder.embed(crop[None], mirror=self.mirror)[0]
        clock.lap("embed")
        match = self.matcher.match(emb)
        clock.lap("match")
        return FrameResult(len(dets), face, True, match, (), crop, _ms(t0), emb, stages=clock.ms)

    def warm_up(self, image: np.ndarray | None = None) -> float:
        """One full inference (detector on a frame, the landmark stage and crop on a face-sized box, embedder on
        a crop) so the first real face is not slowed by lazy initialisation; READY=1 is sent only after this ran.
        Returns its latency in ms."""
        t0 = time.perf_counter()
        frame = image if image is not None else np.zeros((480, 640, 3), np.uint8)
        self.detector.detect(frame)
        h, w = frame.shape[:2]
        side = max(8.0, min(h, w) / 3.0)
        box = np.array([(w - side) / 2, (h - side) / 2, side, side], np.float32)
        marks = box[:2] + side * np.array([[.3, .4], [.7, .4], [.5, .6], [.35, .8], [.65, .8]], np.float32)
        try:
            self.aligner.crop(frame, Face(box, marks, 1.0))
        except AlignmentError:
            pass
        self.embedder.warm_up()
        return _ms(t0)


class _Stages:
    """Lap times of one frame's stages, in ms."""

    __slots__ = ("t", "ms")

    def __init__(self, t0: float) -> None:
        self.t = t0
        self.ms: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.ms[name] = (now - self.t) * 1000.0
        self.t = now


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@dataclass
class Runtime:
    """Everything a config resolves to that a reload replaces as one unit."""

    config: GateConfig
    bundle: Bundle
    key: str
    threshold: float
    threshold_source: str
    pipeline: Pipeline
    gallery: Gallery
    params: PolicyParams
    access: object | None = None  # edgeface.device.access.rules.AccessRules: modes, credentials, schedules

    def describe(self) -> str:
        return (f"model {self.key} ({self.pipeline.embedder.fingerprint[:12]}), {len(self.gallery)} enrolled, "
                f"threshold {self.threshold:.4f} ({self.threshold_source}), k={self.params.k} of n={self.params.n}")


def load_runtime(cfg: GateConfig, *, detector=None, threshold: float | None = None,
                 simulated: bool = False) -> Runtime:
    """Load the bundle, embedder, detector and gallery of ``cfg`` after :func:`edgeface.device.preflight.preflight`
    (integrity, sha256s, degraded model, threshold, gallery fingerprint). Raises (PreflightError, a
    ConfigError; DetectorError) without side effects; the caller keeps its previous runtime on failure.
    ``threshold`` overrides the config's (``--simulate --threshold``)."""
    from edgeface.detect import create_detector
    from edgeface.runtime import open_embedder

    from .preflight import preflight

    limit_threads(cfg.model.threads)  # OpenCV too, also on a reload that changed model.threads
    checked = preflight(cfg, threshold=threshold, check_relay=False, simulated=simulated)
    for warning in checked.warnings:
        log.warning("%s", warning)
    bundle, key, gallery = checked.bundle, checked.key, checked.gallery
    value, source = checked.threshold.value, checked.threshold.source
    params = PolicyParams.from_config(cfg.policy, value)
    embedder = open_embedder(bundle, model=key, threads=cfg.model.threads, providers=cfg.model.providers)
    if detector is None:
        det = cfg.detector
        options = {"score_threshold": det.score_threshold, "detect_width": det.detect_width,
                   "min_face_px": cfg.quality.min_face_px} if det.kind == "yunet" else {}
        detector = create_detector(det.kind, det.model_path, **options)
    from .access.rules import load_access

    access = load_access(cfg, bundle, key, gallery, value)
    pipeline = Pipeline(detector, embedder, Matcher(gallery, scorer=embedder.scorer), cfg.quality,
                        mirror=cfg.model.mirror)
    return Runtime(cfg, bundle, key, value, source, pipeline, gallery, params, access)


def limit_threads(threads: int) -> None:
    """OpenCV's own thread pool (the YuNet detector) to ``model.threads``: a gate on a small board must not
    oversubscribe its cores, and a measured one-thread latency must really be one thread."""
    import cv2

    cv2.setNumThreads(int(threads))
