"""Camera sources behind one small interface, and the dispatch from a config string to the right one.

Every source yields :class:`Frame` objects (BGR uint8 image, monotonic capture time, index). Live sources
(picamera2, V4L2, GStreamer, RTSP) stamp frames with ``time.monotonic()`` at capture. Replay sources (a
video file or an image folder) are finite: ``read()`` returns ``None`` at the end, they expose their native
``fps``, and with ``realtime=False`` they stamp frame ``i`` with ``t = i / fps`` so a gate can run them in
simulated time, as fast as the CPU allows, with the same decisions as in real time.

Cameras never need hardware libraries at import time: picamera2 is imported inside ``open()``. Timeouts and
reconnects are not done here but in :mod:`edgeface.device.camera_watch`, which wraps any :class:`Camera`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError


class CameraError(EdgefaceError):
    """A camera could not be opened or stopped delivering frames."""


class EndOfStream(Exception):
    """A finite source (video file, image folder) has no more frames. Not an error: the replay is over."""


@dataclass(frozen=True)
class Frame:
    """One captured image: ``image`` is BGR uint8 (H, W, 3); ``t`` is the capture time in seconds on the
    monotonic clock (simulated time ``index / fps`` for replays with ``realtime=False``)."""

    image: np.ndarray
    t: float
    index: int


class Camera(ABC):
    """A frame source. ``open()`` acquires the device (idempotent), ``read()`` returns the next frame or ``None``
    when a finite source is exhausted, ``close()`` releases (idempotent, safe after a failed ``open``).

    ``fps`` is the native frame rate of replay sources (what simulated time is based on) and the requested
    rate of live ones; ``finite`` is True for replays.
    """

    fps: float | None = None
    finite: bool = False
    #: a short human description for logs ("v4l2 /dev/video0", "video clip.avi", ...)
    description: str = "camera"
    _index: int = 0

    def _frame(self, image: np.ndarray, t: float) -> Frame:
        """Wrap a decoded image as the next frame (BGR-checked, indices counted from 0 after each open)."""
        frame = Frame(as_bgr(image), t, self._index)
        self._index += 1
        return frame

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> Frame | None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Bring a decoded frame to contiguous BGR uint8 (H, W, 3): grey is expanded, an alpha channel dropped."""
    import cv2

    if image is None or image.size == 0:
        raise CameraError("empty frame")
    if image.dtype != np.uint8:
        raise CameraError(f"frame has dtype {image.dtype}, expected uint8")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise CameraError(f"frame has shape {image.shape}, expected (H, W, 3)")
    return np.ascontiguousarray(image)


_DEVICE = re.compile(r"^(\d+|/dev/video\d+)$")


def source_kind(source: str) -> str:
    """Classify a camera source string: picamera2, v4l2, gstreamer, stream, folder or video.

    Order matters: a GStreamer pipeline contains '!', URLs have a scheme, and only then is the string looked
    up on disk. A string that fits nothing raises :class:`CameraError` naming what was expected.
    """
    text = source.strip()
    if text.lower() == "picamera2":
        return "picamera2"
    if _DEVICE.match(text) or text.startswith("/dev/v4l/"):
        return "v4l2"
    if "!" in text:
        return "gstreamer"
    if re.match(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", text, re.IGNORECASE):
        return "stream"
    path = Path(text)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "video"
    raise CameraError(
        f"camera source {source!r} is not 'picamera2', a device index or /dev/video path, a GStreamer pipeline, "
        "an rtsp:// or http:// URL, an existing video file or an existing image folder"
    )


def open_camera(source: str, cfg=None, *, realtime: bool = True) -> Camera:
    """Build the camera for ``source`` (see :func:`source_kind`) with size/fps from ``cfg``
    (an :class:`edgeface.config.CameraConfig`; defaults when None).

    The returned camera is NOT opened yet: call ``open()`` (or hand a factory that calls this to
    :class:`~edgeface.device.camera_watch.WatchedCamera`, which opens it in its reader thread with a timeout).
    ``realtime`` only matters for replays: True paces them at their native fps with monotonic timestamps,
    False returns frames as fast as asked with simulated timestamps ``index / fps``.
    """
    if cfg is None:
        from edgeface.config import CameraConfig

        cfg = CameraConfig(source=source)
    kind = source_kind(source)
    if kind == "picamera2":
        from .camera_picamera2 import Picamera2Camera

        return Picamera2Camera(width=cfg.width, height=cfg.height, fps=cfg.fps, timeout_s=cfg.read_timeout_s)
    if kind == "folder":
        from .camera_replay import ImageFolderCamera

        return ImageFolderCamera(source, fps=cfg.fps, realtime=realtime)
    from .camera_opencv import OpenCVCamera, VideoFileCamera

    if kind == "video":
        return VideoFileCamera(source, fallback_fps=cfg.fps, realtime=realtime)
    return OpenCVCamera(source, kind, width=cfg.width, height=cfg.height, fps=cfg.fps, timeout_s=cfg.read_timeout_s)


class ReplayTimer:
    """Timestamps for replayed frames. ``realtime=False``: frame i is at ``i / fps`` (simulated time, no waiting).
    ``realtime=True``: frame i is released no earlier than ``start + i / fps`` and stamped with the monotonic
    clock, so a replay behaves like a live camera running at the clip's own rate."""

    def __init__(self, fps: float, realtime: bool):
        if not fps or fps <= 0:
            raise CameraError(f"replay needs a positive frame rate, got {fps!r}")
        self.fps = float(fps)
        self.realtime = realtime
        self._start: float | None = None

    def stamp(self, index: int) -> float:
        if not self.realtime:
            return index / self.fps
        import time

        now = time.monotonic()
        if self._start is None:
            self._start = now - index / self.fps
        delay = self._start + index / self.fps - now
        if delay > 0:
            time.sleep(delay)
        return time.monotonic()
