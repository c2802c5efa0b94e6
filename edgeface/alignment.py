"""The one alignment step, as the bundle records it: a detected face -> the model's input crop.

Every path that turns a photo or a frame into a crop (prepare, eval, calibrate, enroll, the gate) goes through
:class:`Aligner`, built from the bundle's :class:`~edgeface.bundle.AlignSpec` (:meth:`Aligner.for_bundle`), so the
desk and the door cannot drift apart. Two kinds exist:

``arcface``
    the detector's five points warped onto the ArcFace template (:func:`edgeface.align.align_face`).
``dlib5``
    dlib's 5-point shape predictor (:mod:`edgeface.landmarks.shape5`, a numpy port) run on a box derived from the
    detector's, then dlib's ``get_face_chip`` (:mod:`edgeface.chip`): what dlib's face-recognition ResNet expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .align import align_face
from .bundle import AlignSpec, Bundle
from .errors import AlignmentError, ModelError
from .faces import Face

from .landmarks.box import DX, DY, SIDE

#: the measured mapping of a YuNet box onto dlib's HOG detector box (centre dx, dy and side, in units of
#: s = (w + h) / 2); see :mod:`edgeface.landmarks.box`, bench/fit_dlib_box.py, bench/results/fit_dlib_box.json
DLIB_BOX_MAP = (DX, DY, SIDE)


class Aligner:
    """Face (box + detector landmarks) in a BGR or grey uint8 image -> (size, size, 3) uint8 BGR crop."""

    def __init__(self, spec: AlignSpec | None = None, landmark_model: str | Path | None = None) -> None:
        self.spec = spec or AlignSpec()
        self.size = int(self.spec.crop_size)
        self._predictor = None
        if self.spec.landmarks == "dlib-shape5":
            if landmark_model is None:
                raise ModelError("the dlib-shape5 landmark stage needs its model file")
            from .landmarks.shape5 import ShapePredictor5

            self._predictor = ShapePredictor5.load(landmark_model)
        self.landmark_model = Path(landmark_model) if landmark_model is not None else None

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def for_bundle(cls, bundle: Bundle) -> "Aligner":
        spec = bundle.meta.alignment
        model = bundle.aux_path(spec.landmark_model) if spec.landmark_model else None
        return cls(spec, model)

    @classmethod
    def arcface(cls, size: int = 112) -> "Aligner":
        return cls(AlignSpec(crop_size=int(size)))

    # -- the step ----------------------------------------------------------------------------------
    def crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The aligned crop of ``face``; raises :class:`AlignmentError` when it cannot be made."""
        if image is None or image.size == 0:
            raise AlignmentError("empty image")
        if self.spec.template == "arcface":
            return align_face(image, face.landmarks, self.size)
        return self.chip(image, self.points(image, face))

    def chip(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The crop for five points from :meth:`points` (the second half of :meth:`crop`, timed apart at the door)."""
        if image is None or image.size == 0:
            raise AlignmentError("empty image")
        if self.spec.template == "arcface":
            return align_face(image, points, self.size)
        from .chip import extract_dlib_chip

        chip = extract_dlib_chip(image, points, size=self.size, padding=self.spec.padding)
        if chip.ndim == 2:
            chip = np.repeat(chip[:, :, None], 3, axis=2)
        return chip

    def points(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The five points the crop is made from (the detector's, or the landmark stage's)."""
        if self._predictor is None:
            return np.asarray(face.landmarks, np.float32)
        box = landmark_box(face.box, self.spec.box_map or DLIB_BOX_MAP)
        pts = self._predictor.predict(image, box)
        if not np.all(np.isfinite(pts)):
            raise AlignmentError("the landmark stage gave non-finite points")
        return pts

    def describe(self) -> dict:
        """The spec as JSON, for manifests that must match the model they are used with."""
        return self.spec.model_dump(mode="json")


def landmark_box(box_xywh, box_map=DLIB_BOX_MAP) -> tuple[int, int, int, int]:
    """A detector box (x, y, w, h) -> the (left, top, right, bottom) box the landmark stage was trained on.

    Centre moved by (dx, dy) * s and side scaled to k * s, with s = (w + h) / 2; rounded like dlib's
    ``centered_rect`` (integer corners, right/bottom inclusive)."""
    from .landmarks.box import dlib_box_from_detector

    dx, dy, side = box_map
    return dlib_box_from_detector(box_xywh, dx, dy, side)


def same_alignment(a: dict | AlignSpec | None, b: dict | AlignSpec | None) -> bool:
    """True when two recorded alignments are the same (None means the ArcFace 112 default)."""
    def norm(x):
        if x is None:
            return AlignSpec().model_dump(mode="json")
        return x.model_dump(mode="json") if isinstance(x, AlignSpec) else AlignSpec.model_validate(x).model_dump(mode="json")

    return norm(a) == norm(b)


def aligner_of(embedder) -> Aligner:
    """The embedder's alignment (set from its bundle or checkpoint), else ArcFace at its input size."""
    aligner = getattr(embedder, "aligner", None)
    return aligner if aligner is not None else Aligner.arcface(int(embedder.spec.size[0]))


def check_cache_alignment(manifest: dict, aligner: Aligner, where: str) -> None:
    """Refuse a crop cache prepared with another alignment than the model's (its crops would be wrong)."""
    from .errors import EdgefaceError

    recorded = manifest.get("align")
    if recorded is None:
        recorded = AlignSpec(crop_size=int(manifest.get("size", 112))).model_dump(mode="json")
    if not same_alignment(recorded, aligner.spec):
        raise EdgefaceError(
            f"{where} was prepared with alignment {_short(recorded)}, but the model needs {_short(aligner.spec)}: "
            "prepare a cache for this model (edgeface prepare --bundle BUNDLE, or --align) or pass the photo folder")


def _short(spec) -> str:
    s = spec if isinstance(spec, AlignSpec) else AlignSpec.model_validate(spec)
    return f"{s.template} {s.crop_size}px ({s.landmarks} landmarks)"
