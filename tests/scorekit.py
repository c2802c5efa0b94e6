"""A synthetic face world for the policy and access tests: people as directions in a cone, photos and frames as
noisy views of them, and a real calibration of that world (:func:`edgeface.calibrate.calibrate` on 300 synthetic
people), so every threshold these tests meet comes from :func:`edgeface.thresholds.resolve`, as the gate's do."""

from __future__ import annotations

import numpy as np

from edgeface.bundle import Bundle, BundleMeta, ModelFile, Threshold
from edgeface.calibrate import calibrate
from edgeface.config import PolicyConfig
from edgeface.gallery import Gallery
from edgeface.thresholds import resolve

DT = 0.1  # 10 processed frames per second
D = 64
CONE = 2.0  # every face shares a common direction, as real embeddings do (impostors score well above 0)
PHOTO = 0.5  # two photos of one person differ this much (calibrated TAR at FAR 1e-3 about 0.6: a hard set)
FRAME = 0.15  # frames of one appearance differ this much from each other


class World:
    """People as directions in a cone; photos and frames as noisy views of them; a calibration of that world."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.axis = self._units(1)[0]
        self.people: dict[str, np.ndarray] = {}
        self.photos: dict[str, np.ndarray] = {}
        ids = np.repeat(np.arange(300), 4)
        photos = self._noisy(self._centres(300)[ids], PHOTO)
        cal = calibrate(photos, ids, 1e-3)
        self.cal = Threshold(value=cal.threshold, far=1e-3, points=cal.points, impostor_pairs=cal.impostor_pairs,
                             top_impostor=cal.top_impostor, tail=cal.tail, mirror=True)
        mf = ModelFile(file="m.onnx", format="onnx", precision="fp32", sha256="0" * 64, size=1)
        self.bundle = Bundle(None, BundleMeta(source="imported", embedding_size=D, models={"onnx_fp32": mf},
                                              thresholds={"onnx_fp32": self.cal}))

    def _units(self, n):
        v = self.rng.standard_normal((n, D)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def _centres(self, n):
        c = CONE * self.axis + self._units(n)
        return c / np.linalg.norm(c, axis=1, keepdims=True)

    def _noisy(self, v, sigma):
        x = v + sigma * self.rng.standard_normal(np.shape(v)).astype(np.float32) / np.sqrt(D)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def person(self, name: str) -> np.ndarray:
        if name not in self.people:
            self.people[name] = self._centres(1)[0]
        return self.people[name]

    def photo(self, name: str) -> np.ndarray:
        """The person's enrollment photo (one per person)."""
        if name not in self.photos:
            self.photos[name] = self._noisy(self.person(name), PHOTO)
        return self.photos[name]

    def frame(self, name: str, noise: float = FRAME) -> np.ndarray:
        """A door frame: an enrolled person as enrolled, a stranger as one photo of theirs, plus frame noise."""
        return self._noisy(self.photo(name), noise)

    def thresholds(self, access=None, **policy):
        return resolve(self.bundle, "onnx_fp32", PolicyConfig(**policy), access)

    def gallery(self, *names, photos=None):
        g = Gallery.new("0" * 64, D)
        for n in names:
            g.add(n, (photos or {}).get(n, self.photo(n))[None], person_id=n)
        return g
