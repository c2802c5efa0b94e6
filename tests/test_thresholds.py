"""The one threshold module: every threshold a FAR of the calibration, in the scorer's units, never a guess."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scorekit import World

from edgeface.bundle import Bundle, BundleMeta, ModelFile, Threshold
from edgeface.calibrate import TOP_IMPOSTORS, far_points, tail_fit, top_impostor
from edgeface.config import AccessConfig, PolicyConfig
from edgeface.errors import ConfigError
from edgeface.thresholds import ScoreScale, resolve


def _record(impostor: np.ndarray, far: float = 1e-4) -> Threshold:
    from edgeface.metrics import threshold_at_far

    value = float(np.nextafter(threshold_at_far(impostor, far), np.inf))
    return Threshold(value=value, far=far, points=far_points(impostor), impostor_pairs=len(impostor),
                     top_impostor=top_impostor(impostor), tail=tail_fit(impostor))


def _bundle(cal: Threshold | None) -> Bundle:
    mf = ModelFile(file="m.onnx", format="onnx", precision="fp32", sha256="0" * 64, size=1)
    return Bundle(None, BundleMeta(source="imported", embedding_size=8, models={"k": mf},
                                   thresholds={} if cal is None else {"k": cal}))


def test_the_tail_fit_reaches_fars_the_pairs_cannot_resolve():
    """Fitted on 200k impostor scores, the tail gives the threshold of FAR 1e-6 and 1e-7 close to the truth of a
    27x larger sample (a resolution the 200k pairs do not have)."""
    rng = np.random.default_rng(0)
    big = np.tanh(rng.normal(1.2, 0.35, 5_400_000))  # a cosine-like, bounded impostor distribution
    small = rng.choice(big, 200_000, replace=False)
    scale = ScoreScale(_record(small))
    truth = np.sort(big)[::-1]
    for far in (1e-5, 1e-6):
        fitted, measured = scale.score_at(far)
        assert not measured  # below what 200k pairs resolve with TOP_IMPOSTORS above it
        exact = float(truth[int(far * len(truth))])
        assert abs(fitted - exact) < 0.01, (far, fitted, exact)
        assert scale.far(fitted) == pytest.approx(far, rel=0.05)  # far() and score_at() are inverses there
    # inside the measured range the points are used as measured
    value, measured = scale.score_at(1e-3)
    assert measured and abs(value - float(np.sort(small)[::-1][200])) < 1e-3


def test_a_few_mislabelled_pairs_cannot_push_the_strict_thresholds_to_one():
    rng = np.random.default_rng(1)
    imp = np.concatenate([np.tanh(rng.normal(1.2, 0.35, 300_000)), [1.0, 1.0, 0.9999, 0.999]])  # one person, two ids
    cal = _record(imp)
    assert cal.top_impostor < 0.999 and len(imp) * sorted(f for _, f in cal.points)[0] >= TOP_IMPOSTORS
    th = resolve(_bundle(cal), "k", PolicyConfig())
    assert th.door.value < th.strict < th.duplicate.value < 0.999


def test_every_threshold_is_a_far_and_they_are_ordered():
    world = World()
    th = world.thresholds()
    assert th.same_face < th.door.value < th.strict <= th.duplicate.value
    s = th.scale
    assert s.far(th.door.value) == pytest.approx(th.door_far, rel=0.35)
    assert s.far(th.strict) == pytest.approx(th.door_far / 10, rel=0.35)
    assert s.far(th.same_face) == pytest.approx(1e-2, rel=0.35)
    assert "FAR 1e-05" in th.duplicate.source  # door 1e-3 / 100
    # a stricter door is read from the same calibration; a looser one must be acknowledged
    stricter = world.thresholds(far=1e-4)
    assert stricter.door.value > th.door.value and "FAR 0.0001" in stricter.door.source
    with pytest.raises(ConfigError, match="looser than the bundle's calibrated FAR"):
        world.thresholds(far=1e-2)
    assert world.thresholds(far=1e-2, accept_lower_threshold=True).door.value < th.door.value
    with pytest.raises(ConfigError, match="keep one"):
        world.thresholds(far=1e-4, threshold=0.9)


def test_ambiguity_is_counted_in_decades_of_far():
    th = World().thresholds()
    s = th.scale
    best = s.score_at(1e-4)[0]
    assert th.ambiguous(best, best)  # two people equally likely
    assert th.ambiguous(best, s.score_at(5e-4)[0])  # within one decade
    assert not th.ambiguous(best, s.score_at(1e-2)[0])  # two decades apart
    assert not th.ambiguous(best, None)  # nobody else enrolled
    assert not World().thresholds(margin_decades=0.0).ambiguous(best, best)  # the rule switched off


def test_1to1_thresholds_come_from_the_same_calibration():
    world = World()
    assert world.thresholds().verify.value == world.thresholds().door.value  # no 1:1 calibration: the door's
    v = world.thresholds(AccessConfig(verify_far=1e-4))
    assert v.verify.source == "1:1 at FAR 0.0001" and math.isclose(v.scale.far(v.verify.value), 1e-4, rel_tol=0.35)
    assert world.thresholds(AccessConfig(verify_threshold=0.97)).verify.value == 0.97


def test_an_uncalibrated_bundle_is_refused_with_the_command_to_run():
    with pytest.raises(ConfigError, match="edgeface calibrate --bundle"):
        resolve(_bundle(None), "k", PolicyConfig())


def test_a_calibration_without_a_tail_still_bounds_what_it_cannot_resolve():
    rng = np.random.default_rng(2)
    imp = np.tanh(rng.normal(1.2, 0.35, 20_000))  # 20 pairs above FAR 1e-3: too few for a tail fit
    cal = _record(imp, far=1e-3)
    assert cal.tail is None
    value, measured = ScoreScale(cal).score_at(1e-6)
    assert not measured and value >= cal.top_impostor
    th = resolve(_bundle(cal), "k", PolicyConfig())
    assert "not resolved" in th.duplicate.source
