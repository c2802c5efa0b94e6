"""How small a frame the detector may run on: downscaled detection at the door.

YuNet's cost grows with its input area, and a 640x480 door frame is mostly wall. The detector therefore runs on a
copy downscaled so that the smallest face the gate accepts (``quality.min_face_px``, full-frame pixels) is still
at least :data:`FACE_FLOOR_PX` pixels there; boxes and landmarks are mapped back to the full frame, where the
landmark stage and the aligned crop are taken (so accuracy is kept).

:data:`FACE_FLOOR_PX` is measured, not assumed (``bench/face_floor.py``, ``bench/results/face_floor.json``):
119 real ORL and celeba-loose photos pasted into 640x480 frames with their face box at a given size, YuNet run at
640, 448 and 320 px. In two runs with different placements every face was found from 36 (second run) and from 40
px (first run: one miss at 32-36 px at 320) up; below, a few were missed (109-118 of 119 at 24-32 px). 40 px is
kept, the larger of the two.
"""

from __future__ import annotations

import math

#: the smallest face (shorter side of YuNet's box, in detector pixels) YuNet found every time (measured)
FACE_FLOOR_PX = 40
#: detector input widths are rounded up to a multiple of this (YuNet's feature strides go up to 32)
WIDTH_MULTIPLE = 32
#: never below this width, whatever the numbers say
MIN_DETECT_WIDTH = 160


def auto_detect_width(frame_width: int, min_face_px: float, floor_px: float = FACE_FLOOR_PX) -> int:
    """The narrowest detector width (a multiple of 32) at which a face of ``min_face_px`` full-frame pixels is
    still ``floor_px`` pixels; never wider than the frame."""
    frame_width = int(frame_width)
    if min_face_px <= 0:
        return frame_width
    want = frame_width * float(floor_px) / float(min_face_px)
    width = max(MIN_DETECT_WIDTH, WIDTH_MULTIPLE * math.ceil(want / WIDTH_MULTIPLE))
    return min(frame_width, width)


def detect_size(frame_width: int, frame_height: int, detect_width: int | None, min_face_px: float | None,
                max_side: int) -> tuple[int, int]:
    """The (width, height) the detector runs at for one frame size: ``detect_width`` when given, else chosen from
    ``min_face_px`` (:func:`auto_detect_width`), else the frame fitted into ``max_side``; never upscaled."""
    w, h = int(frame_width), int(frame_height)
    if detect_width is not None:
        target = min(w, int(detect_width))
    elif min_face_px is not None:
        target = auto_detect_width(w, min_face_px)
    else:
        target = w if max(w, h) <= max_side else round(w * max_side / max(w, h))
    if target >= w:
        return w, h
    return max(1, target), max(1, round(h * target / w))
