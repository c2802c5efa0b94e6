"""Checking one photo for enrollment, in memory: decode, the core :func:`edgeface.enroll.check_photo` (the same
detector, alignment and quality gates as ``edgeface enroll`` and the door), embed, and the identity checks of
:func:`edgeface.enroll_checks.check_person` (already enrolled; one face under two names; one name, several
people) at the same threshold as ``edgeface enroll``.

The photo's bytes are decoded in memory and dropped; only the embedding is kept until the admin saves it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from edgeface.config import GateConfig
from edgeface.gallery import Gallery

#: words for the quality gate's codes, ahead of its measured details
ADVICE = {
    "no_face": "no face found: use a photo of one face, looking at the camera",
    "several_faces": "more than one face: use a photo of this person alone",
    "too_small": "face too small: come closer or use a larger photo",
    "low_score": "the detector is unsure it is a face: use a clearer, well-lit photo",
    "blurred": "face blurred: hold still, or use a sharper photo",
    "not_frontal": "face turned away: look straight at the camera",
    "unreadable": "not an image: upload a JPEG or PNG photo",
    "alignment_failed": "the face cannot be aligned: use a frontal photo",
}


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)   # in words, one per failed gate
    details: list[str] = field(default_factory=list)   # the quality gate's own measured messages
    embedding: np.ndarray | None = None
    similar: list[tuple[str, float]] = field(default_factory=list)  # enrolled people this face matches: (name, score)
    threshold: float | None = None
    identity: object = None  # the PersonCheck of edgeface.enroll_checks


def decode_image(data: bytes) -> np.ndarray | None:
    import cv2

    if not data:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


class Enroller:
    """The detector, embedder and threshold of a gate config, loaded on first use (the people and events pages
    work without a model)."""

    def __init__(self, cfg: GateConfig, detector=None):
        self.cfg = cfg
        self._detector = detector
        self._embedder = None
        self._threshold: float | None = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._embedder is None:
                from edgeface.bundle import Bundle
                from edgeface.runtime import open_embedder

                from edgeface.enroll_checks import similarity_threshold

                bundle = Bundle.load(self.cfg.model.bundle)
                key = self.cfg.model.key or bundle.default_key()
                self._threshold = similarity_threshold(bundle, key, self.cfg.policy.threshold)[0]
                self._embedder = open_embedder(bundle, model=key, threads=self.cfg.model.threads,
                                               providers=self.cfg.model.providers)
            if self._detector is None:
                from edgeface.detect import create_detector

                det = self.cfg.detector
                options = {"score_threshold": det.score_threshold} if det.kind == "yunet" else {}
                self._detector = create_detector(det.kind, det.model_path, **options)
        return self._detector, self._embedder

    @property
    def fingerprint(self) -> str:
        return self._load()[1].fingerprint

    @property
    def embedding_size(self) -> int:
        return int(self._load()[1].embedding_size)

    @property
    def threshold(self) -> float:
        self._load()
        return self._threshold

    def identity(self, gallery: Gallery, name: str, embedding: np.ndarray, allow_similar: bool = False):
        """The safety checks of ``edgeface enroll`` for one new photo of ``name``."""
        from edgeface.enroll_checks import check_person

        return check_person(gallery, name, embedding[None], ["this photo"], self.threshold, allow_similar)

    def check(self, image: np.ndarray | None, gallery: Gallery | None, name: str = "") -> Verdict:
        from edgeface.enroll import check_photo
        from edgeface.match import Matcher

        detector, embedder = self._load()
        check = check_photo(detector, image, self.cfg.quality, int(embedder.spec.size[0]))
        if not check.ok:
            reasons = [ADVICE.get(c, r) for c, r in zip(check.report.codes, check.report.reasons)]
            return Verdict(False, reasons or ["the photo cannot be used"], list(check.report.reasons))
        emb = embedder.embed(check.crop[None])[0]
        similar: list[tuple[str, float]] = []
        if gallery is not None and len(gallery):
            scores = Matcher(gallery).person_scores(emb[None])[0]
            similar = sorted(((p.name, float(s)) for p, s in zip(gallery.people, scores) if s >= self._threshold),
                             key=lambda x: -x[1])
        identity = self.identity(gallery or Gallery.new(embedder.fingerprint, embedder.embedding_size), name, emb)
        return Verdict(True, [], [], emb, similar, self._threshold, identity)
