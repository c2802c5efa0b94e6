"""Checking one photo for enrollment, in memory, through the one model object: the page's photos take exactly the
path of ``edgeface enroll``'s (:class:`edgeface.recognizer.Recognizer` built from the gate config: the strict photo
reader, the detector of ``[detector]``, the bundle's alignment, the quality gates, the embedder with the mirror
image), and the identity checks are :func:`edgeface.enroll_checks.check_person` with the same thresholds.

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
    "corrupt": "the file is damaged, cut short or not a JPEG, PNG, BMP, WebP or PGM photo",
    "alignment_failed": "the face cannot be aligned: use a frontal photo",
}


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)   # in words, one per failed gate
    details: list[str] = field(default_factory=list)   # the quality gate's own measured messages
    embedding: np.ndarray | None = None
    similar: list[tuple[str, float]] = field(default_factory=list)  # enrolled people the door could confuse: (name, score)
    threshold: float | None = None  # the door's threshold
    identity: object = None  # the PersonCheck of edgeface.enroll_checks
    crop: np.ndarray | None = None  # the aligned face, for the verdict page (never stored)


class Enroller:
    """The gate config's :class:`~edgeface.recognizer.Recognizer`, built on first use (the people and events pages
    work without a model)."""

    def __init__(self, cfg: GateConfig):
        self.cfg = cfg
        self._recognizer = None
        self._lock = threading.Lock()

    @property
    def recognizer(self):
        with self._lock:
            if self._recognizer is None:
                from edgeface.recognizer import Recognizer

                rec = Recognizer.from_config(self.cfg)
                rec.thresholds()  # an uncalibrated bundle says so before any photo is checked
                self._recognizer = rec
        return self._recognizer

    @property
    def fingerprint(self) -> str:
        return self.recognizer.fingerprint

    @property
    def embedding_size(self) -> int:
        return self.recognizer.embedding_size

    @property
    def threshold(self) -> float:
        return self.recognizer.thresholds().door.value

    def identity(self, gallery: Gallery, name: str, embedding: np.ndarray, allow_similar: bool = False):
        """The safety checks of ``edgeface enroll`` for one new photo of ``name``."""
        from edgeface.enroll_checks import check_person

        return check_person(gallery, name, embedding[None], ["this photo"], self.recognizer, allow_similar)

    def check(self, photo: bytes | np.ndarray | None, gallery: Gallery | None, name: str = "") -> Verdict:
        """An uploaded photo (its bytes, read by the one photo reader) or a camera snapshot (an image). Raises
        :class:`~edgeface.enroll_photos.UnsupportedImageError` for a file that is not a photo edgeface takes."""
        from edgeface.enroll_checks import similar_people
        from edgeface.enroll_photos import CorruptImageError, UnsupportedImageError

        from edgeface.recognizer import Recognizer

        if photo is None or isinstance(photo, (bytes, bytearray)):
            try:  # the one reader, before the model is built: a file that is no photo (a bomb) costs nothing more
                image = Recognizer.read_photo(bytes(photo or b""))
            except UnsupportedImageError:
                raise
            except CorruptImageError as exc:
                return Verdict(False, [ADVICE["corrupt"]], [str(exc)])
        else:
            image = photo
        rec = self.recognizer
        check, emb = rec.enroll_photo(image)
        if emb is None:
            reasons = [ADVICE.get(c, r) for c, r in zip(check.report.codes, check.report.reasons)]
            return Verdict(False, reasons or ["the photo cannot be used"], list(check.report.reasons))
        th = rec.thresholds()
        similar = [(p.name, s) for p, s, _ in similar_people(gallery, emb[None], rec, th.door.value)] \
            if gallery is not None else []
        identity = self.identity(gallery or Gallery.new(rec.fingerprint, rec.embedding_size), name, emb)
        return Verdict(True, [], [], emb, similar, th.door.value, identity, check.crop)
