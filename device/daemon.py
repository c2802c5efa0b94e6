"""Assembling the gate from a config file: ``edgeface gate --config FILE``.

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
from .relay import open_relay
from .relay_check import check_relay_config

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


def build_daemon(config_path: str | Path, *, pin_factory=None, camera_factory: Callable[[], Camera] | None = None,
                 notifier=None, log_out=sys.stderr, detector=None) -> Gate:
    """Everything ``edgeface gate --config`` runs, ready for :meth:`Gate.run`. Raises ConfigError (78),
    RelayError, ModelError or GalleryError; the relay is closed (off) again when a later step fails."""
    path = Path(config_path)
    cfg = load_config(path)
    check_relay_config(cfg.relay)  # a pin that cannot exist here is a config error (78), before any GPIO
    relay = open_relay(cfg.relay, pin_factory=pin_factory)
    try:
        limit_threads(cfg.model.threads)
        runtime = load_runtime(cfg, detector=detector)

        def reload() -> Runtime:
            return load_runtime(load_config(path))

        if notifier is None:
            from .notify import Notifier

            notifier = Notifier.from_env()
        factory = camera_factory or (lambda: open_camera(cfg.camera.source, cfg.camera, realtime=True))
        from .access.decide import build_access

        access = build_access(cfg, relay, pin_factory=pin_factory)
        gate = Gate(runtime, None, relay, audit=open_audit(cfg), notifier=notifier, reload=reload, log_out=log_out,
                    access=access)
        gate.camera = WatchedCamera(factory, cfg.camera.read_timeout_s, cfg.camera.retry_initial_s,
                                    cfg.camera.retry_max_s, on_event=gate.camera_event)
        if cfg.fleet is not None:
            start_fleet(cfg, gate)
        return gate
    except BaseException:
        relay.close()
        raise


def run_daemon(config_path: str | Path, **kw) -> int:
    return build_daemon(config_path, **kw).run()
