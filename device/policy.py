"""The decision policy: when does a stream of per-frame matches open the door?

Pure logic on an injected clock (the caller passes ``t``, seconds on a monotonic clock), so it runs the same
in the daemon, in ``--simulate`` on video time and in unit tests with a fake clock. Nothing here touches the
relay; :meth:`Policy.observe` returns :class:`Decision` records and the gate acts on them.

Rules (defaults from ``[policy]``):

* **k of n.** A frame's match counts for person P only if its score is at or above the threshold *and* its
  margin to the second-best person is at least ``min_margin``. The door opens for P when P counts in ``k`` of
  the last ``n`` processed face frames (default 3 of 5). One good frame never opens it.
* **Appearance.** A run of face frames with no gap longer than ``face_gap_s`` is one appearance. The window is
  reset when an appearance ends, so frames of two different visits never add up. A person is decided at most
  once per appearance; an appearance that ends with face frames but no decision yields ``no_decision`` (a miss
  is always logged, never silent).
* **Failed attempts.** A full window of ``n`` frames without an unlock is one failed attempt: ``unknown`` (most
  frames below the threshold) or ``denied`` with ``detail="ambiguous"`` (above the threshold but too close to a
  second person). The window then starts afresh, so a stranger standing still is one attempt per ``n`` frames.
* **Lockout.** ``lockout_unknown`` failed attempts within ``lockout_window_s`` lock recognition out for
  ``lockout_s``: during it a recognised person is ``denied`` (``detail="lockout"``), never granted. This bounds
  how fast someone can try photos or faces. When embeddings are passed, a failed window whose mean face is
  the same (cosine >= threshold) as the previous failed window's is logged but not counted again: a stranger
  waiting at the door is one attempt, a new face (a swapped photo) is another.
* **Cooldown.** After an unlock, the same person is ``denied`` (``detail="cooldown"``) for ``cooldown_s``.
* **Explained.** ``unknown``, ``denied`` ambiguous and ``no_decision`` name nobody, so they carry
  ``candidates``: the best and second-best gallery persons of the window (or the appearance) with the best
  score each reached (:mod:`edgeface.device.candidates`). With nobody enrolled there are none, and the detail
  says ``nobody is enrolled``.

Memory is bounded whatever arrives: the window is a deque of ``n``, the failure history a deque of at most
``lockout_unknown``, the per-appearance and per-person maps are pruned (cooldowns expire) and capped at
:data:`MAX_TRACKED`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from .candidates import TopCandidates

#: hard cap on per-person bookkeeping (cooldowns, decided-this-appearance), whatever the gallery size
MAX_TRACKED = 4096
#: distinct quality-gate reasons remembered per appearance (the codes are few; free-text ones are capped)
MAX_REASONS = 16


@dataclass(frozen=True)
class PolicyParams:
    """The policy's numbers; :meth:`from_config` builds them from ``[policy]`` plus the resolved threshold."""

    threshold: float
    k: int = 3
    n: int = 5
    min_margin: float = 0.05
    cooldown_s: float = 10.0
    lockout_unknown: int = 10
    lockout_window_s: float = 30.0
    lockout_s: float = 60.0
    face_gap_s: float = 1.5

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"need 1 <= k <= n, got k={self.k}, n={self.n}")
        if self.lockout_unknown < 1:
            raise ValueError("lockout_unknown must be at least 1")

    @classmethod
    def from_config(cls, policy, threshold: float) -> "PolicyParams":
        return cls(threshold=float(threshold), k=policy.k, n=policy.n, min_margin=policy.min_margin,
                   cooldown_s=policy.cooldown_s, lockout_unknown=policy.lockout_unknown,
                   lockout_window_s=policy.lockout_window_s, lockout_s=policy.lockout_s, face_gap_s=policy.face_gap_s)


@dataclass(frozen=True)
class Decision:
    """What the policy concluded at time ``t``. ``kind`` is one of granted, denied, unknown, lockout,
    no_decision; only ``granted`` opens the door."""

    kind: str
    t: float
    person_id: str | None = None
    person: str | None = None
    score: float | None = None
    margin: float | None = None
    detail: str | None = None
    #: who came closest (best first, at most two): ``({"person_id", "person", "score"}, ...)``
    candidates: tuple[dict, ...] | None = None


@dataclass(frozen=True)
class _Entry:
    person_id: str | None  # None: not accepted (unknown or ambiguous)
    name: str | None
    score: float
    margin: float
    ambiguous: bool
    embedding: np.ndarray | None = None
    #: the raw gallery answer whether accepted or not: best and second-best person
    best: tuple[str | None, str | None, float | None] = (None, None, None)
    second: tuple[str | None, str | None, float | None] = (None, None, None)


class Policy:
    """Feed it one observation per processed frame with :meth:`observe`; act on the decisions it returns."""

    def __init__(self, params: PolicyParams) -> None:
        self.params = params
        self._window: deque[_Entry] = deque(maxlen=params.n)
        self._failures: deque[float] = deque(maxlen=params.lockout_unknown)
        self._last_unlock: dict[str, float] = {}
        self._decided: set[str] = set()  # persons decided in the current appearance
        self._last_face_t: float | None = None
        self._appearance_frames = 0
        self._appearance_decisions = 0
        self._appearance_best: _Entry | None = None
        self._rejected: Counter[str] = Counter()  # quality-gate reasons in the current appearance
        self._appearance_candidates = TopCandidates()
        self._appearance_unmatched = 0  # usable face frames with no gallery candidate (nobody enrolled)
        self._last_failed_face: np.ndarray | None = None  # mean direction of the last failed window
        self.locked_until: float | None = None

    # -- public ---------------------------------------------------------------------------------------
    def observe(self, t: float, face: bool, person_id: str | None = None, person: str | None = None,
                score: float | None = None, margin: float | None = None,
                rejected: str | None = None, embedding: np.ndarray | None = None,
                second: tuple[str | None, str | None, float | None] | None = None) -> list[Decision]:
        """One processed frame at time ``t``. ``face`` is False when no face was seen. A face the quality gate
        refused is ``face=True`` with ``rejected`` naming why: it keeps the appearance going and is reported if
        the appearance ends undecided, but never counts for anyone. Otherwise ``person_id``/``score``/``margin``
        describe the best gallery match (``person_id`` None when the gallery is empty); ``embedding`` (the
        face's unit vector, optional) lets a failed attempt by the same face as the previous one not count twice
        towards the lockout. ``second`` is the second-best person as (person_id, name, score), for the
        candidates of events that name nobody."""
        out: list[Decision] = []
        self._expire(t)
        if self._last_face_t is not None and t - self._last_face_t > self.params.face_gap_s:
            out.extend(self._end_appearance(t))
        if not face:
            return out
        self._last_face_t = t
        if rejected is not None:
            if rejected in self._rejected or len(self._rejected) < MAX_REASONS:
                self._rejected[rejected] += 1
            return out
        self._appearance_frames += 1
        entry = self._entry(person_id, person, score, margin, embedding, second)
        if person_id is None:
            self._appearance_unmatched += 1
        for pid, name, value in (entry.best, entry.second):
            self._appearance_candidates.add(pid, name, value)
        if entry.person_id is not None and entry.person_id in self._decided:
            return out  # already granted/denied this appearance: their further frames change nothing
        if self._appearance_best is None or entry.score > self._appearance_best.score:
            self._appearance_best = entry
        self._window.append(entry)
        if entry.person_id is not None:
            hits = [e for e in self._window if e.person_id == entry.person_id]
            if len(hits) >= self.params.k:
                out.append(self._decide_person(t, entry, hits))
                return out
        if len(self._window) == self.params.n:
            out.extend(self._fail(t))
        return out

    def end(self, t: float) -> list[Decision]:
        """The input ended (end of a video, shutdown): close the current appearance."""
        return self._end_appearance(t)

    def retune(self, params: PolicyParams) -> None:
        """New numbers (a SIGHUP reload) without forgetting cooldowns, a running lockout or recent failures:
        reloading the config must not be a way to clear a lockout."""
        self.params = params
        self._window = deque(self._window, maxlen=params.n)
        self._failures = deque(self._failures, maxlen=params.lockout_unknown)

    @property
    def locked_out(self) -> bool:
        return self.locked_until is not None

    def tracked(self) -> int:
        """How many items the policy holds (for the bounded-memory check): window, failures, persons."""
        return (len(self._window) + len(self._failures) + len(self._last_unlock) + len(self._decided)
                + len(self._rejected))

    # -- internals ------------------------------------------------------------------------------------
    def _entry(self, person_id, person, score, margin, embedding=None, second=None) -> _Entry:
        p = self.params
        best = (person_id, person, None if score is None else float(score))
        second = tuple(second) if second is not None and second[0] is not None else (None, None, None)
        score = float("-inf") if score is None else float(score)
        margin = float("-inf") if margin is None else float(margin)
        above = person_id is not None and score >= p.threshold
        ok = above and margin >= p.min_margin
        return _Entry(person_id if ok else None, person if ok else None, score, margin, ambiguous=above and not ok,
                      embedding=None if embedding is None else np.asarray(embedding, np.float32),
                      best=best, second=second)

    def _expire(self, t: float) -> None:
        if self.locked_until is not None and t >= self.locked_until:
            self.locked_until = None
            self._failures.clear()
        while self._failures and t - self._failures[0] > self.params.lockout_window_s:
            self._failures.popleft()
        if self._last_unlock:
            self._last_unlock = {k: v for k, v in self._last_unlock.items() if t - v < self.params.cooldown_s}

    def _decide_person(self, t: float, entry: _Entry, hits: list[_Entry]) -> Decision:
        pid = entry.person_id
        self._window.clear()
        self._appearance_decisions += 1
        if len(self._decided) < MAX_TRACKED:
            self._decided.add(pid)
        score = max(e.score for e in hits)
        margin = min(e.margin for e in hits)
        common = dict(person_id=pid, person=entry.name, score=score, margin=margin)
        if self.locked_until is not None:
            return Decision("denied", t, detail="lockout", **common)
        last = self._last_unlock.get(pid)
        if last is not None and t - last < self.params.cooldown_s:
            return Decision("denied", t, detail="cooldown", **common)
        if len(self._last_unlock) >= MAX_TRACKED:  # cannot remember another cooldown: refuse rather than forget
            return Decision("denied", t, detail="too many recent unlocks", **common)
        self._last_unlock[pid] = t
        return Decision("granted", t, **common)

    def _fail(self, t: float) -> list[Decision]:
        window = list(self._window)
        self._window.clear()
        self._appearance_decisions += 1
        best = max(window, key=lambda e: e.score)
        ambiguous = sum(e.ambiguous for e in window)
        accepted = Counter(e.person_id for e in window if e.person_id is not None)
        if ambiguous * 2 > len(window):
            detail, kind = "ambiguous", "denied"
        elif accepted:
            detail, kind = "inconsistent", "unknown"  # accepted frames, but no one person in k of n
        elif all(e.best[0] is None for e in window):
            detail, kind = "nobody is enrolled", "unknown"
        else:
            detail, kind = None, "unknown"
        face = _mean_direction([e.embedding for e in window])
        repeat = (face is not None and self._last_failed_face is not None
                  and float(face @ self._last_failed_face) >= self.params.threshold)
        if face is not None:
            self._last_failed_face = face
        if repeat:
            detail = ((detail + "; ") if detail else "") + "same face as the previous attempt (not counted again)"
        out = [Decision(kind, t, score=best.score if best.score != float("-inf") else None,
                        margin=best.margin if best.margin != float("-inf") else None, detail=detail,
                        candidates=_candidates(window))]
        if self.locked_until is None and not repeat:
            self._failures.append(t)
            if len(self._failures) >= self.params.lockout_unknown:
                self.locked_until = t + self.params.lockout_s
                out.append(Decision("lockout", t, detail=f"{len(self._failures)} failed attempts within "
                                    f"{self.params.lockout_window_s:g} s: recognition locked for {self.params.lockout_s:g} s"))
        return out

    def _end_appearance(self, t: float) -> list[Decision]:
        out: list[Decision] = []
        if (self._appearance_frames or self._rejected) and not self._appearance_decisions:
            b = self._appearance_best
            if self._appearance_frames and self._appearance_unmatched == self._appearance_frames:
                detail = f"nobody is enrolled: {self._appearance_frames} face frame(s) without a decision"
            else:
                detail = f"appearance ended after {self._appearance_frames} matched face frame(s) without a decision"
            if self._rejected:
                detail += "; refused by the quality gate: " + ", ".join(
                    f"{reason} x{count}" for reason, count in self._rejected.most_common())
            out.append(Decision("no_decision", t, score=None if b is None or b.score == float("-inf") else b.score,
                                detail=detail, candidates=self._appearance_candidates.as_list()))
        self._rejected.clear()
        self._appearance_candidates.clear()
        self._appearance_unmatched = 0
        self._window.clear()
        self._decided.clear()
        self._appearance_frames = 0
        self._appearance_decisions = 0
        self._appearance_best = None
        self._last_face_t = None
        return out


def _candidates(window: list[_Entry]) -> tuple[dict, ...]:
    top = TopCandidates()
    for e in window:
        for pid, name, value in (e.best, e.second):
            top.add(pid, name, value)
    return top.as_list()


def _mean_direction(embeddings) -> np.ndarray | None:
    """The unit mean of the window's embeddings (None when the caller passed none)."""
    vs = [e for e in embeddings if e is not None]
    if not vs:
        return None
    m = np.mean(vs, axis=0)
    n = float(np.linalg.norm(m))
    return m / n if n > 1e-6 else None
