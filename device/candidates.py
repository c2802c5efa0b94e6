"""The best and second-best gallery candidates of a run of frames, for events that explain a decision.

An ``unknown``, ``denied ambiguous`` or ``no_decision`` event names nobody, so it carries who came closest:
``candidates = [{"person_id", "person", "score"}, ...]`` (at most two, best first, one entry per person,
each with the best score that person reached in the window or appearance).

:class:`TopCandidates` keeps exactly the two persons with the highest maximum score in constant memory: a
person outside the two whose earlier scores were all at most the current second-best can only enter with a
new score, so its running maximum never needs remembering.
"""

from __future__ import annotations

import math


class TopCandidates:
    """The two persons with the highest best score seen so far (bounded: two slots)."""

    def __init__(self) -> None:
        self._slots: list[tuple[float, str, str | None]] = []  # (score, person_id, name), best first

    def add(self, person_id: str | None, name: str | None, score: float | None) -> None:
        if person_id is None or score is None or not math.isfinite(score):
            return
        for i, (s, pid, _) in enumerate(self._slots):
            if pid == person_id:
                if score > s:
                    self._slots[i] = (float(score), person_id, name)
                break
        else:
            self._slots.append((float(score), person_id, name))
        self._slots.sort(key=lambda slot: -slot[0])
        del self._slots[2:]

    def clear(self) -> None:
        self._slots.clear()

    def __bool__(self) -> bool:
        return bool(self._slots)

    def as_list(self) -> tuple[dict, ...]:
        """Best first: ``({"person_id": ..., "person": ..., "score": ...}, ...)``; empty when nobody matched."""
        return tuple({"person_id": pid, "person": name, "score": score} for score, pid, name in self._slots)
