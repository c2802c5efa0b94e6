"""OpenCV ``VideoCapture`` sources: V4L2 devices, GStreamer pipelines (Jetson CSI cameras), network streams
(RTSP/HTTP through FFmpeg) and video-file replay with real decoding.

A GStreamer pipeline must end in an ``appsink`` that receives BGR, and should drop old buffers; for a Jetson
CSI camera (needs an OpenCV built with GStreamer, as JetPack's is)::

    nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 !
    nvvidconv ! video/x-raw,width=640,height=480,format=BGRx ! videoconvert ! video/x-raw,format=BGR !
    appsink drop=true max-buffers=1

RTSP is read over TCP unless ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` says otherwise.

Live captures ask for a one-frame buffer so a slow pipeline reads a fresh frame rather than a queue of old
ones, and set OpenCV's own open/read timeouts where the backend honours them (FFmpeg, GStreamer). Those are
a first line only: :class:`~edgeface.device.camera_watch.WatchedCamera` enforces the read timeout for every
source, whatever the backend does.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import cv2

from .camera import Camera, CameraError, Frame, ReplayTimer

log = logging.getLogger(__name__)

_BACKENDS = {
    "v4l2": cv2.CAP_V4L2,
    "gstreamer": cv2.CAP_GSTREAMER,
    "stream": cv2.CAP_FFMPEG,
}


class _Capture(Camera):
    """What every ``cv2.VideoCapture`` source shares: the capture handle and its release."""

    _cap: cv2.VideoCapture | None = None

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class OpenCVCamera(_Capture):
    """A live OpenCV capture. ``kind`` is "v4l2" (index or /dev/video path), "gstreamer" (a pipeline ending in
    appsink) or "stream" (rtsp://, http://). Frames are stamped with the monotonic clock right after decode."""

    finite = False

    def __init__(self, source: str, kind: str, width: int = 640, height: int = 480, fps: float = 15.0,
                 timeout_s: float = 2.0):
        if kind not in _BACKENDS:
            raise CameraError(f"unknown OpenCV source kind {kind!r}")
        self.source = source
        self.kind = kind
        self.width, self.height, self.fps = width, height, fps
        self.timeout_s = timeout_s
        self.description = f"{kind} {source}"
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    def _target(self):
        if self.kind == "v4l2" and self.source.strip().isdigit():
            return int(self.source.strip())
        return self.source

    def open(self) -> None:
        if self._cap is not None:
            return
        if self.kind == "stream":
            # RTSP over TCP unless the operator chose otherwise: UDP loses packets on Wi-Fi and smears frames
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        ms = int(self.timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        if self.kind == "v4l2":
            params += [cv2.CAP_PROP_FRAME_WIDTH, self.width, cv2.CAP_PROP_FRAME_HEIGHT, self.height]
        cap = cv2.VideoCapture(self._target(), _BACKENDS[self.kind], params)
        if not cap.isOpened():
            cap.release()
            hint = {
                "v4l2": "is the camera plugged in, and is the user in the 'video' group?",
                "gstreamer": "is OpenCV built with GStreamer, and does the pipeline end in appsink?",
                "stream": "is the URL reachable, and are the credentials right?",
            }[self.kind]
            raise CameraError(f"cannot open {self.description} ({hint})")
        if self.kind == "v4l2":
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        self._index = 0

    def read(self) -> Frame:
        if self._cap is None:
            raise CameraError(f"{self.description} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"{self.description} delivered no frame")
        return self._frame(image, time.monotonic())


_LOG_LEVEL_ERROR = 2  # OpenCV's LOG_LEVEL_ERROR (cv::utils::logging), the same number in every 4.x


def _open_file(path: Path) -> "cv2.VideoCapture":
    """A video file through FFmpeg where this OpenCV has it (quietly: a file it cannot read is our one-line error,
    not OpenCV's warning), else any backend. OpenCV's own AVI reader is not tried first: on a damaged file it
    prints raw container bytes to stderr."""
    if not cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
        return cv2.VideoCapture(str(path))
    # the logging API moved: cv2.utils.logging (4.12+), cv2.getLogLevel / setLogLevel (4.11 and before)
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None) or cv2
    get, put = getattr(logging_api, "getLogLevel", None), getattr(logging_api, "setLogLevel", None)
    level = get() if get is not None and put is not None else None
    if level is not None:
        put(_LOG_LEVEL_ERROR)
    try:
        return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        if level is not None:
            put(level)


class VideoFileCamera(_Capture):
    """Replay of a video file, decoded frame by frame by OpenCV (FFmpeg or OpenCV's MJPEG reader).

    ``fps`` is the file's own rate (``fallback_fps`` when the container does not say). ``read()`` returns None
    at the end of the file (also when decoding stops early: that is logged, since container frame counts are
    only estimates for some formats).
    """

    finite = True

    def __init__(self, path: str | Path, fallback_fps: float = 15.0, realtime: bool = True):
        self.path = Path(path)
        self.fallback_fps = fallback_fps
        self.realtime = realtime
        self.description = f"video {self.path}"
        self.fps = None
        self.frame_count: int | None = None
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._timer: ReplayTimer | None = None
        self._warned = False

    def open(self) -> None:
        if self._cap is not None:
            return
        if not self.path.is_file():
            raise CameraError(f"{self.path}: no such video file")
        cap = _open_file(self.path)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"{self.path}: OpenCV cannot decode this video (unsupported codec or not a video)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else float(self.fallback_fps)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and math.isfinite(count) and count > 0 else None
        self._cap = cap
        self._index = 0
        self._timer = ReplayTimer(self.fps, self.realtime)

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"{self.description} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.frame_count is not None and self._index < self.frame_count - 1 and not self._warned:
                # container frame counts are estimates for some formats: say so, but end the replay normally
                log.warning("%s: decoding stopped at frame %d of %d announced", self.path, self._index, self.frame_count)
                self._warned = True
            return None
        return self._frame(image, self._timer.stamp(self._index))
