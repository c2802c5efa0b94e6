"""Assembling the gate: ``edgeface gate --config FILE`` and ``edgeface gate --simulate``, one assembler.

The order is the fail-secure one: config (a bad one exits 78 before touching hardware), then the relay,
driven off at once (no GPIO: exit non-zero, nothing was ever energised), then model, gallery, audit log and
notifier, then the camera; READY=1 follows the first frame and the warm-up inference (in :class:`Gate`).
Every piece can be injected, so the tests run this same assembly with a MockFactory pin, a failing or hanging
camera and a real notify socket.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable

from edgeface.config import GateConfig, load_config
from edgeface.errors import ConfigError

from .camera import Camera, open_camera
from .camera_watch import WatchedCamera
from .gate import Gate, NullAudit
from .pipeline import Runtime, limit_threads, load_runtime
from .relay import open_relay, simulated_pins
from .relay_check import check_gpio

log = logging.getLogger(__name__)


def open_audit(cfg: GateConfig):
    """The audit log of ``[audit]``; if it cannot even be constructed the door still works (NullAudit), and
    the failure is logged: an audit problem must never keep the door loop from running."""
    try:
        from .audit import AuditLog

        a = cfg.audit
        return AuditLog(a.path, retention_days=a.retention_days, max_rows=a.max_rows, save_faces=a.save_faces,
                        faces_dir=a.faces_dir)
    except Exception as exc:  # AuditLog itself counts write failures; this is a failure to exist at all
        log.error("audit log %s unavailable, continuing without it: %s", cfg.audit.path, exc)
        return NullAudit()


def start_fleet(cfg: GateConfig, gate: Gate) -> None:
    """``[fleet]``: follow the site's signed gallery and send events upstream, in threads of their own; the
    link stops when the gate closes its audit (last thing at shutdown)."""
    try:
        from .fleet.door_link import DoorLink, FleetAudit
    except ImportError as exc:
        raise ConfigError(f"[fleet] needs the fleet extra (pip install 'edgeface[fleet]'): {exc}") from None
    link = DoorLink(cfg, gate)
    gate.audit = FleetAudit(gate.audit, link)
    gate.fleet = link
    link.start()


def build_gate(cfg: GateConfig, *, config_path: str | Path | None = None, simulated: bool = False,
               realtime: bool = False, threshold: float | None = None, pin_factory=None,
               camera_factory: Callable[[], Camera] | None = None, notifier=None, log_out=sys.stderr,
               json_out=None, detector=None, audit=None, credentials=None, wall_start=None) -> Gate:
    """The one assembler of a gate, for the daemon and for ``--simulate`` alike: relay (driven off at once),
    runtime (:func:`edgeface.device.pipeline.load_runtime`: the recognizer, thresholds, gallery), access hook,
    audit, notifier, camera and fleet link. Raises ConfigError (78), RelayError, ModelError or GalleryError;
    the relay is closed (off) again when a later step fails.

    The daemon (``simulated=False``) reads a camera behind the watchdog, reloads from ``config_path`` on SIGHUP,
    writes the ``[audit]`` log, notifies systemd and joins the ``[fleet]``. A simulation replays ``[camera]
    source`` directly (video time unless ``realtime``), with the mock relay its config names, badge/PIN claims
    from ``credentials`` and the wall clock ``wall_start`` (aware datetime) at video time 0; it writes an audit
    log only when ``audit`` is given."""
    # a pin that cannot exist here, one used twice or a missing GPIO library is a config error (78), before any GPIO
    check_gpio(cfg, check_library=not simulated and pin_factory is None)
    if pin_factory is None and cfg.relay.backend == "mock":
        pin_factory = simulated_pins()  # the relay and every [access] line on one simulated board
    relay = open_relay(cfg.relay, pin_factory=pin_factory)
    try:
        limit_threads(cfg.model.threads)
        runtime = load_runtime(cfg, detector=detector, threshold=threshold, simulated=simulated)
        from .access.decide import build_access, simulated_wall

        wall = simulated_wall(wall_start) if wall_start is not None else None
        access = build_access(cfg, relay, pin_factory=pin_factory, credentials=credentials, wall=wall,
                              hardware=not simulated)
        reload = None
        if config_path is not None:
            def reload() -> Runtime:
                return load_runtime(load_config(config_path))

        freshness = None
        if cfg.model.gallery_public_key is not None:
            from .fleet.freshness import Freshness

            freshness = Freshness.from_config(cfg)
        #: what the daemon and the simulation share: the access hook, SIGHUP's reload and, on a signed door, its
        #: freshness guard and its light gallery reload
        common = dict(access=access, reload=reload, freshness=freshness, gallery_loader=_gallery_loader(cfg))
        if simulated:
            from .simulate import Replay

            gate = Gate(runtime, None, relay, audit=audit, json_out=json_out, log_out=log_out,
                        simulated=not realtime, finish_pulse_at_end=True, **common)
            gate.camera = Replay(open_camera(cfg.camera.source, cfg.camera, realtime=realtime))
            return gate
        if notifier is None:
            from .notify import Notifier

            notifier = Notifier.from_env()
        factory = camera_factory or (lambda: open_camera(cfg.camera.source, cfg.camera, realtime=True))
        gate = Gate(runtime, None, relay, audit=audit or open_audit(cfg), notifier=notifier,
                    json_out=json_out, log_out=log_out, **common)
        gate.camera = WatchedCamera(factory, cfg.camera.read_timeout_s, cfg.camera.retry_initial_s,
                                    cfg.camera.retry_max_s, on_event=gate.camera_event)
        if cfg.fleet is not None:
            start_fleet(cfg, gate)
        return gate
    except BaseException:
        relay.close()
        raise


def _gallery_loader(cfg: GateConfig):
    """A signed door's light gallery reload (the same checks as at start, minus the model): for a local revocation."""
    if cfg.model.gallery_public_key is None:
        return None
    from .preflight import load_gallery

    def load(runtime):
        rec = runtime.recognizer
        return load_gallery(runtime.config, rec.fingerprint, rec.embedding_size)

    return load


def build_daemon(config_path: str | Path, **kw) -> Gate:
    """Everything ``edgeface gate --config`` runs, ready for :meth:`Gate.run` (:func:`build_gate`)."""
    path = Path(config_path)
    return build_gate(load_config(path), config_path=path, **kw)


def run_daemon(config_path: str | Path, **kw) -> int:
    return build_daemon(config_path, **kw).run()
