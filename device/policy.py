"""The decision policy: when does a stream of faces open the door? On the whole appearance, not the frame.

Pure logic on an injected clock (the caller passes ``t``, seconds on a monotonic clock), so it runs the same in
the daemon, in ``--simulate`` on video time and in unit tests with a fake clock. Nothing here touches the relay;
:meth:`Policy.observe` returns :class:`Decision` records and the gate acts on them. Every number it compares a
score with comes from :class:`edgeface.thresholds.Thresholds` (the bundle's calibration, in its scorer's units).

* **Tracks.** The largest face of each frame is followed from frame to frame: it is the same track while it keeps
  appearing (no gap longer than ``face_gap_s``), stays near where it was (its centre moves less than its own size
  between usable frames) and keeps looking like itself (a usable frame scores at least the ``same_face``
  threshold against the track's fused face). Anything else starts a new track: a new visit, another person
  stepping in, a photo swapped in front of the camera.
* **Fused evidence.** The unit embeddings of the track's last ``n`` usable frames are averaged, weighted by their
  quality (:func:`quality_weight`), and that one fused face is matched against the gallery. The door opens for
  person P when, after at least ``k`` usable frames, the fused face scores at least the door's threshold for P
  and P is not ambiguous: the second-best person must be at least ``margin_decades`` decades of FAR less likely
  (:meth:`Thresholds.ambiguous`). One good frame never opens it; one bad frame no longer keeps anyone out.
* **Attempts.** A track that has had a usable face and has not been granted is one failed attempt, whatever its
  length: counted once, when its first ``n`` usable frames did not open the door, or when it ends before that.
  It is reported as ``unknown`` (or ``denied`` ambiguous) with who came closest. A failed face that matches a
  failed attempt within ``lockout_window_s`` at the door's own threshold is reported but not counted again: a
  visitor stepping in and out is one attempt, a new face is another.
* **Lockout.** ``lockout_unknown`` counted attempts (distinct faces) within ``lockout_window_s`` start a lockout
  of ``lockout_s`` (renewed when as many new attempts come within a window again). During it nobody is refused
  outright, but a grant needs the stricter ``strict`` threshold (FAR 10x lower). So a burst of strangers or
  swapped photos gets at most ``lockout_unknown`` tries per window at the door's FAR and the rest at a tenth of
  it, while an employee arriving meanwhile is still let in when their face is clear.
* **Cooldown.** After an unlock, the same person is ``denied`` (``cooldown``) for ``cooldown_s``.
* **Rules named.** Each decision says which rule acted (``rule``): ``door``, ``strict`` (a grant during a
  lockout), ``threshold`` (not similar enough), ``ambiguous``, ``lockout``, ``cooldown``, ``attempts`` (the
  lockout started), ``quality`` (no usable face).

Memory is bounded whatever arrives: a track holds ``n`` frames, the failure history at most ``lockout_unknown``
faces, cooldowns expire and every per-person map is capped at :data:`MAX_TRACKED`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from edgeface.match import Match
from edgeface.thresholds import STRICT_FACTOR

from .candidates import TopCandidates

#: hard cap on per-person bookkeeping (cooldowns), whatever the gallery size
MAX_TRACKED = 4096
#: distinct quality-gate reasons remembered per track (the codes are few; free-text ones are capped)
MAX_REASONS = 16


@dataclass(frozen=True)
class PolicyParams:
    """The policy's numbers: ``[policy]`` plus the resolved :class:`edgeface.thresholds.Thresholds`."""

    thresholds: object  # edgeface.thresholds.Thresholds
    k: int = 3
    n: int = 5
    cooldown_s: float = 10.0
    lockout_unknown: int = 10
    lockout_window_s: float = 30.0
    lockout_s: float = 60.0
    face_gap_s: float = 1.5
    weighted: bool = True
    #: after a track's failed attempt, a grant needs the stricter threshold (a near-threshold face that stays at
    #: the door must not get a new lottery ticket with every frame)
    second_chance_strict: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"need 1 <= k <= n, got k={self.k}, n={self.n}")
        if self.lockout_unknown < 1:
            raise ValueError("lockout_unknown must be at least 1")

    @classmethod
    def from_config(cls, policy, thresholds) -> "PolicyParams":
        return cls(thresholds=thresholds, k=policy.k, n=policy.n, cooldown_s=policy.cooldown_s,
                   lockout_unknown=policy.lockout_unknown, lockout_window_s=policy.lockout_window_s,
                   lockout_s=policy.lockout_s, face_gap_s=policy.face_gap_s)


@dataclass(frozen=True)
class Sighting:
    """What one processed frame showed: the chosen face's ``box`` (x, y, w, h; None: no face), its unit
    ``embedding`` when usable, its quality ``weight``, or why the quality gate ``rejected`` it."""

    box: tuple[float, float, float, float] | None = None
    embedding: np.ndarray | None = None
    weight: float = 1.0
    rejected: str | None = None


@dataclass(frozen=True)
class Decision:
    """What the policy concluded at time ``t``. ``kind`` is one of granted, denied, unknown, lockout,
    no_decision; only ``granted`` opens the door. ``rule`` names the rule that acted."""

    kind: str
    t: float
    person_id: str | None = None
    person: str | None = None
    score: float | None = None
    margin: float | None = None
    detail: str | None = None
    #: who came closest (best first, at most two): ``({"person_id", "person", "score"}, ...)``
    candidates: tuple[dict, ...] | None = None
    rule: str | None = None


def quality_weight(report) -> float:
    """A usable frame's weight in the fused face: its sharpness relative to a clearly sharp crop, between 0.25 and
    1 (a blurred frame still counts, less). ``report``: the frame's :class:`edgeface.quality.QualityReport`."""
    sharp = (getattr(report, "measures", None) or {}).get("sharpness")
    if sharp is None:
        return 1.0
    return float(min(1.0, max(0.25, sharp / 200.0)))


@dataclass
class _Track:
    start: float
    last_t: float
    box: tuple | None = None
    frames: deque = field(default_factory=deque)  # (embedding, weight) of the last n usable frames
    usable: int = 0
    granted: bool = False
    counted: bool = False  # its failure is counted (or it was reported and not counted)
    reported: bool = False  # a failure event went out
    lockout_reported: bool = False
    ambiguous: bool = False
    best: Match | None = None  # the best fused match it reached
    rejected: Counter = field(default_factory=Counter)
    candidates: TopCandidates = field(default_factory=TopCandidates)

    def fused(self, weighted: bool) -> np.ndarray | None:
        if not self.frames:
            return None
        e = np.stack([f[0] for f in self.frames])
        w = np.array([f[1] if weighted else 1.0 for f in self.frames], np.float32)
        m = (w[:, None] * e).sum(axis=0)
        norm = float(np.linalg.norm(m))
        return m / norm if norm > 1e-6 else None


class Policy:
    """Feed it one :class:`Sighting` per processed frame with :meth:`observe`; act on the decisions it returns.
    ``matcher`` is the gallery's :class:`edgeface.match.Matcher` (None: nobody enrolled); ``scorer`` the model's
    (to tell whether two faces are the same one)."""

    def __init__(self, params: PolicyParams, matcher=None, scorer=None) -> None:
        from edgeface.scorer import COSINE

        self.params = params
        self.matcher = matcher
        self.scorer = scorer or COSINE
        self.track: _Track | None = None
        self._failures: deque = deque(maxlen=params.lockout_unknown)  # times of the counted attempts
        self._failed_faces: deque = deque(maxlen=4 * params.lockout_unknown)  # (t, face) of recent failed faces
        self._last_unlock: dict[str, float] = {}
        self.locked_until: float | None = None

    # -- public ---------------------------------------------------------------------------------------
    def observe(self, t: float, sighting: Sighting | None) -> list[Decision]:
        """One processed frame at time ``t``; ``sighting`` None (or without a box) when no face was seen."""
        out: list[Decision] = []
        self._expire(t)
        tr = self.track
        if tr is not None and t - tr.last_t > self.params.face_gap_s:
            out += self._end_track(t)
            tr = None
        if sighting is None or sighting.box is None:
            return out
        if tr is not None and self._moved(tr, sighting.box):
            out += self._end_track(t)
            tr = None
        if tr is None:
            tr = self.track = _Track(start=t, last_t=t)
        tr.last_t, tr.box = t, sighting.box
        if sighting.embedding is None:
            reason = sighting.rejected or "rejected"
            if reason in tr.rejected or len(tr.rejected) < MAX_REASONS:
                tr.rejected[reason] += 1
            return out
        emb = np.asarray(sighting.embedding, np.float32)
        if tr.frames and self._other_face(tr, emb):
            out += self._end_track(t)
            tr = self.track = _Track(start=t, last_t=t, box=sighting.box)
        tr.frames.append((emb, float(sighting.weight)))
        while len(tr.frames) > self.params.n:
            tr.frames.popleft()
        tr.usable += 1
        if tr.granted or tr.usable < self.params.k:
            return out
        out += self._evaluate(t, tr)
        return out

    def end(self, t: float) -> list[Decision]:
        """The input ended (end of a video, shutdown): close the current track."""
        return self._end_track(t)

    def retune(self, params: PolicyParams, matcher=None, scorer=None) -> None:
        """New numbers or a new gallery (a reload, a fleet install) without forgetting cooldowns, a running
        lockout or recent failures: reloading must not be a way to clear a lockout."""
        self.params = params
        self.matcher = matcher
        if scorer is not None:
            self.scorer = scorer
        self._failures = deque(self._failures, maxlen=params.lockout_unknown)
        self._failed_faces = deque(self._failed_faces, maxlen=4 * params.lockout_unknown)

    def fused(self) -> tuple[np.ndarray | None, int]:
        """The current track's fused face and how many usable frames it has (1:1 access verifies against it)."""
        tr = self.track
        if tr is None:
            return None, 0
        return tr.fused(self.params.weighted), tr.usable

    @property
    def locked_out(self) -> bool:
        return self.locked_until is not None

    def tracked(self) -> int:
        """How many items the policy holds (for the bounded-memory check)."""
        tr = self.track
        return (len(self._failures) + len(self._failed_faces) + len(self._last_unlock)
                + (0 if tr is None else len(tr.frames) + len(tr.rejected)))

    # -- internals ------------------------------------------------------------------------------------
    def _moved(self, tr: _Track, box) -> bool:
        """A face that jumped further than its own size is not the one the track followed."""
        if tr.box is None:
            return False
        (x0, y0, w0, h0), (x1, y1, w1, h1) = tr.box, box
        size = max(w0, h0, w1, h1, 1.0)
        dx, dy = (x1 + w1 / 2) - (x0 + w0 / 2), (y1 + h1 / 2) - (y0 + h0 / 2)
        return (dx * dx + dy * dy) ** 0.5 > size

    def _other_face(self, tr: _Track, emb: np.ndarray) -> bool:
        f = tr.fused(self.params.weighted)
        if f is None:
            return False
        return float(self.scorer.pairs(f[None], emb[None])[0]) < self.params.thresholds.same_face

    def _expire(self, t: float) -> None:
        p = self.params
        if self.locked_until is not None and t >= self.locked_until:
            self.locked_until = None
            self._failures.clear()
        while self._failures and t - self._failures[0] > p.lockout_window_s:
            self._failures.popleft()
        while self._failed_faces and t - self._failed_faces[0][0] > p.lockout_window_s:
            self._failed_faces.popleft()
        if self._last_unlock:
            self._last_unlock = {k: v for k, v in self._last_unlock.items() if t - v < p.cooldown_s}

    def _match(self, face: np.ndarray) -> Match | None:
        if self.matcher is None or len(self.matcher) == 0:
            return None
        return self.matcher.match(face)

    def _evaluate(self, t: float, tr: _Track) -> list[Decision]:
        th = self.params.thresholds
        face = tr.fused(self.params.weighted)
        m = self._match(face) if face is not None else None
        if m is not None:
            tr.candidates.add(m.person_id, m.name, m.score)
            tr.candidates.add(m.second_person_id, m.second_name, m.second_score)
            if tr.best is None or m.score > tr.best.score:
                tr.best = m
        if m is not None and m.score >= th.door.value:
            if th.ambiguous(m.score, m.second_score):
                tr.ambiguous = True
            elif self.locked_until is not None:
                out = self._during_lockout(t, tr, face, m)
                if out:
                    return out
            elif not tr.reported or not self.params.second_chance_strict:
                return [self._grant(t, tr, m, "door")]
            elif m.score >= th.strict:  # it already failed once: a second chance needs the stricter threshold
                return [self._grant(t, tr, m, "strict")]
        if tr.usable >= self.params.n and not tr.counted:
            return self._fail(t, tr, face)
        return []

    def _during_lockout(self, t: float, tr: _Track, face: np.ndarray, m: Match) -> list[Decision]:
        th = self.params.thresholds
        if m.score >= th.strict:
            return [self._grant(t, tr, m, "strict")]
        tr.counted = True  # recognised, but held back by the lockout: not a failed attempt of its own
        if tr.lockout_reported:
            return []
        tr.lockout_reported = tr.reported = True
        why = (f"recognition is locked: a grant needs the stricter threshold {th.strict:.4f} "
               f"(FAR {th.door_far * STRICT_FACTOR:.0e}), score {m.score:.4f}")
        return [Decision("denied", t, m.person_id, m.name, m.score, _margin(m), f"lockout: {why}", rule="lockout")]

    def _grant(self, t: float, tr: _Track, m: Match, rule: str) -> Decision:
        tr.granted = True
        common = dict(person_id=m.person_id, person=m.name, score=m.score, margin=_margin(m))
        last = self._last_unlock.get(m.person_id)
        if last is not None and t - last < self.params.cooldown_s:
            return Decision("denied", t, detail="cooldown", rule="cooldown", **common)
        if len(self._last_unlock) >= MAX_TRACKED:  # cannot remember another cooldown: refuse rather than forget
            return Decision("denied", t, detail="too many recent unlocks", rule="cooldown", **common)
        self._last_unlock[m.person_id] = t
        detail = None if rule == "door" else ("during a lockout, at the stricter threshold" if self.locked_until
                                              is not None else "after a failed attempt, at the stricter threshold")
        return Decision("granted", t, detail=detail, rule=rule, **common)

    def _fail(self, t: float, tr: _Track, face: np.ndarray | None) -> list[Decision]:
        """One failed attempt for this track (counted at most once)."""
        tr.counted = tr.reported = True
        b = tr.best
        th = self.params.thresholds
        if tr.ambiguous:
            kind, rule, detail = "denied", "ambiguous", "ambiguous"
        elif self.matcher is None or len(self.matcher) == 0:
            kind, rule, detail = "unknown", "threshold", "nobody is enrolled"
        else:
            kind, rule, detail = "unknown", "threshold", None
        if tr.usable < self.params.n:
            detail = _join(detail, f"appearance ended after {tr.usable} usable frame(s)")
        repeat = face is not None and any(float(self.scorer.pairs(face[None], f[None])[0]) >= th.door.value
                                          for _, f in self._failed_faces)
        if repeat:
            detail = _join(detail, "same face as an earlier attempt (not counted again)")
        out = [Decision(kind, t, score=None if b is None else b.score, margin=None if b is None else _margin(b),
                        detail=detail, candidates=tr.candidates.as_list(), rule=rule)]
        if face is None or repeat:
            return out
        self._failures.append(t)
        self._failed_faces.append((t, face))
        if len(self._failures) >= self.params.lockout_unknown:
            started, count = self.locked_until is None, len(self._failures)
            self._failures.clear()  # used up: renewing the lockout takes as many new failures again
            self.locked_until = t + self.params.lockout_s
            if started:
                out.append(Decision("lockout", t, rule="attempts", detail=(
                    f"{count} failed attempts by different faces within {self.params.lockout_window_s:g} "
                    f"s: for {self.params.lockout_s:g} s a grant needs the stricter threshold {th.strict:.4f} "
                    f"(FAR {th.door_far * STRICT_FACTOR:.0e})")))
        return out

    def _end_track(self, t: float) -> list[Decision]:
        tr, self.track = self.track, None
        if tr is None:
            return []
        if tr.granted or tr.reported:
            return []
        if tr.usable:
            return self._fail(t, tr, tr.fused(self.params.weighted))
        if not tr.rejected:
            return []
        detail = "no usable face; refused by the quality gate: " + ", ".join(
            f"{reason} x{count}" for reason, count in tr.rejected.most_common())
        return [Decision("no_decision", t, detail=detail, candidates=(), rule="quality")]


def _margin(m: Match) -> float | None:
    return None if m.second_score is None else float(m.score - m.second_score)


def _join(a: str | None, b: str) -> str:
    return b if not a else f"{a}; {b}"
