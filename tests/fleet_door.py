"""One simulated door in its own process: the real daemon (``build_daemon``) on a config with ``[fleet]``, the
relay on gpiozero's MockFactory, the camera a clip of real faces replayed in real time, over and over.
SIGTERM stops it (the gate's own handler). Used by tests/test_fleet_mqtt.py."""

from __future__ import annotations

import sys

from edgeface.config import load_config
from edgeface.device.camera_opencv import VideoFileCamera
from edgeface.device.daemon import build_daemon


class LoopingClip:
    """A live-looking camera: the clip at its own frame rate on the monotonic clock, from the start again at
    its end."""

    finite = False

    def __init__(self, path):
        self.inner = VideoFileCamera(path, realtime=True)
        self.description = f"looping {path}"
        self.fps = None

    def open(self):
        self.inner.open()
        self.fps = self.inner.fps

    def read(self):
        frame = self.inner.read()
        if frame is None:
            self.inner.close()
            self.inner.open()
            frame = self.inner.read()
        return frame

    def close(self):
        self.inner.close()


def main(config: str) -> int:
    video = load_config(config).camera.source
    gate = build_daemon(config, camera_factory=lambda: LoopingClip(video), log_out=sys.stdout)
    return gate.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
