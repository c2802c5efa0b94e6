"""Every threshold edgeface decides with, in the bundle scorer's units, resolved in one place from its calibration.

``edgeface calibrate`` measures, on people the gallery will never hold, the scores of impostor pairs and stores
their tail in the bundle (``thresholds[key].points``: (score, FAR) at every quarter decade from FAR 1e-1 down to
the smallest FAR the pairs resolve, plus the number of pairs and the highest impostor score). :class:`ScoreScale`
turns that into a function between a score and the false-accept rate of accepting it, so every decision below is
set as a FAR, whatever the model's score range (dlib's compressed cosines and MobileFaceNet's wide ones alike):

=====================  ==========================================================  ===============================
decision               rule                                                        FAR
=====================  ==========================================================  ===============================
door (1:N)             the appearance's fused score >= ``door``                    ``[policy] far``, else the
                                                                                   calibrated FAR
ambiguous              the second-best person's FAR is less than                   ``[policy] margin_decades``
                       ``margin_decades`` decades above the best's                 (default 1.0)
lockout (stricter)     during a lockout a grant needs >= ``strict``                door FAR / 10
1:1 (badge / PIN)      the claimed person's fused score >= ``verify``              ``[access] verify_far``, else
                                                                                   the door's
duplicate face         enrollment refuses a face that scores >= ``duplicate``      door FAR / 100
                       against another enrolled person
same face              one name's photos must link at >= ``same_face``; a failed   1e-2
                       face this close to an earlier one is not a new attempt
=====================  ==========================================================  ===============================

A FAR stricter than the calibration resolves (fewer than 10 of its impostor pairs above) is read from the
generalised Pareto fit of its impostor tail (:func:`edgeface.calibrate.tail_fit`; said so in the source text),
never below the score only its 10 highest impostor pairs reached: a few mislabelled pairs (one person under two
names, which real sets contain) cannot push a threshold to 1.0, and a small calibration still gives the strict
checks a meaning. Nothing here has a built-in score: a bundle
with no calibration for the model key raises :class:`~edgeface.errors.ConfigError` naming the command to run.

Expert overrides in raw score units stay possible: ``[policy] threshold`` (the door) and ``[access]
verify_threshold``. One below the calibrated threshold is refused unless ``[policy] accept_lower_threshold``
acknowledges it, and then warned about with the FAR it corresponds to (:func:`far_at`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .bundle import Bundle, Threshold, check_threshold
from .errors import ConfigError

log = logging.getLogger(__name__)

#: the FARs whose thresholds ``edgeface calibrate`` stores as points (those the data can resolve): quarter decades
POINT_FARS = tuple(float(f"{10 ** (-k / 4):.3g}") for k in range(4, 33))
#: enrollment's duplicate-face check runs this much stricter than the door (FAR 1e-6 for a door at 1e-4: on 200
#: distinct celeba-loose people, 0 refusals, while a person filed twice under two names is caught)
DUPLICATE_FACTOR = 1e-2
#: during a lockout a grant needs a FAR this much stricter than the door's (one decade: measured on the hard door
#: scene, two decades kept most employees out until the lockout ended)
STRICT_FACTOR = 1e-1
#: two faces are "the same face" (one person's photos, a repeated failed attempt) at this FAR
SAME_FACE_FAR = 1e-2
#: the default ambiguity margin: the second-best person must be this many decades of FAR less likely than the best
MARGIN_DECADES = 1.0


def not_calibrated(bundle: Bundle, key: str, what: str = "") -> ConfigError:
    return ConfigError(
        f"the bundle {bundle.root} has no calibration for model {key!r}{what}: edgeface sets every threshold as a "
        "false-accept rate measured on people who will not be enrolled, and does not guess one. Run: edgeface "
        f"calibrate --bundle {bundle.root} --model {key} --data PEOPLE_NOT_ENROLLED/ --far 1e-4")


class ScoreScale:
    """Score <-> FAR for one calibrated model key: the impostor tail, log-linearly interpolated between points."""

    def __init__(self, cal: Threshold) -> None:
        pts = sorted({(float(t), float(f)) for t, f in (cal.points or []) if f > 0})
        if not pts:
            pts = [(float(cal.value), float(cal.far))]
        self.scores = np.array([p[0] for p in pts])
        self.fars = np.array([p[1] for p in pts])
        from .calibrate import TOP_IMPOSTORS

        #: the smallest FAR the calibration resolves robustly (TOP_IMPOSTORS impostor pairs above it)
        self.floor = TOP_IMPOSTORS / cal.impostor_pairs if cal.impostor_pairs else float(self.fars.min())
        #: the score only that many impostor pairs reached (a score above it has a FAR below ``floor``)
        self.top_impostor = float(cal.top_impostor) if cal.top_impostor is not None else None
        #: the generalised Pareto fit of the tail (u, p_u, sigma, xi), for FARs below the floor
        self.tail = tuple(cal.tail) if cal.tail is not None else None
        self.calibrated = cal

    def far(self, score: float) -> float:
        """The FAR of accepting ``score`` (and everything above it): interpolated between the measured points,
        beyond the top impostor score from the tail fit (half the floor without one); below the loosest point,
        that point's FAR."""
        s = float(score)
        if not math.isfinite(s):
            return 1.0 if s < 0 else 0.0
        if self.top_impostor is not None and s > self.top_impostor:
            fitted = self._tail_far(s)
            return min(fitted, self.floor) if fitted is not None else 0.5 * self.floor
        xs, ys = self.scores, np.log10(self.fars)
        if self.top_impostor is not None and self.top_impostor > xs[-1]:
            xs, ys = np.append(xs, self.top_impostor), np.append(ys, math.log10(self.floor))
        if s >= xs[-1]:
            return float(10 ** ys[-1]) if self.top_impostor is not None else float(self.fars[-1])
        return float(10 ** np.interp(s, xs, ys))

    def score_at(self, far: float) -> tuple[float, bool]:
        """(the score accepting at most ``far``, whether it is measured). Below the floor: from the tail fit
        (False: extrapolated), else the top impostor score (or the strictest point; False)."""
        far = float(far)
        if far >= self.fars.max():
            return float(self.scores[np.argmax(self.fars)]), True
        if far < self.floor or far < self.fars.min() and self.top_impostor is None:
            fitted = self._tail_score(far)
            top = self.top_impostor if self.top_impostor is not None else float(self.scores[-1])
            if fitted is not None:
                return float(max(fitted, top)), False
            return float(np.nextafter(top, np.inf)), False
        xs, ys = self.scores, np.log10(self.fars)
        if self.top_impostor is not None and self.top_impostor > xs[-1]:
            xs, ys = np.append(xs, self.top_impostor), np.append(ys, math.log10(self.floor))
        # ys descends with xs: interpolate on the reversed arrays
        return float(np.interp(math.log10(far), ys[::-1], xs[::-1])), True

    def _tail_far(self, s: float) -> float | None:
        if self.tail is None:
            return None
        u, pu, sigma, xi = self.tail
        z = 1.0 + xi * (s - u) / sigma
        if z <= 0:
            return 0.0  # beyond the fitted distribution's end point
        return float(pu * (math.exp(-(s - u) / sigma) if abs(xi) < 1e-9 else z ** (-1.0 / xi)))

    def _tail_score(self, far: float) -> float | None:
        if self.tail is None or far <= 0:
            return None
        u, pu, sigma, xi = self.tail
        r = far / pu
        return float(u - sigma * math.log(r) if abs(xi) < 1e-9 else u + sigma / xi * (r ** (-xi) - 1.0))

    def decades(self, best: float, second: float | None) -> float:
        """How many decades of FAR the best score is less likely from an impostor than the second-best."""
        if second is None:
            return float("inf")
        return math.log10(max(self.far(second), 1e-300)) - math.log10(max(self.far(best), 1e-300))


#: a threshold at or below this accepts pairs its scorer rates no more alike than two unrelated faces (a cosine
#: of 0: orthogonal embeddings; a logistic scorer's 0.5: "as likely different as the same")
CHANCE = {"cosine": 0.0, "logistic": 0.5}
#: how far a threshold's FAR by its own calibration points may exceed the FAR it states (quarter-decade points,
#: interpolated: a calibrated value is within this)
FAR_SLACK = 2.0


def check_calibrated(meta, key: str, cal: Threshold) -> None:
    """``edgeface seal-bundle``'s check of one stored threshold (``meta`` the BundleMeta): finite and inside the
    scorer's range (the schema), above the scorer's chance level (:data:`CHANCE`), and, when the calibration
    stored its points, accepting no more than about the FAR it states. ModelError (as for any other bad field of
    ``edgeface.json``) says which and what to do."""
    from .errors import ModelError

    kind = meta.scorer.kind if meta.scorer is not None else "cosine"
    chance = CHANCE[kind]
    what = f"thresholds[{key}]"
    if not cal.value > chance:
        raise ModelError(f"{what}.value {cal.value:g} is at or below {chance:g}, where the {kind} scorer rates a "
                          "pair no more alike than two unrelated faces: it would let nearly anyone in. A calibrated "
                          f"threshold is well above that: restore it or run edgeface calibrate (not sealed)")
    if cal.points:
        actual = ScoreScale(cal).far(cal.value)
        if actual > FAR_SLACK * cal.far:
            raise ModelError(f"{what}.value {cal.value:.4f} accepts a FAR of about {actual:.2g} by its own calibration "
                              f"points, not the {cal.far:g} the bundle states: restore the value, or run edgeface "
                              "calibrate for the FAR you want (not sealed)")


def far_at(cal: Threshold, value: float) -> str:
    """What the calibration says about the FAR of ``value``, in words."""
    if value >= cal.value:
        return f"FAR at most {cal.far:g}"
    if not cal.points:
        return f"FAR above the calibrated {cal.far:g} (by how much is unknown: the calibration stored no points)"
    return f"FAR about {ScoreScale(cal).far(value):.2g}"


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    source: str
    warning: str | None = None


def choose_threshold(bundle: Bundle, key: str, configured: float | None, *, accept_lower: bool = False,
                     what: str = "policy.threshold", refuse_lower: bool = True, far: float | None = None) -> ThresholdChoice:
    """The door's 1:N threshold: ``configured`` (raw score, expert), else the score at ``far`` on the calibration,
    else the calibrated threshold. See the module docstring."""
    cal = bundle.threshold(key)
    if cal is not None:
        check_threshold(cal.value, f"the bundle's calibrated threshold for {key}", bundle.meta.score_bounds)
    if configured is not None and far is not None:
        raise ConfigError(f"{what} and policy.far both set the door's threshold: keep one (policy.far, a false-accept "
                          "rate, is the one that means the same for every model)")
    if configured is None:
        if cal is None:
            raise not_calibrated(bundle, key, f" and {what} is not set")
        if far is None or far == cal.far:
            return ThresholdChoice(float(cal.value), f"calibrated at FAR {cal.far:g}")
        value, resolved = ScoreScale(cal).score_at(far)
        if not resolved:
            raise ConfigError(f"policy.far {far:g} is stricter than the calibration of {key} can resolve "
                              f"({cal.impostor_pairs or 'few'} impostor pairs): calibrate on more people, or raise it")
        if far > cal.far and not accept_lower:
            raise ConfigError(f"policy.far {far:g} is looser than the bundle's calibrated FAR {cal.far:g}: more strangers "
                              "are let in. Set [policy] accept_lower_threshold = true to accept that")
        return ThresholdChoice(check_threshold(value, "the threshold at policy.far", bundle.meta.score_bounds),
                               f"FAR {far:g} on the calibration of {key}")
    value = check_threshold(configured, what, bundle.meta.score_bounds)
    if cal is None or value >= cal.value:
        return ThresholdChoice(value, "config" if what == "policy.threshold" else what)
    meaning = (f"{what} {value:.4f} is below the bundle's calibrated threshold {cal.value:.4f} for FAR "
               f"{cal.far:g} (model {key}): it corresponds to {far_at(cal, value)}, so more strangers are let in")
    if refuse_lower and not accept_lower:
        raise ConfigError(f"{meaning}. Set [policy] accept_lower_threshold = true to accept that, or remove "
                          f"{what} to use the calibrated one")
    warning = f"LOWER THRESHOLD THAN CALIBRATED: {meaning}"
    log.warning(warning)
    return ThresholdChoice(value, f"{what}, below the calibrated {cal.value:.4f}: {far_at(cal, value)}", warning)


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of one model key, in its scorer's units (see the module docstring)."""

    key: str
    door: ThresholdChoice
    door_far: float
    verify: ThresholdChoice
    duplicate: ThresholdChoice
    same_face: float
    strict: float
    margin_decades: float
    scale: ScoreScale

    def ambiguous(self, best: float, second: float | None) -> bool:
        """True when the second-best person is almost as likely as the best (fewer than ``margin_decades``
        decades of FAR apart): the door cannot tell them apart."""
        return self.margin_decades > 0 and self.scale.decades(best, second) < self.margin_decades

    def far(self, score: float) -> float:
        return self.scale.far(score)

    def describe(self) -> str:
        return (f"door {self.door.value:.4f} ({self.door.source}); strict {self.strict:.4f}; 1:1 "
                f"{self.verify.value:.4f}; ambiguous within {self.margin_decades:g} decade(s) of FAR")

    def to_json(self) -> dict:
        return {"door": self.door.value, "door_far": self.door_far, "door_source": self.door.source,
                "verify": self.verify.value, "duplicate": self.duplicate.value, "same_face": self.same_face,
                "strict": self.strict, "margin_decades": self.margin_decades}


def resolve(bundle: Bundle, key: str, policy=None, access=None, *, override: float | None = None,
            simulated: bool = False) -> Thresholds:
    """All thresholds of ``key`` from the bundle's calibration and the ``[policy]`` / ``[access]`` sections (None:
    defaults). ``override`` is ``--simulate --threshold`` (warned, never refused: a simulation opens no door)."""
    cal = bundle.threshold(key)
    if cal is None:
        raise not_calibrated(bundle, key)
    scale = ScoreScale(cal)
    configured = override if override is not None else getattr(policy, "threshold", None)
    door = choose_threshold(bundle, key, configured, accept_lower=bool(getattr(policy, "accept_lower_threshold", False)),
                            what="--threshold" if override is not None else "policy.threshold",
                            refuse_lower=not (simulated and override is not None),
                            far=None if override is not None else getattr(policy, "far", None))
    door_far = scale.far(door.value) if configured is not None else float(getattr(policy, "far", None) or cal.far)
    strict, _ = scale.score_at(door_far * STRICT_FACTOR)
    same_face, _ = scale.score_at(SAME_FACE_FAR)
    dup_far = door_far * DUPLICATE_FACTOR
    dup_value, dup_resolved = scale.score_at(dup_far)
    dup_value = max(dup_value, door.value)
    duplicate = ThresholdChoice(dup_value, f"FAR {dup_far:.0e}" + (
        "" if dup_resolved else (" extrapolated from the calibration's impostor tail" if scale.tail is not None else
                                 f": not resolved, the strictest the calibration resolves is {scale.floor:.0e}")))
    verify = _verify(bundle, key, access, door, scale)
    margin = getattr(policy, "margin_decades", None)
    return Thresholds(key, door, door_far, verify, duplicate, float(same_face), float(max(strict, door.value)),
                      MARGIN_DECADES if margin is None else float(margin), scale)


def _verify(bundle: Bundle, key: str, access, door: ThresholdChoice, scale: ScoreScale) -> ThresholdChoice:
    """``[access] verify_threshold`` (raw), else ``verify_far``, else a ``<key>:verify`` calibration, else the door's."""
    raw = getattr(access, "verify_threshold", None)
    if raw is not None:
        return ThresholdChoice(check_threshold(raw, "access.verify_threshold", bundle.meta.score_bounds), "config")
    far = getattr(access, "verify_far", None)
    if far is not None:
        value, resolved = scale.score_at(far)
        if not resolved:
            raise ConfigError(f"access.verify_far {far:g} is stricter than the calibration of {key} resolves: "
                              "calibrate on more people, or raise it")
        return ThresholdChoice(value, f"1:1 at FAR {far:g}")
    cal = bundle.threshold(f"{key}:verify")
    if cal is not None:
        return ThresholdChoice(float(cal.value), f"1:1 calibrated at FAR {cal.far:g}")
    return ThresholdChoice(door.value, "the door's threshold (no 1:1 calibration in the bundle)")
