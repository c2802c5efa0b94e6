"""Who may enter, as one config + gallery resolve it: every person's access record, the badge index, each
person's embeddings for 1:1 scoring, the verification threshold and the group schedules.

Built by :func:`load_access` inside :func:`edgeface.device.pipeline.load_runtime` (and
:meth:`~edgeface.device.pipeline.Runtime.with_gallery`), so it is part of the runtime a reload replaces as a
whole: a malformed record or a badge given to two people raises there, and the gate keeps the previous gallery
(or refuses to start) instead of guessing who a badge belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from edgeface.access.credentials import AccessDataError, AccessRecord, find_pin_secret
from edgeface.access.schedule import Schedule, check_timezone, parse_schedule

MODES_1TO1 = ("face_and_badge", "face_and_pin")


@dataclass
class AccessRules:
    mode: str
    claim_window_s: float
    zone: ZoneInfo
    group_schedules: dict[str, Schedule]
    verify_threshold: float
    verify_source: str
    records: dict[str, AccessRecord]
    names: dict[str, str]
    embeddings: dict[str, np.ndarray]
    badges: dict[str, str]  # canonical badge number -> person id
    scorer: object = None  # the model's edgeface.scorer.Scorer (Recognizer.scorer)
    pin_secret: bytes | None = None  # the site's PIN secret ([access] pin_secret_file / the pin-secret credential)
    max_wrong_pins: int = 3  # [access] max_wrong_pins within pin_window_s lock a person's PIN for pin_lockout_s
    pin_window_s: float = 300.0
    pin_lockout_s: float = 900.0

    def refusal(self, person_id: str | None, now: datetime) -> str | None:
        """Why ``person_id`` may not enter at ``now`` (schedule, validity), or None."""
        if person_id is None or person_id not in self.records:
            return None
        return self.records[person_id].refusal(now, self.zone, self.group_schedules)

    def score(self, person_id: str, embedding: np.ndarray) -> float:
        """1:1: the best score of ``embedding`` against that person's enrolled embeddings, with the model's scorer."""
        return float(np.max(self.scorer.matrix(np.asarray(embedding, np.float32)[None], self.embeddings[person_id])))

    def pin_holders(self) -> list[str]:
        return [pid for pid, r in self.records.items() if r.pin is not None]


def load_access(cfg, gallery, scorer, thresholds) -> AccessRules:
    """The access rules of ``cfg`` over ``gallery``, scored by the model's ``scorer``
    (:attr:`edgeface.recognizer.Recognizer.scorer`); the 1:1 threshold is ``thresholds.verify``
    (:func:`edgeface.thresholds.resolve`: ``[access] verify_far`` / ``verify_threshold``, a ``<key>:verify``
    calibration, else the door's)."""
    a = cfg.access
    records, names, embeddings, badges = {}, {}, {}, {}
    for p in gallery.people:
        rec = AccessRecord.from_attributes(p.attributes, f"gallery {p.name!r}")
        records[p.id], names[p.id] = rec, p.name
        embeddings[p.id] = np.ascontiguousarray(p.embeddings, np.float32)
        for b in rec.badges:
            if b in badges and badges[b] != p.id:
                raise AccessDataError(f"badge {b} is given to both {names[badges[b]]!r} and {p.name!r}: "
                                      "fix it with edgeface people set ... --clear-badge")
            badges[b] = p.id
    schedules = {g: parse_schedule(text, f"[access] schedules.{g}") for g, text in a.schedules.items()}
    secret = find_pin_secret(a.pin_secret_file) if any(r.pin is not None for r in records.values()) else None
    return AccessRules(a.mode, a.claim_window_s, check_timezone(a.timezone), schedules, thresholds.verify.value,
                       thresholds.verify.source, records, names, embeddings, badges, scorer, secret,
                       a.max_wrong_pins, a.pin_window_s, a.pin_lockout_s)
