"""The gate's pre-flight: everything that must hold before the door loop may start, in one function.

:func:`preflight` is what ``edgeface gate --config`` (through :func:`edgeface.device.pipeline.load_runtime`
and :func:`edgeface.device.daemon.build_daemon`) and ``edgeface validate-config`` run, so a config that
validates is one the gate accepts. It checks, without energising anything:

* the bundle loads: ``edgeface.json`` integrity sha256, every model file's size and sha256, the model key;
* the model is not degraded (its int8 export failed the parity gate) unless ``[model] accept_degraded``;
* the bundle is calibrated for the model key and every threshold resolves (:func:`edgeface.thresholds.resolve`);
* the gallery loads with the model's fingerprint (and, with ``[model] gallery_public_key``, is signed with that
  key for this door's site and not older than the last accepted version; the door's local revocations,
  ``GALLERY.revoked``, are subtracted). A ``[fleet]`` door whose local signed list is missing or unusable starts
  with nobody enrolled (a warning says why) so that its fleet link can install the site's list: it grants nobody
  until then;
* the detector's model file exists (YuNet, when ``detector.model_path`` is set);
* every GPIO line (the relay, the ``[access]`` door inputs, feedback outputs and Wiegand reader) exists, is used
  once, and the GPIO library it needs loads on this machine (:func:`edgeface.device.relay_check.check_gpio`).

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
from edgeface.thresholds import Thresholds, resolve


class PreflightError(ConfigError):
    """A config, bundle, gallery or relay problem found before the gate starts (exit 78)."""


@dataclass
class Preflight:
    config: GateConfig
    bundle: Bundle
    key: str
    thresholds: Thresholds
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


def load_gallery(cfg: GateConfig, fingerprint: str, embedding_size: int | None = None,
                 warnings: list[str] | None = None) -> Gallery:
    """The gallery of ``cfg``; with ``[model] gallery_public_key``, only one signed for this door's site that is
    not older than the last accepted (:func:`edgeface.device.fleet.signing.load_signed`), minus the door's local
    revocations (:mod:`edgeface.revocations`). On a ``[fleet]`` door an unusable local list gives an empty
    gallery (version 0: any signed list replaces it) and a warning in ``warnings``."""
    if cfg.model.gallery_public_key is None:
        return Gallery.load(cfg.model.gallery, expected_fingerprint=fingerprint)
    try:
        from .fleet.freshness import signed_scope
        from .fleet.keys import load_public_key
        from .fleet.signing import load_signed
    except ImportError as exc:
        raise PreflightError(f"[model] gallery_public_key needs the fleet extra (pip install 'edgeface[fleet]'): {exc}") from None
    from edgeface.gallery import GalleryError
    from edgeface.revocations import apply, read_revocations

    public_key = load_public_key(cfg.model.gallery_public_key)  # a missing or bad key is a config error (78)
    site, door = signed_scope(cfg)
    try:
        gallery, _ = load_signed(cfg.model.gallery, public_key, fingerprint, site=site, door=door)
        return apply(gallery, read_revocations(cfg.model.gallery))
    except GalleryError as exc:
        if cfg.fleet is None or embedding_size is None:
            raise
        if warnings is not None:
            warnings.append(f"the local signed gallery cannot be used ({exc}): starting with NOBODY enrolled until "
                            f"the fleet link installs {site}'s signed list")
        return Gallery.new(fingerprint, embedding_size)


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
    thresholds = resolve(bundle, key, cfg.policy, cfg.access, override=threshold, simulated=simulated)
    if thresholds.door.warning:
        warnings.append(thresholds.door.warning)
    gallery = load_gallery(cfg, bundle.fingerprint(key), bundle.meta.embedding_size, warnings)
    if len(gallery) == 0:
        warnings.append(f"gallery {cfg.model.gallery} enrolls nobody: the door will not open for anyone")
    det = cfg.detector
    if det.kind == "yunet" and det.model_path is not None and not det.model_path.is_file():
        raise PreflightError(f"detector.model_path {det.model_path}: no such file")
    relay = None
    if check_relay:
        from .relay_check import check_gpio

        relay = check_gpio(cfg, warnings=warnings)
    return Preflight(cfg, bundle, key, thresholds, gallery, relay, warnings)
