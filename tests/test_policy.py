"""The decision policy on a fake clock: k of n, margin, cooldown, appearances, lockout, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from edgeface.device.policy import MAX_TRACKED, Policy, PolicyParams

DT = 0.1  # 10 processed frames per second


def params(**kw) -> PolicyParams:
    base = dict(threshold=0.5, k=3, n=5, min_margin=0.05, cooldown_s=10.0, lockout_unknown=3,
                lockout_window_s=30.0, lockout_s=60.0, face_gap_s=1.0)
    base.update(kw)
    return PolicyParams(**base)


class Feed:
    """Drives a policy with frames at DT spacing on a fake clock and collects its decisions."""

    def __init__(self, policy: Policy, t: float = 0.0):
        self.policy, self.t, self.decisions = policy, t, []

    def frame(self, person=None, score=None, margin=0.3, face=True):
        got = self.policy.observe(self.t, face, person, person and f"name-{person}", score, margin)
        self.decisions.extend(got)
        self.t += DT
        return got

    def match(self, person, score=0.8, margin=0.3, times=1):
        return [d for _ in range(times) for d in self.frame(person, score, margin)]

    def stranger(self, times=1, score=0.2):
        return [d for _ in range(times) for d in self.frame("someone", score, 0.3)]

    def gap(self, seconds):
        out = []
        for _ in range(round(seconds / DT)):
            out += self.frame(face=False)
        return out

    def kinds(self):
        return [d.kind for d in self.decisions]


def test_three_of_five_grants_once_on_the_third_match():
    f = Feed(Policy(params()))
    assert f.match("ada", times=2) == []
    got = f.match("ada")
    assert [d.kind for d in got] == ["granted"]
    assert got[0].person_id == "ada" and got[0].person == "name-ada" and got[0].score == pytest.approx(0.8)
    # she stays in view: no second unlock in the same appearance
    assert f.match("ada", times=20) == []


def test_k_of_n_tolerates_misses_but_not_too_many():
    f = Feed(Policy(params()))
    f.match("ada"); f.stranger(); f.match("ada"); f.stranger()
    assert f.kinds() == []
    assert [d.kind for d in f.match("ada")] == ["granted"]  # 3 of the last 5

    g = Feed(Policy(params()))
    g.match("ada"); g.stranger(3)
    got = g.match("ada")  # window full with only 2 matches: a failed attempt, not a grant
    assert [d.kind for d in got] == ["unknown"]
    assert "granted" not in g.kinds()


def test_one_frame_above_threshold_never_opens():
    f = Feed(Policy(params(k=3, n=5)))
    for _ in range(10):
        f.match("ada", times=1)
        f.stranger(2)
        f.gap(1.5)
    assert "granted" not in f.kinds()


def test_below_threshold_and_low_margin_do_not_count():
    f = Feed(Policy(params()))
    f.match("ada", score=0.49, times=5)
    assert f.kinds() == ["unknown"]
    g = Feed(Policy(params()))
    got = g.match("ada", score=0.9, margin=0.01, times=5)
    assert [(d.kind, d.detail) for d in got] == [("denied", "ambiguous")]
    assert "granted" not in g.kinds()


def test_two_people_alternating_do_not_add_up():
    f = Feed(Policy(params()))
    for _ in range(2):
        f.match("ada"); f.match("bob")
    f.match("ada")  # ada 3 of the last 5: granted, bob only 2
    assert [(d.kind, d.person_id) for d in f.decisions] == [("granted", "ada")]


def test_cooldown_denies_the_same_person_then_expires():
    f = Feed(Policy(params(cooldown_s=10.0)))
    f.match("ada", times=3)
    f.gap(2.0)  # appearance ends
    got = f.match("ada", times=3)
    assert [(d.kind, d.detail) for d in got] == [("denied", "cooldown")]
    f.match("bob", times=3)  # cooldown is per person
    assert ("granted", "bob") in [(d.kind, d.person_id) for d in f.decisions]
    f.gap(9.0)
    got = f.match("ada", times=3)
    assert [d.kind for d in got] == ["granted"]


def test_a_gap_ends_the_appearance_and_resets_the_window():
    f = Feed(Policy(params(face_gap_s=1.0)))
    f.match("ada", times=2)
    got = f.gap(1.5)
    assert [d.kind for d in got] == ["no_decision"]  # the miss is logged
    assert f.match("ada", times=2) == []  # two earlier matches no longer count
    assert [d.kind for d in f.match("ada")] == ["granted"]


def test_short_gaps_do_not_end_an_appearance():
    f = Feed(Policy(params(face_gap_s=1.0)))
    f.match("ada", times=2)
    f.gap(0.5)
    assert [d.kind for d in f.match("ada")] == ["granted"]


def test_lockout_after_repeated_unknowns_then_expires():
    f = Feed(Policy(params(lockout_unknown=3, lockout_window_s=30.0, lockout_s=60.0)))
    f.stranger(15)
    assert f.kinds() == ["unknown", "unknown", "unknown", "lockout"]
    assert f.policy.locked_out
    got = f.match("ada", times=3)
    assert [(d.kind, d.detail) for d in got] == [("denied", "lockout")]
    f.gap(61.0)
    assert not f.policy.locked_out
    got = f.match("ada", times=3)
    assert [d.kind for d in got] == ["granted"]


def test_failures_outside_the_window_do_not_lock_out():
    f = Feed(Policy(params(lockout_unknown=3, lockout_window_s=5.0)))
    for _ in range(6):
        f.stranger(5)
        f.gap(5.0)
    assert "lockout" not in f.kinds()
    assert f.kinds().count("unknown") == 6


def test_flood_of_unknown_faces_keeps_memory_bounded():
    p = params(lockout_unknown=10, cooldown_s=10.0)
    policy = Policy(p)
    f = Feed(policy)
    sizes = []
    for i in range(20000):
        f.stranger(score=0.1)
        if i % 7 == 0:
            f.match(f"p{i}")  # a flood of different (enrolled) ids too
        sizes.append(policy.tracked())
    assert "lockout" in f.kinds()
    bound = p.n + p.lockout_unknown + 2 * MAX_TRACKED
    assert max(sizes) <= bound
    # in practice far below the cap: cooldowns expire, the window is n, failures are at most lockout_unknown
    assert max(sizes[-1000:]) <= p.n + p.lockout_unknown + 1 + int(p.cooldown_s / DT)


def test_end_of_input_logs_an_undecided_appearance():
    f = Feed(Policy(params()))
    f.match("ada")
    got = f.policy.end(f.t)
    assert [d.kind for d in got] == ["no_decision"]
    assert f.policy.end(f.t) == []


def test_params_reject_k_above_n():
    with pytest.raises(ValueError):
        PolicyParams(threshold=0.5, k=6, n=5)


def test_quality_rejected_faces_keep_the_appearance_and_are_reported_not_counted():
    f = Feed(Policy(params(face_gap_s=1.0)))
    for _ in range(8):
        f.decisions += f.policy.observe(f.t, True, rejected="blurred")
        f.t += DT
    assert f.kinds() == []  # refused faces never count, for anyone
    f.match("ada", times=2)
    for _ in range(3):  # she turns away: refused frames, but the appearance (and her two matches) go on
        f.decisions += f.policy.observe(f.t, True, rejected="not_frontal")
        f.t += DT
    assert [d.kind for d in f.match("ada")] == ["granted"]

    g = Feed(Policy(params(face_gap_s=1.0)))
    for reason in ["too_small"] * 5 + ["blurred"] * 2:
        g.decisions += g.policy.observe(g.t, True, rejected=reason)
        g.t += DT
    got = g.gap(1.5)
    assert [d.kind for d in got] == ["no_decision"]
    assert "too_small x5" in got[0].detail and "blurred x2" in got[0].detail


def _unit(rng, d=128):
    v = rng.standard_normal(d).astype(np.float32)
    return v / np.linalg.norm(v)


def test_a_stranger_waiting_is_one_attempt_new_faces_are_many():
    rng = np.random.default_rng(0)
    p = params(lockout_unknown=3)
    waiting = Policy(p)
    face = _unit(rng)
    t = 0.0
    decisions = []
    for _ in range(100):  # 10 s of the same unknown face, slightly different each frame
        noisy = face + 0.05 * _unit(rng)
        decisions += waiting.observe(t, True, "someone", "x", 0.2, 0.3, embedding=noisy / np.linalg.norm(noisy))
        t += DT
    kinds = [d.kind for d in decisions]
    assert kinds.count("unknown") == 20 and "lockout" not in kinds
    assert sum("not counted" in (d.detail or "") for d in decisions) == 19

    swapping = Policy(p)
    decisions = []
    for i in range(15):  # a new face every n frames: a photo swapped in front of the camera
        if i % p.n == 0:
            face = _unit(rng)
        decisions += swapping.observe(i * DT, True, "someone", "x", 0.2, 0.3, embedding=face)
    assert [d.kind for d in decisions] == ["unknown", "unknown", "unknown", "lockout"]
