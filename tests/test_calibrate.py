"""Threshold calibration: the stored value accepts (score >= value, the device's rule) exactly the scores
metrics counts as accepted (score > t), and the reported rates are measured at that value."""

from __future__ import annotations

import numpy as np
import pytest

from edgeface.calibrate import calibrate, one_shot_at_threshold
from edgeface.errors import EdgefaceError
from edgeface.metrics import pair_scores, threshold_at_far


def clustered(n_ids=30, per=4, d=16, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, d))
    emb = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((n_ids * per, d))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), np.repeat(np.arange(n_ids), per)


def test_threshold_meets_the_far_under_the_devices_rule():
    emb, labels = clustered()
    cal = calibrate(emb, labels, far=1e-2)
    genuine, impostor = pair_scores(emb, labels)
    t = threshold_at_far(impostor, 1e-2)
    assert cal.threshold > t and np.nextafter(t, -np.inf) < cal.threshold
    assert np.array_equal(impostor >= cal.threshold, impostor > t)
    assert cal.achieved_far == pytest.approx(np.mean(impostor >= cal.threshold)) and cal.achieved_far <= 1e-2
    assert cal.tar == pytest.approx(np.mean(genuine >= cal.threshold))
    assert cal.impostor_pairs == len(impostor) and cal.genuine_pairs == 30 * 6


def test_one_shot_rates_follow_the_threshold():
    emb, labels = clustered(seed=1)
    low = one_shot_at_threshold(emb, labels, -1.0)
    high = one_shot_at_threshold(emb, labels, 1.01)
    assert low["fnir"] == pytest.approx(1 - low["rank1"]) and low["fpir"] == 1.0
    assert high["fnir"] == 1.0 and high["fpir"] == 0.0


def test_too_few_pairs_or_identities_is_refused():
    emb, labels = clustered(n_ids=5, per=2)
    with pytest.raises(EdgefaceError, match="cannot resolve FAR 1e-3"):
        calibrate(emb, labels, far=1e-3)
    with pytest.raises(EdgefaceError, match="at least 2 identities"):
        calibrate(emb[:2], labels[:2], far=0.1)
