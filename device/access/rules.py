"""Who may enter, as one config + gallery resolve it: every person's access record, the badge index, each
person's embeddings for 1:1 scoring, the verification threshold and the group schedules.

Built by :func:`load_access` inside :func:`edgeface.device.pipeline.load_runtime`, so it is part of the runtime a
SIGHUP reload replaces as a whole: a malformed record or a badge given to two people raises there, and the gate
keeps the previous gallery (or refuses to start) instead of guessing who a badge belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from edgeface.access.credentials import AccessDataError, AccessRecord
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

    def refusal(self, person_id: str | None, now: datetime) -> str | None:
        """Why ``person_id`` may not enter at ``now`` (schedule, validity), or None."""
        if person_id is None or person_id not in self.records:
            return None
        return self.records[person_id].refusal(now, self.zone, self.group_schedules)

    def score(self, person_id: str, embedding: np.ndarray) -> float:
        """1:1: the best cosine of ``embedding`` against that person's enrolled embeddings."""
        return float(np.max(self.embeddings[person_id] @ np.asarray(embedding, np.float32)))

    def pin_holders(self) -> list[str]:
        return [pid for pid, r in self.records.items() if r.pin is not None]


def resolve_verify_threshold(cfg, bundle, key: str, identify_threshold: float) -> tuple[float, str]:
    """``[access] verify_threshold``, else the bundle's ``thresholds["<key>:verify"]`` (calibrate --mode
    verify), else the 1:N threshold (calibrated on the same single comparisons, so never looser)."""
    if cfg.access.verify_threshold is not None:
        return float(cfg.access.verify_threshold), "config"
    cal = bundle.threshold(f"{key}:verify")
    if cal is not None:
        return float(cal.value), f"1:1 calibrated at FAR {cal.far:g}"
    return float(identify_threshold), "the 1:N threshold (no 1:1 calibration in the bundle)"


def load_access(cfg, bundle, key: str, gallery, identify_threshold: float) -> AccessRules:
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
    value, source = resolve_verify_threshold(cfg, bundle, key, identify_threshold)
    schedules = {g: parse_schedule(text, f"[access] schedules.{g}") for g, text in a.schedules.items()}
    return AccessRules(a.mode, a.claim_window_s, check_timezone(a.timezone), schedules, value, source, records,
                       names, embeddings, badges)
