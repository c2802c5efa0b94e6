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
  score (the model's scorer, the face the policy fused from the current appearance's last ``policy.n`` usable
  frames against *their* embeddings) reaches the verification threshold once the appearance has ``policy.k``
  usable frames (frames before the claim count: the person may have been at the door first). Nobody else's
  similarity matters. A PIN is checked (scrypt) only against people whose face already matches, so it costs one
  hash per candidate, and the PIN is forgotten when the claim is decided.
* a claim with no matching face within ``claim_window_s`` is ``denied`` (detail says so); a claim during a
  recognition lockout is ``denied`` (``lockout``); outside the schedule: ``denied`` with detail
  ``outside_schedule`` (``expired`` / ``not_yet_valid`` for validity dates).
* **Wrong PINs.** A PIN typed while a person's face matches (at the verification threshold) and that is not
  their PIN is ``denied`` at once (rule ``pin``) and counted against that person. ``[access] max_wrong_pins``
  of them within ``pin_window_s`` start a ``lockout`` event (rule ``pin_attempts``) and lock that person's PIN
  entry for ``pin_lockout_s``: meanwhile every PIN typed with their face is ``denied`` (rule ``lockout``)
  without being checked, the right one too. So a photo of an employee held to the camera gets
  ``max_wrong_pins`` guesses per lockout, not one per keypress (and no scrypt hash is spent on the rest).
* **Cooldown.** After a grant, the same person is ``denied`` (rule ``cooldown``) for ``[policy] cooldown_s``
  whatever the credential: ten swipes of one badge open the door once, as ten passes of one face do.

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
from edgeface.errors import EdgefaceError

from ..policy import MAX_TRACKED, Decision
from .claim import Claim, ReaderFault
from .rules import MODES_1TO1, AccessRules

log = logging.getLogger(__name__)


class AccessHardwareError(EdgefaceError):
    """A reader, door input or feedback output could not be opened (a GPIO line busy, a device missing)."""


@dataclass
class _Pending:
    claim: Claim
    candidates: list[str]
    best: float | None = None
    pin_ok: dict[str, bool] = field(default_factory=dict)


def system_wall(_t: float) -> datetime:
    return datetime.now(timezone.utc)


def simulated_wall(start: datetime) -> Callable[[float], datetime]:
    """Wall time for a replay: ``start`` (aware) plus the video time, added in UTC (adding to a local time would
    add wall-clock time, an hour off across a DST change)."""
    start = start.astimezone(timezone.utc)
    return lambda t: start + timedelta(seconds=float(t))


class AccessControl:
    def __init__(self, readers=(), door=None, feedback=None, wall: Callable[[float], datetime] = system_wall,
                 k: int = 3) -> None:
        self.readers = list(readers)
        self.door = door
        self.feedback = feedback
        self.wall = wall
        self.k = k
        self.pending: _Pending | None = None
        self.stats: Counter[str] = Counter()
        self.cooldown_s = 10.0  # [policy] cooldown_s, from the runtime on every call
        self._last_grant: dict[str, float] = {}  # person id -> time of their last grant (any credential)
        self._wrong_pins: dict[str, deque] = {}  # person id -> times of wrong PINs typed with their face
        self._pin_locked: dict[str, float] = {}  # person id -> time their PIN entry is locked until
        self._face: Callable[[], tuple] = lambda: (None, 0)  # the policy's fused face of the current appearance

    # -- gate hooks -----------------------------------------------------------------------------------
    def decide(self, t: float, result, decisions: list[Decision], runtime, locked_out: bool = False,
               fused: Callable[[], tuple] | None = None) -> list[Decision]:
        """After the policy, for one processed frame. ``fused`` returns the policy's (fused face, usable frames)
        of the current appearance (:meth:`edgeface.device.policy.Policy.fused`)."""
        rules: AccessRules = runtime.access
        self.k = runtime.params.k
        self.cooldown_s = runtime.params.cooldown_s
        if fused is not None:
            self._face = fused
        out = []
        for d in decisions:
            if d.kind == "granted":
                if rules.mode in MODES_1TO1:
                    continue  # a face alone opens nothing in a 1:1 mode; the claim below decides
                d = self._cooled(self._checked(d, rules))
            out.append(d)
        if self.pending is not None and result is not None and result.usable:
            out.extend(self._verify(t, rules, locked_out))
        return self._shown(out)

    def poll(self, t: float, runtime, locked_out: bool = False) -> list[Decision]:
        rules: AccessRules = runtime.access
        self.cooldown_s = runtime.params.cooldown_s
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
                return out + [self._cooled(Decision("granted", t, person_id=pid, person=person,
                                                    detail=f"face_or_badge: {what}"))]
            candidates = [pid]
        else:
            if mode != "face_and_pin":
                return out + [Decision("denied", t, detail=f"PIN entry is not accepted in mode {mode}")]
            candidates = rules.pin_holders()
            if not candidates:
                return out + [Decision("denied", t, detail="PIN entered, but nobody enrolled has a PIN")]
        if locked_out:
            return out + [Decision("denied", t, detail=f"lockout ({what})", rule="lockout")]
        self.pending = _Pending(claim, candidates)
        return out + self._verify(t, rules, locked_out)  # the face may have been at the door before the claim

    def _verify(self, t: float, rules: AccessRules, locked_out: bool) -> list[Decision]:
        p = self.pending
        face, usable = self._face()
        if face is None or usable < self.k:
            return []
        hit, wrong, locked = None, [], []
        for pid in p.candidates:
            if pid not in rules.embeddings:
                continue
            s = rules.score(pid, face)
            p.best = s if p.best is None else max(p.best, s)
            if s < rules.verify_threshold:
                continue
            if p.claim.kind == "pin":
                if self._pin_lock(pid, t) is not None:
                    locked.append(pid)  # never checked while locked: a locked PIN is no guessing oracle
                    continue
                if pid not in p.pin_ok:
                    p.pin_ok[pid] = check_pin(p.claim.value, rules.records[pid].pin, rules.pin_secret)
                if not p.pin_ok[pid]:
                    wrong.append(pid)
                    continue
            hit = pid
            break
        if hit is None:
            return self._pin_refused(t, rules, wrong, locked) if wrong or locked else []
        self.pending = None
        person = rules.names[hit]
        what = p.claim.describe()
        score = p.best
        if locked_out:
            return [Decision("denied", t, person_id=hit, person=person, score=score, detail=f"lockout ({what})",
                             rule="lockout")]
        reason = rules.refusal(hit, self.wall(t))
        if reason is not None:
            return [Decision("denied", t, person_id=hit, person=person, score=score, detail=f"{reason} ({what})",
                             rule="schedule")]
        return [self._cooled(Decision("granted", t, person_id=hit, person=person, score=score,
                                      detail=f"{rules.mode}: {what}, 1:1 at {rules.verify_threshold:.4f}",
                                      rule="verify"))]

    # -- wrong PINs and cooldown -------------------------------------------------------------------------
    def _pin_lock(self, pid: str, t: float) -> float | None:
        """Until when ``pid``'s PIN entry is locked, or None."""
        until = self._pin_locked.get(pid)
        if until is not None and t >= until:
            del self._pin_locked[pid]
            until = None
        return until

    def _pin_refused(self, t: float, rules: AccessRules, wrong: list[str], locked: list[str]) -> list[Decision]:
        """The pending PIN claim matched faces (``wrong``: not their PIN; ``locked``: their PIN entry is locked):
        denied now, each wrong PIN counted against its person, a lockout started when they reach the limit."""
        p, self.pending = self.pending, None
        lockouts = [d for pid in wrong for d in self._wrong_pin(pid, t, rules)]
        who = (wrong or locked)[0]
        if wrong:
            n = rules.max_wrong_pins if lockouts else len(self._wrong_pins.get(who, ()))
            detail, rule = (f"PIN: wrong PIN for the face at the door ({n} of {rules.max_wrong_pins} within "
                            f"{rules.pin_window_s:g} s)"), "pin"
        else:
            left = self._pin_locked[who] - t
            detail, rule = (f"PIN: PIN entry for this face is locked for {left:.0f} s more (after "
                            f"{rules.max_wrong_pins} wrong PINs); the PIN was not checked"), "lockout"
        return [Decision("denied", t, person_id=who, person=rules.names.get(who), score=p.best, detail=detail,
                         rule=rule)] + lockouts

    def _wrong_pin(self, pid: str, t: float, rules: AccessRules) -> list[Decision]:
        for other in [k for k, q in self._wrong_pins.items() if not q or t - q[-1] > rules.pin_window_s]:
            del self._wrong_pins[other]  # bounded: only people with a wrong PIN within the window are kept
        q = self._wrong_pins.get(pid)
        if q is None:
            if len(self._wrong_pins) >= MAX_TRACKED:  # cannot remember another: lock rather than forget
                q = deque([t] * rules.max_wrong_pins)
            else:
                q = self._wrong_pins[pid] = deque()
        while q and t - q[0] > rules.pin_window_s:
            q.popleft()
        q.append(t)
        if len(q) < rules.max_wrong_pins:
            return []
        self._wrong_pins.pop(pid, None)  # used up: after the lockout, as many wrong PINs again
        self._pin_locked[pid] = t + rules.pin_lockout_s
        return [Decision("lockout", t, person_id=pid, person=rules.names.get(pid), rule="pin_attempts", detail=(
            f"{rules.max_wrong_pins} wrong PINs typed with this person's face within {rules.pin_window_s:g} s: "
            f"their PIN entry is locked for {rules.pin_lockout_s:g} s"))]

    def _cooled(self, d: Decision) -> Decision:
        """A grant, or ``denied`` (rule ``cooldown``) when the same person was granted within ``cooldown_s``."""
        if d.kind != "granted" or d.person_id is None:
            return d
        self._last_grant = {k: v for k, v in self._last_grant.items() if d.t - v < self.cooldown_s}
        last = self._last_grant.get(d.person_id)
        why = None
        if last is not None:
            why = f"cooldown: granted {d.t - last:.1f} s ago (cooldown_s {self.cooldown_s:g})"
        elif len(self._last_grant) >= MAX_TRACKED:  # cannot remember another cooldown: refuse rather than forget
            why = "cooldown: too many recent unlocks"
        if why is not None:
            return Decision("denied", d.t, person_id=d.person_id, person=d.person, score=d.score, margin=d.margin,
                            detail=f"{why} ({d.detail})" if d.detail else why, rule="cooldown")
        self._last_grant[d.person_id] = d.t
        return d

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
    except BaseException as exc:
        AccessControl(readers, door, feedback).close()
        if isinstance(exc, Exception) and not isinstance(exc, EdgefaceError):  # gpiozero, evdev: one line
            raise AccessHardwareError(f"[access] inputs cannot be opened: {type(exc).__name__}: {exc}") from None
        raise
    return AccessControl(readers, door, feedback, wall or system_wall, k=cfg.policy.k)
