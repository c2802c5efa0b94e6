"""The decision policy on a fake clock: tracks, fused evidence, calibrated thresholds, ambiguity, cooldown,
attempts and the face-scoped lockout, bounded memory.

The faces are synthetic unit vectors (:mod:`scorekit`: each person a direction, each frame a noisy view), but every
number the policy compares them with comes from a real calibration of that world, through
:func:`edgeface.thresholds.resolve`, exactly as the gate gets its thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from scorekit import FRAME, PHOTO, World

from edgeface.device.policy import MAX_TRACKED, Policy, PolicyParams, Sighting
from edgeface.match import Matcher

DT = 0.1  # 10 processed frames per second


def make_policy(world, gallery, **kw):
    policy_kw = {k: kw.pop(k) for k in list(kw) if k in ("far", "margin_decades")}
    base = dict(k=3, n=5, cooldown_s=10.0, lockout_unknown=3, lockout_window_s=30.0, lockout_s=60.0, face_gap_s=1.0)
    base.update(kw)
    params = PolicyParams(thresholds=world.thresholds(**policy_kw), **base)
    return Policy(params, Matcher(gallery) if gallery is not None else None)


class Feed:
    """Drives a policy with frames at DT spacing on a fake clock and collects its decisions."""

    def __init__(self, policy: Policy, world: World, t: float = 0.0):
        self.policy, self.world, self.t, self.decisions = policy, world, t, []

    def frames(self, name, times=1, noise=FRAME, box=(100, 100, 120, 120), embedding=None):
        out = []
        for _ in range(times):
            e = embedding if embedding is not None else self.world.frame(name, noise)
            out += self.policy.observe(self.t, Sighting(box, e, 1.0))
            self.t += DT
        self.decisions += out
        return out

    def rejected(self, reason, times=1):
        out = []
        for _ in range(times):
            out += self.policy.observe(self.t, Sighting((100, 100, 120, 120), rejected=reason))
            self.t += DT
        self.decisions += out
        return out

    def gap(self, seconds):
        out = []
        for _ in range(round(seconds / DT)):
            out += self.policy.observe(self.t, None)
            self.t += DT
        self.decisions += out
        return out

    def kinds(self):
        return [d.kind for d in self.decisions]


@pytest.fixture
def world():
    return World()  # each test its own world: the same seed, so the same faces in every run


def test_a_person_is_granted_on_the_fused_face_once_per_appearance(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob", "cyd")), world)
    assert f.frames("ada", times=2) == []  # fewer than k usable frames decide nothing
    got = f.frames("ada")
    assert [(d.kind, d.person_id, d.rule) for d in got] == [("granted", "ada", "door")]
    assert got[0].score >= world.thresholds().door.value
    assert f.frames("ada", times=30) == []  # she stays in view: no second unlock in the same appearance


def test_noisy_frames_each_below_the_threshold_still_add_up_to_a_grant(world):
    """The point of deciding on the appearance: no single frame is similar enough, their fused face is."""
    gallery = world.gallery("ada", "bob")
    th = world.thresholds()
    m = Matcher(gallery)
    seen = world._noisy(world.person("ada"), PHOTO)  # ada as she looks today: another photo, still a match...
    while not th.door.value + 0.03 < float(seen @ world.photo("ada")) < th.door.value + 0.06:
        seen = world._noisy(world.person("ada"), PHOTO)
    frames = []
    while len(frames) < 5:  # ...seen through noisy frames that each fall below the threshold
        e = world._noisy(seen, 0.4)
        if m.match(e).score < th.door.value and all(float(e @ f) >= th.same_face for f in frames):
            frames.append(e)
    fused = np.mean(frames, axis=0)
    assert m.match(fused / np.linalg.norm(fused)).score >= th.door.value
    f = Feed(make_policy(world, gallery), world)
    out = [d for e in frames for d in f.frames("ada", embedding=e)]
    assert [(d.kind, d.person_id) for d in out] == [("granted", "ada")]
    # deciding frame by frame (n = k = 1) on the same frames grants nobody
    g = Feed(make_policy(world, gallery, k=1, n=1), world)
    assert "granted" not in [d.kind for e in frames for d in g.frames("ada", embedding=e)]


def test_a_stranger_is_one_failed_attempt_named_with_who_came_closest(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob")), world)
    f.frames("stranger-1", times=40)
    f.gap(1.5)
    assert f.kinds() == ["unknown"]
    d = f.decisions[0]
    assert d.rule == "threshold" and d.score < world.thresholds().door.value
    assert {c["person_id"] for c in d.candidates} == {"ada", "bob"}


def test_two_enrolled_look_alikes_are_ambiguous_and_one_person_never_is(world):
    same = world.photo("twin")
    twins = world.gallery("twin-a", "twin-b", photos={"twin-a": same, "twin-b": world._noisy(same, 0.05)})
    f = Feed(make_policy(world, twins), world)
    f.frames("twin", times=5)
    assert [(d.kind, d.rule) for d in f.decisions] == [("denied", "ambiguous")]
    # the same face with only one of them enrolled: a competitor is gone, the margin rule has nothing to say
    solo = Feed(make_policy(world, world.gallery("twin-a", photos={"twin-a": same})), world)
    solo.frames("twin", times=5)
    assert [(d.kind, d.person_id) for d in solo.decisions] == [("granted", "twin-a")]
    # margin 0 turns the rule off, a larger one is stricter
    off = Feed(make_policy(world, twins, margin_decades=0.0), world)
    off.frames("twin", times=5)
    assert [d.kind for d in off.decisions] == ["granted"]


def test_one_person_enrolled_lets_no_stranger_in(world):
    f = Feed(make_policy(world, world.gallery("ada"), lockout_unknown=1000, far=1e-4), world)
    for i in range(100):
        f.frames(f"stranger-{i}", times=6)
        f.gap(1.5)
    assert "granted" not in f.kinds() and f.kinds().count("unknown") == 100


def test_cooldown_denies_the_same_person_then_expires(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob"), cooldown_s=10.0), world)
    f.frames("ada", times=3)
    f.gap(2.0)
    got = f.frames("ada", times=3)
    assert [(d.kind, d.rule) for d in got] == [("denied", "cooldown")]
    f.gap(2.0)
    assert [d.kind for d in f.frames("bob", times=3)] == ["granted"]  # per person
    f.gap(9.0)
    assert [d.kind for d in f.frames("ada", times=3)] == ["granted"]


def test_a_gap_ends_the_appearance_and_nothing_carries_over(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob")), world)
    f.frames("ada", times=2)
    assert [d.kind for d in f.gap(1.5)] == ["unknown"]  # a usable face that was not let in: an attempt
    assert "appearance ended after 2 usable frame(s)" in f.decisions[-1].detail
    assert f.frames("ada", times=2) == []  # the two earlier frames no longer count
    assert [d.kind for d in f.frames("ada")] == ["granted"]


def test_a_face_that_jumps_across_the_picture_or_changes_identity_starts_a_new_appearance(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob")), world)
    f.frames("ada", times=2, box=(50, 50, 100, 100))
    out = f.frames("ada", times=1, box=(450, 300, 100, 100))  # a different person on the other side
    assert [d.kind for d in out] == ["unknown"]  # the first track ended undecided
    f.gap(1.5)
    g = Feed(make_policy(world, world.gallery("ada", "bob")), world)
    g.frames("stranger-x", times=2)
    out = g.frames("ada", times=1)  # a photo swapped in the same place: another face, another track
    assert [d.kind for d in out] == ["unknown"]
    assert [d.kind for d in g.frames("ada", times=2)] == ["granted"]


def test_swapped_photos_shown_briefly_each_count_and_lock_out(world):
    """30 stranger photos, 0.4 s (4 frames) each, one after the other: each is an attempt, whatever its length."""
    f = Feed(make_policy(world, world.gallery("ada", "bob"), lockout_unknown=10, far=1e-4), world)
    for i in range(30):
        f.frames(f"photo-{i}", times=4)
    f.gap(1.5)
    kinds = f.kinds()
    assert kinds.count("lockout") == 1 and kinds.index("lockout") == 10  # after the 10th failed face
    lock = f.decisions[kinds.index("lockout")]
    assert lock.rule == "attempts"
    assert f.policy.locked_out


def test_an_employee_arriving_during_a_strangers_lockout_is_let_in_at_the_stricter_threshold(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob", "mallory"), lockout_unknown=3), world)
    for i in range(3):
        f.frames(f"stranger-{i}", times=6)
        f.gap(1.5)
    assert "lockout" in f.kinds() and f.policy.locked_out
    th = f.policy.params.thresholds
    assert th.strict > th.door.value
    got = f.frames("ada", times=5)  # a clear face clears the stricter threshold
    assert [(d.kind, d.person_id, d.rule) for d in got] == [("granted", "ada", "strict")]
    assert got[0].score >= th.strict
    f.gap(1.5)
    # bob, seen today a little differently: above the door's threshold, below the stricter one
    seen = world._noisy(world.person("bob"), PHOTO)
    while not th.door.value + 0.005 < float(seen @ world.photo("bob")) < th.strict - 0.005:
        seen = world._noisy(world.person("bob"), PHOTO)
    got = f.frames("bob", times=5, embedding=seen)
    assert [(d.kind, d.person_id, d.rule) for d in got] == [("denied", "bob", "lockout")]
    assert "stricter threshold" in got[0].detail
    f.gap(61.0)
    assert not f.policy.locked_out
    assert [d.kind for d in f.frames("bob", times=5, embedding=seen)] == ["granted"]  # after it, as usual


def test_a_strangers_returns_are_one_attempt_new_faces_are_many(world):
    f = Feed(make_policy(world, world.gallery("ada"), lockout_unknown=3), world)
    for _ in range(6):  # the same visitor steps in and out of view
        f.frames("visitor", times=8)
        f.gap(1.5)
    assert f.kinds() == ["unknown"] * 6 and not f.policy.locked_out
    assert sum("not counted again" in (d.detail or "") for d in f.decisions) == 5


def test_failures_outside_the_window_do_not_lock_out(world):
    f = Feed(make_policy(world, world.gallery("ada"), lockout_unknown=3, lockout_window_s=5.0), world)
    for i in range(6):
        f.frames(f"s{i}", times=6)
        f.gap(5.0)
    assert "lockout" not in f.kinds() and f.kinds().count("unknown") == 6


def test_quality_refused_faces_keep_the_appearance_and_are_reported_not_counted(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob")), world)
    f.rejected("blurred", 8)
    f.frames("ada", times=2)
    f.rejected("not_frontal", 3)  # she turns away: the appearance and her two frames go on
    assert [d.kind for d in f.frames("ada")] == ["granted"]
    g = Feed(make_policy(world, world.gallery("ada")), world)
    g.rejected("too_small", 5)
    g.rejected("blurred", 2)
    got = g.gap(1.5)
    assert [(d.kind, d.rule) for d in got] == [("no_decision", "quality")]
    assert "too_small x5" in got[0].detail and "blurred x2" in got[0].detail
    assert not g.policy._failures  # a face never usable is not an attempt


def test_nobody_enrolled_says_so(world):
    f = Feed(make_policy(world, None), world)
    f.frames("ada", times=6)
    assert [(d.kind, d.detail) for d in f.decisions] == [("unknown", "nobody is enrolled")]


def test_a_reload_keeps_the_lockout(world):
    p = make_policy(world, world.gallery("ada"), lockout_unknown=2)
    f = Feed(p, world)
    for i in range(2):
        f.frames(f"s{i}", times=6)
        f.gap(1.5)
    assert p.locked_out
    p.retune(p.params, Matcher(world.gallery("ada", "bob")))
    assert p.locked_out


def test_end_of_input_closes_the_appearance(world):
    f = Feed(make_policy(world, world.gallery("ada", "bob")), world)
    f.frames("stranger", times=2)
    assert [d.kind for d in f.policy.end(f.t)] == ["unknown"]
    assert f.policy.end(f.t) == []


def test_params_reject_k_above_n(world):
    with pytest.raises(ValueError):
        PolicyParams(thresholds=world.thresholds(), k=6, n=5)


def test_flood_of_faces_keeps_memory_bounded(world):
    p = make_policy(world, world.gallery("ada", "bob"), lockout_unknown=10, cooldown_s=10.0)
    f = Feed(p, world)
    sizes = []
    for i in range(3000):
        f.frames(f"flood-{i % 500}", times=2)
        if i % 7 == 0:
            f.frames("ada", times=3)
        sizes.append(p.tracked())
    assert "lockout" in f.kinds()
    assert max(sizes) <= p.params.n + 5 * p.params.lockout_unknown + MAX_TRACKED + 16
