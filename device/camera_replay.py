"""Image-folder replay: every image in a folder, in natural name order (``frame2`` before ``frame10``),
decoded with ``cv2.imread``.

A folder has no frame rate of its own, so the configured camera fps stands in for it. An image that cannot
be decoded is skipped and logged (one bad file must not end a replay); a folder with no images at all is a
:class:`CameraError` at ``open()``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2

from .camera import Camera, CameraError, Frame, ReplayTimer

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp"}


def natural_key(path: Path) -> list:
    """Sort key that orders embedded numbers by value: frame2.png < frame10.png (frame dumps rarely zero-pad)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageFolderCamera(Camera):
    finite = True

    def __init__(self, folder: str | Path, fps: float = 15.0, realtime: bool = True):
        self.folder = Path(folder)
        self.fps = float(fps)
        self.realtime = realtime
        self.description = f"folder {self.folder}"
        self.files: list[Path] = []
        self.skipped: list[Path] = []
        self._pos = 0
        self._index = 0
        self._timer: ReplayTimer | None = None
        self._open = False

    def open(self) -> None:
        if self._open:
            return
        if not self.folder.is_dir():
            raise CameraError(f"{self.folder}: no such image folder")
        self.files = sorted((p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                            key=natural_key)
        if not self.files:
            raise CameraError(f"{self.folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._pos = 0
        self._index = 0
        self.skipped = []
        self._timer = ReplayTimer(self.fps, self.realtime)
        self._open = True

    def read(self) -> Frame | None:
        if not self._open:
            raise CameraError(f"{self.description} is not open")
        while self._pos < len(self.files):
            path = self.files[self._pos]
            self._pos += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("%s: cannot decode, skipped", path)
                self.skipped.append(path)
                continue
            return self._frame(image, self._timer.stamp(self._index))
        return None

    def close(self) -> None:
        self._open = False
