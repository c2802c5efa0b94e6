"""Which match threshold the door uses, and what a threshold means in false accepts.

:func:`choose_threshold` is the one rule, used by the gate (``device/pipeline.py``), ``validate-config`` and
the simulation:

* every threshold (config, ``--threshold``, bundle) must be a finite cosine in [-1, 1]
  (:func:`edgeface.bundle.check_threshold`), else ConfigError;
* no configured threshold: the bundle's calibrated one for the model key; neither: ConfigError (the gate
  never guesses);
* a configured threshold *below* the calibrated one accepts more strangers than the FAR the bundle was
  calibrated for: it is refused unless ``[policy] accept_lower_threshold = true`` acknowledges it, and even
  then a loud warning names the FAR it corresponds to (from the calibration's stored (threshold, FAR)
  points, :func:`far_at`). ``--simulate --threshold`` never opens a real door: it warns only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .bundle import Bundle, Threshold, check_threshold
from .errors import ConfigError

log = logging.getLogger(__name__)

#: the FARs whose thresholds ``edgeface calibrate`` stores as points (those the data can resolve)
POINT_FARS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)


def far_at(cal: Threshold, value: float) -> str:
    """What the calibration says about the FAR of ``value``, in words."""
    if value >= cal.value:
        return f"FAR at most {cal.far:g}"
    points = sorted(cal.points or [])
    if not points:
        return f"FAR above the calibrated {cal.far:g} (by how much is unknown: the calibration stored no points)"
    above = [f for t, f in points if t >= value]  # thresholds at or above value: their FAR is a lower bound
    below = [f for t, f in points if t <= value]  # at or below: an upper bound
    low = max(above) if above else cal.far
    if below:
        high = min(below)
        return f"FAR about {low:g}" if high == low else f"FAR between {low:g} and {high:g}"
    return f"FAR above {low:g}"


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    source: str
    warning: str | None = None


def choose_threshold(bundle: Bundle, key: str, configured: float | None, *, accept_lower: bool = False,
                     what: str = "policy.threshold", refuse_lower: bool = True) -> ThresholdChoice:
    cal = bundle.threshold(key)
    if cal is not None:
        check_threshold(cal.value, f"the bundle's calibrated threshold for {key}")
    if configured is None:
        if cal is None:
            raise ConfigError(
                f"no threshold: the bundle {bundle.root} has no calibrated threshold for model {key!r} and "
                f"{what} is not set. Calibrate the bundle (edgeface calibrate) or set policy.threshold; the gate "
                "does not guess a threshold that could open the door")
        return ThresholdChoice(float(cal.value), f"calibrated at FAR {cal.far:g}")
    value = check_threshold(configured, what)
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
