"""The detector/recogniser contract: what a face detector returns.

``Detections`` holds N faces as float32 arrays with stable shapes, also when N == 0:
``boxes`` (N, 4) as x, y, w, h in pixels; ``landmarks`` (N, 5, 2) as x, y of the right eye,
left eye (from the viewer: the eye on the image's left first), nose tip, right and left mouth corner
(again image-left first), the order of the ArcFace template in :mod:`edgeface.align`; ``scores`` (N,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face."""

    box: np.ndarray  # (4,) x, y, w, h
    landmarks: np.ndarray  # (5, 2)
    score: float

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels."""
        return float(min(self.box[2], self.box[3]))


@dataclass(frozen=True)
class Detections:
    """All faces found in one image. Never None: an image without faces has N == 0."""

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(-1, 5, 2)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if not (len(boxes) == len(landmarks) == len(scores)):
            raise ValueError(f"detections disagree on N: {len(boxes)} boxes, {len(landmarks)} landmarks, {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "landmarks", landmarks)
        object.__setattr__(self, "scores", scores)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, i: int) -> Face:
        return Face(self.boxes[i].copy(), self.landmarks[i].copy(), float(self.scores[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def select(self, mask: np.ndarray) -> "Detections":
        return Detections(self.boxes[mask], self.landmarks[mask], self.scores[mask])

    def to_json(self) -> list[dict]:
        return [
            {"box": [round(float(v), 2) for v in f.box],
             "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in f.landmarks],
             "score": round(f.score, 4)}
            for f in self
        ]


def largest_face(dets: Detections, min_size: float = 0.0) -> Face | None:
    """The face with the largest box area whose shorter side is at least ``min_size`` pixels."""
    if len(dets) == 0:
        return None
    sizes = np.minimum(dets.boxes[:, 2], dets.boxes[:, 3])
    areas = np.where(sizes >= min_size, dets.boxes[:, 2] * dets.boxes[:, 3], -1.0)
    i = int(np.argmax(areas))
    return dets[i] if areas[i] >= 0 else None


def most_central_face(dets: Detections, image_shape: tuple[int, ...]) -> Face | None:
    """The face whose box centre is nearest the image centre (ties: the larger face)."""
    if len(dets) == 0:
        return None
    h, w = image_shape[:2]
    centres = dets.boxes[:, :2] + dets.boxes[:, 2:] / 2.0
    dist = np.linalg.norm(centres - np.array([w / 2.0, h / 2.0], np.float32), axis=1)
    area = dets.boxes[:, 2] * dets.boxes[:, 3]
    order = np.lexsort((-area, dist))
    return dets[int(order[0])]
