"""The gate's pre-flight: everything that must hold before the door loop may start, in one function.

:func:`preflight` is what ``edgeface gate --config`` (through :func:`edgeface.device.pipeline.load_runtime`
and :func:`edgeface.device.daemon.build_daemon`) and ``edgeface validate-config`` run, so a config that
validates is one the gate accepts. It checks, without energising anything:

* the bundle loads: ``edgeface.json`` integrity sha256, every model file's size and sha256, the model key;
* the model is not degraded (its int8 export failed the parity gate) unless ``[model] accept_degraded``;
* a threshold exists and is valid (:func:`edgeface.thresholds.choose_threshold`);
* the gallery loads with the model's fingerprint (and, with ``[model] gallery_public_key``, is signed with that
  key and not older than the last accepted version);
* the detector's model file exists (YuNet, when ``detector.model_path`` is set);
* the relay backend and pin are valid on this platform (:mod:`edgeface.device.relay_check`).

Every problem is a :class:`PreflightError`, a ``ConfigError``: the gate exits 78 (EX_CONFIG), so systemd
does not restart it in a loop on a file that will not change by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeface.bundle import Bundle
from edgeface.bundle_status import degraded_flags
from edgeface.config import GateConfig
from edgeface.errors import ConfigError, EdgefaceError
from edgeface.gallery import Gallery
from edgeface.thresholds import ThresholdChoice, choose_threshold


class PreflightError(ConfigError):
    """A config, bundle, gallery or relay problem found before the gate starts (exit 78)."""


@dataclass
class Preflight:
    config: GateConfig
    bundle: Bundle
    key: str
    threshold: ThresholdChoice
    gallery: Gallery
    relay: str | None = None
    warnings: list[str] = field(default_factory=list)


def preflight(cfg: GateConfig, *, threshold: float | None = None, check_relay: bool = True,
              simulated: bool = False) -> Preflight:
    """Run every start-up check of ``cfg``; ``threshold`` overrides the config's (``--simulate``)."""
    try:
        return _preflight(cfg, threshold, check_relay, simulated)
    except PreflightError:
        raise
    except EdgefaceError as exc:
        raise PreflightError(str(exc)) from exc


def load_gallery(cfg: GateConfig, fingerprint: str) -> Gallery:
    """The gallery of ``cfg``; with ``[model] gallery_public_key``, only a signed one that is not older than the
    last accepted (:func:`edgeface.device.fleet.signing.load_signed_gallery`)."""
    if cfg.model.gallery_public_key is None:
        return Gallery.load(cfg.model.gallery, expected_fingerprint=fingerprint)
    try:
        from .fleet.signing import load_signed_gallery
    except ImportError as exc:
        raise PreflightError(f"[model] gallery_public_key needs the fleet extra (pip install 'edgeface[fleet]'): {exc}") from None
    return load_signed_gallery(cfg.model.gallery, cfg.model.gallery_public_key, fingerprint)


def _preflight(cfg: GateConfig, threshold: float | None, check_relay: bool, simulated: bool) -> Preflight:
    warnings: list[str] = []
    bundle = Bundle.load(cfg.model.bundle)
    key = cfg.model.key or bundle.default_key()
    bundle.model(key)  # a clear ModelError when the key is not in the bundle
    flags = degraded_flags(bundle, key)
    if flags and not cfg.model.accept_degraded:
        raise PreflightError(f"model {key} of {bundle.root} is DEGRADED (its export failed the int8 parity gate: "
                             f"{'; '.join(flags)}). Use another model key, or set [model] accept_degraded = true "
                             "to run it anyway")
    if flags:
        warnings.append(f"running DEGRADED model {key} (accepted by [model] accept_degraded): {'; '.join(flags)}")
    configured = threshold if threshold is not None else cfg.policy.threshold
    choice = choose_threshold(bundle, key, configured, accept_lower=cfg.policy.accept_lower_threshold,
                              what="--threshold" if threshold is not None else "policy.threshold",
                              refuse_lower=not (simulated and threshold is not None))
    if choice.warning:
        warnings.append(choice.warning)
    gallery = load_gallery(cfg, bundle.fingerprint(key))
    if len(gallery) == 0:
        warnings.append(f"gallery {cfg.model.gallery} enrolls nobody: the door will not open for anyone")
    det = cfg.detector
    if det.kind == "yunet" and det.model_path is not None and not det.model_path.is_file():
        raise PreflightError(f"detector.model_path {det.model_path}: no such file")
    relay = None
    if check_relay:
        from .relay_check import check_relay_config

        relay = check_relay_config(cfg.relay)
    return Preflight(cfg, bundle, key, choice, gallery, relay, warnings)
