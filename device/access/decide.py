"""The access hook of the gate: modes, claims (badge, PIN) within ``claim_window_s``, schedules, door events.

:class:`AccessControl` is created from the config (:func:`build_access`) and handed to
:class:`~edgeface.device.gate.Gate`, which calls it three times: :meth:`decide` after the policy for every
processed frame, :meth:`poll` on every loop turn (readers, claim timeouts, the door), :meth:`end` at shutdown.
It returns :class:`~edgeface.device.policy.Decision` records; the gate pulses the relay for ``granted`` and
``exit_request`` only, and audits everything.

Modes (``[access] mode``):

* ``face``: the policy's 1:N decisions; a grant is then checked against the person's validity and schedule.
* ``face_or_badge``: as ``face``, and a known badge alone is granted (validity and schedule apply).
* ``face_and_badge`` / ``face_and_pin`` (1:1): a face alone opens nothing. A claim names the person (the
  badge's owner; for a PIN, anyone whose PIN hash it matches), and the claim is granted when that person's own
  score (best cosine against *their* embeddings) reaches the verification threshold in ``policy.k`` of the last
  ``policy.n`` usable face frames, frames from ``policy.face_gap_s`` before the claim included. Nobody else's
  similarity matters. A PIN is checked (scrypt) only against people whose face already matches, so it costs one
  hash per candidate, and the PIN is forgotten when the claim is decided.
* a claim with no matching face within ``claim_window_s`` is ``denied`` (detail says so); a claim during a
  recognition lockout is ``denied`` (``lockout``); outside the schedule: ``denied`` with detail
  ``outside_schedule`` (``expired`` / ``not_yet_valid`` for validity dates).

Wall-clock time is used only for those schedule and validity checks (``wall(t)``); every duration (claim
window, pulse, door timers) is on the gate's monotonic clock.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from edgeface.access.credentials import check_pin

from ..policy import Decision
from .claim import Claim, ReaderFault
from .rules import MODES_1TO1, AccessRules

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    claim: Claim
    candidates: list[str]
    window: deque = field(default_factory=deque)  # per usable frame: the set of candidates it matched
    best: float | None = None
    pin_ok: dict[str, bool] = field(default_factory=dict)


def system_wall(_t: float) -> datetime:
    return datetime.now(timezone.utc)


def simulated_wall(start: datetime) -> Callable[[float], datetime]:
    """Wall time for a replay: ``start`` (aware) plus the video time."""
    return lambda t: start + timedelta(seconds=float(t))


class AccessControl:
    def __init__(self, readers=(), door=None, feedback=None, wall: Callable[[float], datetime] = system_wall,
                 k: int = 3, n: int = 5, face_gap_s: float = 1.5) -> None:
        self.readers = list(readers)
        self.door = door
        self.feedback = feedback
        self.wall = wall
        self.k, self.n, self.face_gap_s = k, n, face_gap_s
        self.pending: _Pending | None = None
        self.stats: Counter[str] = Counter()
        self._recent: deque = deque(maxlen=n)  # (t, embedding) of the last usable face frames

    # -- gate hooks -----------------------------------------------------------------------------------
    def decide(self, t: float, result, decisions: list[Decision], runtime, locked_out: bool = False) -> list[Decision]:
        rules: AccessRules = runtime.access
        self.k, self.n, self.face_gap_s = runtime.params.k, runtime.params.n, runtime.params.face_gap_s
        out = []
        for d in decisions:
            if d.kind == "granted":
                if rules.mode in MODES_1TO1:
                    continue  # a face alone opens nothing in a 1:1 mode; the claim below decides
                d = self._checked(d, rules)
            out.append(d)
        emb = getattr(result, "embedding", None) if result is not None and result.usable else None
        if emb is not None:
            self._recent.append((t, emb))
            if self.pending is not None:
                out.extend(self._verify_frame(t, emb, rules, locked_out))
        return self._shown(out)

    def poll(self, t: float, runtime, locked_out: bool = False) -> list[Decision]:
        rules: AccessRules = runtime.access
        out: list[Decision] = []
        if self.pending is not None and t - self.pending.claim.t > rules.claim_window_s:
            out.append(self._claim_denied(t, rules, f"no matching face within claim_window_s "
                                                    f"({rules.claim_window_s:g} s)"))
        for reader in self.readers:
            for item in reader.poll(t):
                if isinstance(item, ReaderFault):
                    self.stats["bad_frame"] += 1
                    out.append(Decision("bad_frame", t, detail=item.detail))
                else:
                    out.extend(self._claim(item, t, rules, locked_out))
        if self.door is not None:
            out.extend(Decision(kind, t, detail=detail) for kind, detail in self.door.poll())
        return self._shown(out)

    def end(self, t: float, runtime) -> list[Decision]:
        if self.pending is None:
            return []
        return [self._claim_denied(t, runtime.access, "the input ended before a matching face")]

    def close(self) -> None:
        for part in [*self.readers, self.door, self.feedback]:
            if part is not None:
                try:
                    part.close()
                except Exception as exc:
                    log.warning("access: closing %s: %s", type(part).__name__, exc)

    # -- claims ---------------------------------------------------------------------------------------
    def _claim(self, claim: Claim, t: float, rules: AccessRules, locked_out: bool) -> list[Decision]:
        out = []
        if self.pending is not None:
            out.append(self._claim_denied(t, rules, "superseded by a new claim"))
        mode = rules.mode
        what = claim.describe()
        if claim.kind == "badge":
            pid = rules.badges.get(claim.value)
            if pid is None:
                return out + [Decision("denied", t, detail=f"unknown {what}")]
            person = rules.names[pid]
            if mode not in ("face_or_badge", "face_and_badge"):
                return out + [Decision("denied", t, person_id=pid, person=person, detail=f"{what}: badges are not accepted in mode {mode}")]
            reason = rules.refusal(pid, self.wall(claim.t))
            if reason is not None:
                return out + [Decision("denied", t, person_id=pid, person=person, detail=f"{reason} ({what})")]
            if mode == "face_or_badge":
                return out + [Decision("granted", t, person_id=pid, person=person, detail=f"face_or_badge: {what}")]
            candidates = [pid]
        else:
            if mode != "face_and_pin":
                return out + [Decision("denied", t, detail=f"PIN entry is not accepted in mode {mode}")]
            candidates = rules.pin_holders()
            if not candidates:
                return out + [Decision("denied", t, detail="PIN entered, but nobody enrolled has a PIN")]
        if locked_out:
            return out + [Decision("denied", t, detail=f"lockout ({what})")]
        self.pending = _Pending(claim, candidates)
        for ft, emb in list(self._recent):  # the face may have been at the door before the claim
            if ft >= claim.t - self.face_gap_s:
                out.extend(self._verify_frame(ft if ft > claim.t else claim.t, emb, rules, locked_out))
                if self.pending is None:
                    break
        return out

    def _verify_frame(self, t: float, emb, rules: AccessRules, locked_out: bool) -> list[Decision]:
        p = self.pending
        matched = set()
        for pid in p.candidates:
            if pid not in rules.embeddings:
                continue
            s = rules.score(pid, emb)
            p.best = s if p.best is None else max(p.best, s)
            if s < rules.verify_threshold:
                continue
            if p.claim.kind == "pin":
                if pid not in p.pin_ok:
                    p.pin_ok[pid] = check_pin(p.claim.value, rules.records[pid].pin)
                if not p.pin_ok[pid]:
                    continue
            matched.add(pid)
        p.window.append(matched)
        while len(p.window) > self.n:
            p.window.popleft()
        counts = Counter(pid for s in p.window for pid in s)
        hit = next((pid for pid, c in counts.most_common() if c >= self.k), None)
        if hit is None:
            return []
        self.pending = None
        person = rules.names[hit]
        what = p.claim.describe()
        score = p.best
        if locked_out:
            return [Decision("denied", t, person_id=hit, person=person, score=score, detail=f"lockout ({what})")]
        reason = rules.refusal(hit, self.wall(t))
        if reason is not None:
            return [Decision("denied", t, person_id=hit, person=person, score=score, detail=f"{reason} ({what})")]
        return [Decision("granted", t, person_id=hit, person=person, score=score,
                         detail=f"{rules.mode}: {what}, 1:1 at {rules.verify_threshold:.4f}")]

    def _claim_denied(self, t: float, rules: AccessRules, why: str) -> Decision:
        p, self.pending = self.pending, None
        pid = p.candidates[0] if p.claim.kind == "badge" and p.candidates else None
        return Decision("denied", t, person_id=pid, person=rules.names.get(pid) if pid else None, score=p.best,
                        detail=f"{p.claim.describe()}: {why}")

    def _checked(self, d: Decision, rules: AccessRules) -> Decision:
        reason = rules.refusal(d.person_id, self.wall(d.t))
        if reason is None:
            return d
        return Decision("denied", d.t, person_id=d.person_id, person=d.person, score=d.score, margin=d.margin,
                        detail=reason)

    def _shown(self, decisions: list[Decision]) -> list[Decision]:
        if self.feedback is not None:
            for d in decisions:
                self.feedback.show(d.kind)
        return decisions


def build_access(cfg, relay, *, pin_factory=None, credentials=None, wall: Callable[[float], datetime] | None = None,
                 hardware: bool = True) -> AccessControl:
    """The hook ``cfg`` describes. ``hardware`` False (simulation) skips the GPIO/evdev readers and door inputs;
    ``credentials`` (a .jsonl file) adds the simulated reader. Any failure closes what was opened and raises."""
    from .reader_simulated import SimulatedReader

    a = cfg.access
    readers, door, feedback = [], None, None
    try:
        if credentials is not None:
            readers.append(SimulatedReader.from_file(credentials))
        if hardware:
            if a.wiegand is not None:
                from .wiegand import WiegandReader

                readers.append(WiegandReader(a.wiegand.d0_pin, a.wiegand.d1_pin, a.wiegand.frame_gap_s, pin_factory))
            if a.keyboard is not None:
                from .reader_evdev import EvdevReader

                reader = EvdevReader(a.keyboard.device, a.keyboard.kind, a.keyboard.entry_timeout_s)
                reader.open()
                readers.append(reader)
            if any(p is not None for p in (a.door.contact_pin, a.door.exit_pin, a.door.tamper_pin)):
                from .door import DoorMonitor

                door = DoorMonitor(a.door, relay, pin_factory)
            if a.feedback.granted_pin is not None or a.feedback.denied_pin is not None:
                from .feedback import Feedback

                feedback = Feedback(a.feedback, pin_factory)
    except BaseException:
        AccessControl(readers, door, feedback).close()
        raise
    p = cfg.policy
    return AccessControl(readers, door, feedback, wall or system_wall, k=p.k, n=p.n, face_gap_s=p.face_gap_s)
