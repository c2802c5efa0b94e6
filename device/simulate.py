"""``edgeface gate --simulate VIDEO_OR_DIR``: the door loop on a recording, with a simulated relay.

The same :class:`~edgeface.device.gate.Gate`, pipeline and policy as the daemon, with three differences: the
relay is gpiozero's MockFactory (real gpiozero code, a simulated pin; each pulse is still a real timed pulse
on the monotonic clock), no config file is needed (``--bundle`` and ``--gallery`` suffice; a ``--config`` adds
its detector/quality/policy/relay numbers), and by default time is the video's own (frame ``i`` is at
``i / fps``) so it runs as fast as the CPU allows with the decisions it would make in real time.
``--realtime`` paces the replay at its frame rate on the monotonic clock instead.

Each event is printed to stdout as one JSON object per line (``event``, ``person``, ``score``, ``t``; an
``unlock`` carries its ``duration``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgeface.config import CameraConfig, GateConfig, ModelConfig, load_config

from .camera import EndOfStream
from .gate import Gate


class Replay:
    """A recording read directly (no reader thread, no reconnects: a file that cannot be read is an error
    here, not a camera to wait for); the end of the recording is :class:`EndOfStream`, as from WatchedCamera."""

    lost = False

    def __init__(self, camera):
        self.inner = camera

    def open(self) -> None:
        self.inner.open()

    def read(self):
        frame = self.inner.read()
        if frame is None:
            raise EndOfStream("the recording has ended")
        return frame

    def close(self) -> None:
        self.inner.close()


def simulation_config(source: str | Path, bundle: str | Path | None = None, gallery: str | Path | None = None,
                      config: str | Path | GateConfig | None = None, model: str | None = None) -> GateConfig:
    """A GateConfig for a simulation: ``config`` (a file or object) if given, else defaults; the source, bundle,
    gallery and model key given here win; the relay is always the mock one and the audit log is not written (unless ``audit=`` is given to the run)."""
    if config is None:
        if bundle is None or gallery is None:
            from edgeface.errors import ConfigError

            raise ConfigError("--simulate needs --bundle and --gallery (or a --config that names them)")
        cfg = GateConfig(model=ModelConfig(bundle=Path(bundle), gallery=Path(gallery)),
                         camera=CameraConfig(source=str(source)))
    else:
        cfg = config if isinstance(config, GateConfig) else load_config(config)
    model_update = {k: v for k, v in (("bundle", bundle and Path(bundle)), ("gallery", gallery and Path(gallery)),
                                      ("key", model)) if v is not None}
    return cfg.model_copy(update={
        "model": cfg.model.model_copy(update=model_update),
        "camera": cfg.camera.model_copy(update={"source": str(source)}),
        "relay": cfg.relay.model_copy(update={"backend": "mock"}),
    })


def run_simulation(cfg: GateConfig, **kw) -> Gate:
    """Run to the end of the recording; returns the finished gate (events, stats, ``relay.pin`` states). The
    gate is assembled by :func:`edgeface.device.daemon.build_gate`, the daemon's own assembler. ``json_out``
    defaults to stdout; ``credentials`` (.jsonl) feeds badge/PIN claims on video time; ``wall_start`` (aware
    datetime, from ``--clock``) is the simulated wall clock at video time 0 (default: now), for schedules."""
    from .daemon import build_gate

    kw.setdefault("json_out", sys.stdout)
    kw.setdefault("log_out", None)
    gate = build_gate(cfg, simulated=True, **kw)
    gate.exit_code = gate.run()
    return gate
