"""The run summary: what the gate did and how fast, as one JSON event and one human line.

``edgeface gate --simulate`` ends with it; the daemon logs it every ``audit.summary_every_min`` minutes (the
figures of that interval) and once when it stops. The JSON has exactly these keys::

    {"event": "summary", "frames": N, "face_frames": M,
     "latency_ms": {"p50": ..., "p95": ...}, "face_latency_ms": {"p50": ..., "p95": ...},
     "stages_ms": {"detect": ..., "landmarks": ..., "align": ..., "embed": ..., "match": ...},
     "decisions": {"granted": ..., "denied": ..., "unknown": ..., "no_decision": ...}, "unlocks": ...}

``frames`` counts the frames the pipeline processed; ``face_frames`` those whose face went through the whole
chain (landmarks, crop, embedding and match: a usable face). ``latency_ms`` is frame -> decision (pipeline and
policy) over all processed frames, ``face_latency_ms`` over the face frames; ``stages_ms`` are per-stage medians
over the frames in which that stage ran (``align`` is the crop and its quality gate), None when it never ran.
``decisions`` and ``unlocks`` count the events emitted in the same span. Percentiles and medians are taken over
the last :data:`MAX_SAMPLES` frames of the span (memory stays bounded with ``summary_every_min = 0``); the counts
are exact.
"""

from __future__ import annotations

import json
from collections import deque

import numpy as np

STAGES = ("detect", "landmarks", "align", "embed", "match")
DECISIONS = ("granted", "denied", "unknown", "no_decision")
#: latency samples kept per span (about 1.4 hours at 10 frames per second)
MAX_SAMPLES = 50_000


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)


def _pcts(values) -> dict:
    if not values:
        return {"p50": None, "p95": None}
    a = np.asarray(values, np.float64)
    return {"p50": _round(np.percentile(a, 50)), "p95": _round(np.percentile(a, 95))}


class RunSummary:
    """Counts and latencies of one span of a gate run; :meth:`reset` starts the next span."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.frames = self.face_frames = 0
        self.latencies: deque[float] = deque(maxlen=MAX_SAMPLES)
        self.face_latencies: deque[float] = deque(maxlen=MAX_SAMPLES)
        self.stages: dict[str, deque[float]] = {s: deque(maxlen=MAX_SAMPLES) for s in STAGES}
        self.decisions = dict.fromkeys(DECISIONS, 0)
        self.unlocks = 0

    def frame(self, result, latency_ms: float) -> None:
        """One processed frame: its :class:`~edgeface.device.pipeline.FrameResult` and frame -> decision time."""
        self.frames += 1
        self.latencies.append(float(latency_ms))
        if result.usable:
            self.face_frames += 1
            self.face_latencies.append(float(latency_ms))
        for name, ms in (result.stages or {}).items():
            if name in self.stages:
                self.stages[name].append(float(ms))

    def event(self, kind: str) -> None:
        """One emitted event (only decisions and unlocks are counted)."""
        if kind in self.decisions:
            self.decisions[kind] += 1
        elif kind == "unlock":
            self.unlocks += 1

    def to_json(self) -> dict:
        return {
            "event": "summary",
            "frames": self.frames,
            "face_frames": self.face_frames,
            "latency_ms": _pcts(self.latencies),
            "face_latency_ms": _pcts(self.face_latencies),
            "stages_ms": {s: _round(np.median(v)) if v else None for s, v in self.stages.items()},
            "decisions": dict(self.decisions),
            "unlocks": self.unlocks,
        }

    def report(self, json_out, log_out) -> dict:
        """Write the JSON line to ``json_out`` and the human line to ``log_out`` (either may be None); returns the
        JSON document. A closed stream is not an error here: the summary is the last thing written."""
        doc = self.to_json()
        for out, text in ((json_out, json.dumps(doc)), (log_out, self.human_line(doc))):
            if out is not None:
                try:
                    print(text, file=out, flush=True)
                except (OSError, ValueError):
                    pass
        return doc

    def human_line(self, doc: dict | None = None) -> str:
        """The same figures in one line for a person (stderr, journald)."""
        d = doc or self.to_json()

        def ms(v):
            return "-" if v is None else f"{v:.1f}"

        stages = " ".join(f"{k} {ms(v)}" for k, v in d["stages_ms"].items())
        decisions = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in d["decisions"].items())
        return (f"summary: {d['frames']} frames, {d['face_frames']} with a face; frame->decision p50 "
                f"{ms(d['latency_ms']['p50'])} / p95 {ms(d['latency_ms']['p95'])} ms, face frames p50 "
                f"{ms(d['face_latency_ms']['p50'])} / p95 {ms(d['face_latency_ms']['p95'])} ms; stage medians ms: "
                f"{stages}; decisions: {decisions}; unlocks {d['unlocks']}")
