"""The one model object: from a picture to faces, crops, embeddings, scores and thresholds, built from the bundle.

Every path that recognises a face gets everything from a :class:`Recognizer` and assembles nothing itself:
``edgeface enroll`` and the admin page (photos -> enrollment embeddings), ``calibrate`` and ``eval`` (photos ->
embeddings -> scores), the gate and its simulation (frames -> observations, one assembler), the fleet's gallery
install (a gallery -> its matcher), 1:1 access (an embedding against one person), ``camera check`` and the benches.
So a call site can no longer forget the bundle's alignment, the mirror image, the strict photo reader, the
detector's options or the scorer, and every threshold comes from :mod:`edgeface.thresholds` in the scorer's units.

What it holds, all from the bundle (and the ``[detector]`` / ``[quality]`` / ``[model]`` sections of a config):

* two detectors from the one ``[detector]`` section: the door's (YuNet on a downscaled copy of each frame,
  :mod:`edgeface.detect.scale`) and the photos' (the whole photo fitted into 640 px), same kind, file and score;
* the bundle's alignment (:class:`edgeface.alignment.Aligner`), embedder (``model.key``, threads, providers) and
  scorer (cosine, or the bundle's logistic unit), and the embedder's sha256 fingerprint;
* the quality gates, the mirror rule (photos are always embedded with their mirror image; live frames with
  ``[model] mirror``) and the thresholds (:meth:`thresholds`).

It is safe to share between threads (the admin page's workers): detection and inference hold one lock.
"""

from __future__ import annotations

import threading
from functools import partial
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bundle import Bundle
from .config import DetectorConfig, QualityConfig
from .enroll import CORRUPT, EmbeddedPhotos, FaceCheck, check_photo
from .errors import AlignmentError
from .faces import Detections, Face, largest_face
from .quality import QualityReport, assess
from .scorer import COSINE, Scorer

if TYPE_CHECKING:
    from .config import GateConfig
    from .gallery import Gallery
    from .match import Matcher
    from .thresholds import Thresholds

#: photos are detected on a copy fitted into this many pixels (a phone photo's face is large)
PHOTO_MAX_SIDE = 640


def build_detector(det: DetectorConfig | None = None, quality: QualityConfig | None = None, frames: bool = True):
    """The one place a detector is built from ``[detector]``: for door frames (``frames``: downscaled to
    ``detect_width``, default chosen from ``quality.min_face_px``) or for photos (fitted into 640 px)."""
    from .detect import create_detector

    det = det or DetectorConfig()
    if det.kind != "yunet":
        return create_detector(det.kind)
    options = {"score_threshold": det.score_threshold, "max_side": PHOTO_MAX_SIDE}
    if frames:
        options.update(detect_width=det.detect_width, min_face_px=(quality or QualityConfig()).min_face_px)
    return create_detector("yunet", det.model_path, **options)


class _Deferred(partial):
    """A detector not built yet: :class:`Recognizer` builds it the first time it is asked for."""


@dataclass
class Observation:
    """What one frame showed the model: ``faces`` detected, the chosen ``face`` (the largest at least
    ``quality.min_face_px``; None: none), whether it is ``usable`` (passed the quality gates and was embedded),
    the quality ``reasons`` when not, its aligned ``crop``, unit ``embedding``, detector ``score`` and the
    milliseconds per stage (detect, landmarks, align, embed)."""

    faces: int
    face: Face | None
    usable: bool
    reasons: tuple[str, ...]
    crop: np.ndarray | None
    embedding: np.ndarray | None
    stages: dict = field(default_factory=dict)
    latency_ms: float = 0.0
    report: QualityReport | None = None


class Recognizer:
    """See the module docstring. Build it with :meth:`from_bundle` or :meth:`from_config`."""

    def __init__(self, embedder, detector, photo_detector=None, quality: QualityConfig | None = None,
                 bundle: Bundle | None = None, live_mirror: bool = False, policy=None, access=None) -> None:
        from .alignment import aligner_of

        self.bundle = bundle
        self.embedder = embedder
        self.key = getattr(embedder, "key", None)
        self._detectors = {"frames": detector, "photos": photo_detector or detector}
        self.quality = quality or QualityConfig()
        self.aligner = aligner_of(embedder)
        self.scorer: Scorer = getattr(embedder, "scorer", None) or COSINE
        self.live_mirror = bool(live_mirror)
        self._policy, self._access = policy, access
        self._thresholds = None
        self._lock = threading.RLock()

    # -- the two detectors (built on first use: an evaluation over a crop cache never needs one) ----
    def _detector_for(self, which: str):
        with self._lock:
            d = self._detectors[which]
            if isinstance(d, _Deferred):
                d = self._detectors[which] = d()
            return d

    @property
    def detector(self):
        """The door-frame detector."""
        return self._detector_for("frames")

    @property
    def photo_detector(self):
        """The photo detector (enrollment, calibration, prepare)."""
        return self._detector_for("photos")

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_bundle(cls, bundle: Bundle | str | Path, key: str | None = None, *, detector: DetectorConfig | None = None,
                    quality: QualityConfig | None = None, threads: int = 1, providers: list[str] | None = None,
                    live_mirror: bool = False, policy=None, access=None, frame_detector=None) -> "Recognizer":
        """``frame_detector``: an already built detector for door frames (tests inject one); photos still get
        theirs from ``detector``."""
        from .runtime import open_embedder

        bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        embedder = open_embedder(bundle, model=key or bundle.default_key(), threads=threads, providers=providers)
        frames = frame_detector if frame_detector is not None else _Deferred(build_detector, detector, quality, True)
        photos = _Deferred(build_detector, detector, quality, False)
        return cls(embedder, frames, photos, quality, bundle, live_mirror, policy, access)

    @classmethod
    def from_config(cls, cfg: "GateConfig", *, frame_detector=None, bundle: Bundle | None = None) -> "Recognizer":
        """Everything from a gate config: ``[model]`` (bundle, key, threads, providers, mirror), ``[detector]``,
        ``[quality]``, and ``[policy]`` / ``[access]`` for the thresholds."""
        m = cfg.model
        return cls.from_bundle(bundle or m.bundle, m.key, detector=cfg.detector, quality=cfg.quality, threads=m.threads,
                               providers=m.providers, live_mirror=m.mirror, policy=cfg.policy, access=cfg.access,
                               frame_detector=frame_detector)

    @classmethod
    def from_embedder(cls, embedder, detector: DetectorConfig | None = None,
                      quality: QualityConfig | None = None) -> "Recognizer":
        """Around an embedder that is not in a bundle (a training checkpoint, for ``eval``): no thresholds."""
        return cls(embedder, _Deferred(build_detector, detector, quality, True),
                   _Deferred(build_detector, detector, quality, False), quality)

    # -- what it is --------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return self.embedder.fingerprint

    @property
    def embedding_size(self) -> int:
        return int(self.embedder.embedding_size)

    def thresholds(self) -> "Thresholds":
        """Every threshold, resolved once from the bundle's calibration (:func:`edgeface.thresholds.resolve`) and
        the config's ``[policy]`` / ``[access]`` this model was built with. Raises ConfigError when the bundle has
        no calibration for this model."""
        from .errors import ConfigError
        from .thresholds import resolve

        if self.bundle is None:
            raise ConfigError("thresholds need a calibrated bundle; this model is not one")
        if self._thresholds is None:
            self._thresholds = resolve(self.bundle, self.key, self._policy, self._access)
        return self._thresholds

    # -- photos ------------------------------------------------------------------------------------
    @staticmethod
    def read_photo(source: str | Path | bytes) -> np.ndarray:
        """The one image reader: a file or its bytes, decoded strictly (JPEG, PNG, BMP, WebP, PGM/PPM); a
        truncated, damaged or unsupported file is :class:`edgeface.enroll_photos.CorruptImageError`."""
        from .enroll_photos import read_photo_strict

        return read_photo_strict(source)

    def check_photo(self, image: np.ndarray | None) -> FaceCheck:
        """Detect (photo detector), the largest face, the bundle's alignment, the quality gates."""
        with self._lock:
            return check_photo(self.photo_detector, image, self.quality, self.aligner)

    def enroll_photo(self, image: np.ndarray | None) -> tuple[FaceCheck, np.ndarray | None]:
        """(the check, the enrollment embedding: the photo's and its mirror image's, averaged; None when the photo
        cannot be used). Exactly what ``edgeface enroll``, the admin page and calibration store and compare."""
        check = self.check_photo(image)
        if not check.ok:
            return check, None
        return check, self.embed(check.crop[None], mirror=True)[0]

    def embed(self, crops: np.ndarray, mirror: bool = False) -> np.ndarray:
        """Unit embeddings (N, D) of aligned crops (N, H, W, 3) BGR uint8."""
        with self._lock:
            return self.embedder.embed(crops, mirror=mirror)

    def embed_photos(self, photos, desc: str = "photos", progress: bool = True, batch: int = 32,
                     on_reject=None) -> EmbeddedPhotos:
        """Check and embed each photo as :meth:`enroll_photo` does (tqdm progress on stderr). Rejected photos are
        listed with their reports, never dropped silently (and passed to ``on_reject(photo, report)``)."""
        from tqdm import tqdm

        from .enroll_photos import CorruptImageError

        out = EmbeddedPhotos(np.zeros((0, self.embedding_size), np.float32))
        crops: list[np.ndarray] = []
        parts: list[np.ndarray] = []
        for photo in tqdm(photos, desc=desc, unit="photo", disable=not progress, leave=False):
            try:
                check = self.check_photo(self.read_photo(photo.path))
            except CorruptImageError as exc:
                check = FaceCheck(QualityReport(False, [str(exc)], {}, [CORRUPT]))
            if not check.ok:
                out.rejected.append((photo, check.report))
                if on_reject is not None:
                    on_reject(photo, check.report)
                continue
            out.accepted.append(photo)
            crops.append(check.crop)
            if len(crops) >= batch:
                parts.append(self.embed(np.stack(crops), mirror=True))
                crops = []
        if crops:
            parts.append(self.embed(np.stack(crops), mirror=True))
        if parts:
            out.embeddings = np.concatenate(parts)
        return out

    def load_faces(self, data, identities=None, progress: bool = True):
        """The aligned crops of a photo folder (detected and aligned now, by this model's photo detector and
        alignment) or of a prepared crop cache (refused when prepared with another alignment), for evaluation."""
        from .evaluate import is_cache, load_faces

        detector = None if is_cache(Path(data)) else self.photo_detector
        return load_faces(data, detector, identities, progress=progress, aligner=self.aligner)

    # -- frames ------------------------------------------------------------------------------------
    def observe(self, image: np.ndarray) -> Observation:
        """One door frame: detect on the downscaled copy, the largest face of at least ``min_face_px``, its
        landmarks and crop from the full frame, the quality gates, and the live embedding."""
        t0 = time.perf_counter()
        stages: dict[str, float] = {}

        def lap(name: str, t: float) -> float:
            now = time.perf_counter()
            stages[name] = (now - t) * 1000.0
            return now

        with self._lock:
            dets: Detections = self.detector.detect(image)
            t = lap("detect", t0)
            face = largest_face(dets, self.quality.min_face_px)
            if face is None:
                reasons = ("no face",) if len(dets) == 0 else ("face too small",)
                return Observation(len(dets), None, False, reasons, None, None, stages, _ms(t0))
            try:
                points = self.aligner.points(image, face)
                t = lap("landmarks", t)
                crop = self.aligner.chip(image, points)
            except AlignmentError as exc:
                return Observation(len(dets), face, False, (str(exc),), None, None, stages, _ms(t0))
            report = assess(image, face, crop, self.quality, dets)
            t = lap("align", t)
            if not report.ok:
                return Observation(len(dets), face, False, tuple(report.codes), crop, None, stages, _ms(t0), report)
            emb = self.embedder.embed(crop[None], mirror=self.live_mirror)[0]
            lap("embed", t)
        return Observation(len(dets), face, True, (), crop, emb, stages, _ms(t0), report)

    def warm_up(self, image: np.ndarray | None = None) -> float:
        """One full inference (detector on a frame, the landmark stage and crop on a face-sized box, the embedder)
        so the first real face is not slowed by lazy initialisation. Returns its latency in ms."""
        t0 = time.perf_counter()
        frame = image if image is not None else np.zeros((480, 640, 3), np.uint8)
        with self._lock:
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

    # -- scores ------------------------------------------------------------------------------------
    def matcher(self, gallery: "Gallery") -> "Matcher":
        """The 1:N matcher of ``gallery`` with this model's scorer (the gallery must be this model's)."""
        from .gallery import GalleryFingerprintError
        from .match import Matcher

        if gallery.fingerprint != self.fingerprint:
            raise GalleryFingerprintError(f"the gallery was made with embedder {gallery.fingerprint[:12]}, this model "
                                          f"is {self.fingerprint[:12]}")
        return Matcher(gallery, scorer=self.scorer)

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a), len(b)) scores of unit embeddings, in the scorer's units."""
        return self.scorer.matrix(a, b)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
