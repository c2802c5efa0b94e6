"""Gate events: one record type shared by the gate loop, the audit log, stderr logging and --simulate.

Every thing the door daemon does that a person may want to know later (a decision, a relay pulse, a camera
dropping out, a reload) becomes one :class:`Event`. It is rendered three ways from the same fields, so the
journal line, the JSON line and the audit row can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from edgeface.names import printable

#: the kinds the gate emits; other strings are allowed (the audit log stores any kind)
KINDS = (
    "started", "stopping", "granted", "denied", "unknown", "unlock", "lockout",
    "camera_lost", "camera_reacquired", "reloaded", "reload_failed", "error",
    "gallery_installed", "gallery_refused", "fleet_connected", "fleet_disconnected", "fleet_reconnected",
)


def now_wall() -> str:
    """Wall-clock time as an ISO 8601 UTC string with milliseconds (what journald and SQLite sort well)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _clean(value):
    """JSON has no NaN/inf; a non-finite float becomes None rather than an invalid document."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Event:
    """One thing that happened at the gate.

    ``t`` is seconds since the gate started on the monotonic clock (never jumps with NTP); ``wall`` is the
    human-readable wall time. Optional fields are None when they do not apply to the kind.
    """

    kind: str
    t: float
    wall: str = field(default_factory=now_wall)
    person_id: str | None = None
    person: str | None = None
    score: float | None = None
    margin: float | None = None
    latency_ms: float | None = None
    duration_s: float | None = None
    detail: str | None = None
    #: who came closest, for events that name nobody (unknown, denied ambiguous, no_decision): best first,
    #: ``[{"person_id", "person", "score"}, ...]`` (at most two; empty when nobody is enrolled)
    candidates: list[dict] | tuple[dict, ...] | None = None
    #: the policy rule that decided (door, strict, threshold, ambiguous, lockout, cooldown, attempts, quality, ...)
    rule: str | None = None

    def to_json(self) -> dict:
        """A JSON-ready dict; ``event``, ``person``, ``score`` and ``t`` are always present, ``duration`` for unlocks."""
        out = {
            "event": self.kind,
            "t": round(float(self.t), 4),
            "wall": self.wall,
            "person": self.person,
            "person_id": self.person_id,
            "score": _clean(None if self.score is None else round(float(self.score), 4)),
        }
        if self.margin is not None:
            out["margin"] = _clean(round(float(self.margin), 4))
        if self.latency_ms is not None:
            out["latency_ms"] = _clean(round(float(self.latency_ms), 2))
        if self.duration_s is not None or self.kind == "unlock":
            out["duration"] = None if self.duration_s is None else _clean(round(float(self.duration_s), 4))
        if self.detail is not None:
            out["detail"] = self.detail
        if self.candidates is not None:
            out["candidates"] = candidates_json(self.candidates)
        if self.rule is not None:
            out["rule"] = self.rule
        return out

    def log_line(self) -> str:
        """One journald-friendly line: ``event=granted person="Ada L" score=0.712 ...`` (only fields that are set)."""
        parts = [f"event={self.kind}", f"t={self.t:.3f}"]
        for key, value, fmt in (
            ("person_id", self.person_id, None),
            ("person", self.person, None),
            ("score", self.score, "{:.3f}"),
            ("margin", self.margin, "{:.3f}"),
            ("latency_ms", self.latency_ms, "{:.1f}"),
            ("duration_s", self.duration_s, "{:.3f}"),
            ("rule", self.rule, None),
            ("detail", self.detail, None),
            *_candidate_fields(self.candidates),
        ):
            if value is None:
                continue
            parts.append(f"{key}={_quote(fmt.format(value) if fmt else str(value))}")
        return " ".join(parts)

    def as_dict(self) -> dict:
        return asdict(self)


def candidates_json(candidates) -> list[dict]:
    """The candidates as JSON-ready dicts (scores rounded to 4 places, non-finite ones None)."""
    return [{"person": c.get("person"), "person_id": c.get("person_id"),
             "score": _clean(None if c.get("score") is None else round(float(c["score"]), 4))} for c in candidates]


def _candidate_fields(candidates) -> list[tuple]:
    """``best="Ada L" best_score=0.412 second=Bob second_score=0.301`` for the log line."""
    out = []
    for label, c in zip(("best", "second"), candidates or ()):
        out += [(label, c.get("person") or c.get("person_id"), None), (f"{label}_score", c.get("score"), "{:.3f}")]
    return out


def _quote(text: str) -> str:
    """Quote a value when it has spaces, quotes, '=', a backslash, any control or invisible character (escaped
    as ``\\xNN`` / ``\\uNNNN`` by :func:`edgeface.names.printable`: ESC, NUL, ``\\x85``, ``\\u2028``, ...) or is
    empty: one line, always, that no terminal or log reader acts on."""
    escaped = printable(text)
    if text and escaped == text and not any(c in text for c in ' "='):
        return text
    return '"' + escaped.replace('"', '\\"') + '"'
