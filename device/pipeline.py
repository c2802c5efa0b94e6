"""What one gate config resolves to, as one unit a reload replaces: :class:`Runtime` and :func:`load_runtime`.

The recognition itself is the core's one model object (:class:`edgeface.recognizer.Recognizer`): each frame goes
through :meth:`Recognizer.observe` (detect on a downscaled copy, the largest face, the bundle's landmarks and crop,
the quality gates, the live embedding) and the decision policy (:mod:`edgeface.device.policy`) fuses a track's
frames and matches the fused face with the runtime's matcher, against thresholds read from the bundle's calibration
(:mod:`edgeface.thresholds`). Nothing here assembles a detector, an aligner, an embedder or a scorer.

:func:`load_runtime` builds everything a config needs and raises on any problem before anything is swapped in,
which is what makes a SIGHUP reload atomic; :meth:`Runtime.with_gallery` is the one way a new gallery goes live
(the file watcher's reload and the fleet's install both end there), so its matcher, access rules and policy
numbers always come from the same model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from edgeface.bundle import Bundle
from edgeface.config import GateConfig
from edgeface.gallery import Gallery
from edgeface.recognizer import Observation, Recognizer

from .policy import PolicyParams

log = logging.getLogger(__name__)

#: what one processed frame gave (the gate, the run summary and the access hook read it)
FrameResult = Observation


@dataclass
class Runtime:
    """Everything a config resolves to that a reload replaces as one unit."""

    config: GateConfig
    recognizer: Recognizer  # the bundle, the model key and everything that turns a frame into scores
    gallery: Gallery
    matcher: object  # edgeface.match.Matcher
    params: PolicyParams  # the decision rules, with the thresholds resolved for this config
    access: object | None = None  # edgeface.device.access.rules.AccessRules: modes, credentials, schedules

    @property
    def bundle(self) -> Bundle:
        return self.recognizer.bundle

    @property
    def key(self) -> str:
        return self.recognizer.key

    @property
    def thresholds(self):  # edgeface.thresholds.Thresholds
        return self.params.thresholds

    @property
    def threshold(self) -> float:
        return self.thresholds.door.value

    def with_gallery(self, gallery: Gallery) -> "Runtime":
        """This runtime with another gallery of the same model: its matcher and access rules built here (raises
        on a gallery of another model or a malformed access record, leaving this runtime as it is)."""
        from .access.rules import load_access

        matcher = self.recognizer.matcher(gallery)
        access = load_access(self.config, gallery, self.recognizer.scorer, self.thresholds)
        return replace(self, gallery=gallery, matcher=matcher, access=access)

    def describe(self) -> str:
        return (f"model {self.key} ({self.recognizer.fingerprint[:12]}), {len(self.gallery)} enrolled, "
                f"{self.thresholds.describe()}, decided on k={self.params.k} usable frames, fused over the last "
                f"n={self.params.n}")


def load_runtime(cfg: GateConfig, *, detector=None, threshold: float | None = None,
                 simulated: bool = False) -> Runtime:
    """Load the bundle, recognizer, thresholds and gallery of ``cfg`` after :func:`edgeface.device.preflight.preflight`
    (integrity, sha256s, degraded model, calibration, gallery fingerprint). Raises (PreflightError, a
    ConfigError; DetectorError) without side effects; the caller keeps its previous runtime on failure.
    ``threshold`` overrides the config's (``--simulate --threshold``); ``detector`` is an already built frame
    detector (tests)."""
    from .preflight import preflight

    limit_threads(cfg.model.threads)  # OpenCV too, also on a reload that changed model.threads
    checked = preflight(cfg, threshold=threshold, check_relay=False, simulated=simulated)
    for warning in checked.warnings:
        log.warning("%s", warning)
    recognizer = Recognizer.from_config(cfg, frame_detector=detector, bundle=checked.bundle)
    recognizer.detector  # the door's detector is built now: a missing detector model fails at start, not on a face
    params = PolicyParams.from_config(cfg.policy, checked.thresholds)
    bare = Runtime(cfg, recognizer, checked.gallery, None, params)  # the model key resolved as preflight did
    return bare.with_gallery(checked.gallery)  # the one way a gallery goes live: its matcher and access rules


def limit_threads(threads: int) -> None:
    """OpenCV's own thread pool (the YuNet detector) to ``model.threads``: a gate on a small board must not
    oversubscribe its cores, and a measured one-thread latency must really be one thread."""
    import cv2

    cv2.setNumThreads(int(threads))
