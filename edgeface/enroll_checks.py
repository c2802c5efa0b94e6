"""Identity checks at enrollment: one face must not get two names, one name must not hold two faces.

All decisions use the verification threshold ``t`` (cosine; the door accepts ``score >= t``):

* **already enrolled**: a new photo whose embedding is (numerically) one the person already has
  (cosine >= :data:`SAME_PHOTO`) adds nothing and is reported as "already enrolled";
* **one name, several people**: the person's photos (those already enrolled plus the new ones) must form one
  group where every photo matches at least one other at ``>= t`` (the graph of matching pairs is connected);
  otherwise the name is refused, naming the closest pair of photos that still does not match;
* **one face, two names**: a new photo that matches another enrolled person at ``>= t`` is refused, naming
  that person and the score (else the door would say "ambiguous" to both of them, or let one in as the other).

``allow_similar`` turns the two refusals into warnings (an explicit operator decision). The threshold comes
from :func:`similarity_threshold`: the gate config's ``policy.threshold``, else the bundle's calibrated one for
the model key, else :data:`DEFAULT_THRESHOLD`, which is conservative for the face-under-two-names check (lower
than the reference embedder's calibrated thresholds at FAR 1e-3, 0.36 on celeba-loose and 0.42 on ORL, so it
refuses look-alikes rather than let them share a door).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: the threshold used when neither the config nor the bundle has one (see the module docstring)
DEFAULT_THRESHOLD = 0.35
#: two embeddings at least this similar come from the same photo
SAME_PHOTO = 0.9995


def similarity_threshold(bundle, key: str, configured: float | None = None) -> tuple[float, str]:
    """(threshold, where it came from)."""
    if configured is not None:
        return float(configured), "the config's policy.threshold"
    cal = bundle.threshold(key) if bundle is not None else None
    if cal is not None:
        return float(cal.value), f"the bundle's calibrated threshold for {key} (FAR {cal.far:g})"
    return DEFAULT_THRESHOLD, (f"no calibrated threshold for {key}: the conservative default {DEFAULT_THRESHOLD} "
                               "(calibrate the bundle with edgeface calibrate)")


@dataclass
class PersonCheck:
    """The verdict on one name's new photos: ``rows`` (indices into the new embeddings) to enroll,
    ``duplicates`` already enrolled, ``refusal`` (None when accepted), ``warnings`` (overridden refusals)."""

    name: str
    rows: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)


def disconnected_pair(embeddings: np.ndarray, threshold: float) -> tuple[int, int, float] | None:
    """None when every photo is linked to every other through pairs scoring ``>= threshold``; else the
    closest pair (i, j, score) between the group of photo 0 and the rest."""
    e = np.asarray(embeddings, np.float32)
    n = len(e)
    if n < 2:
        return None
    s = e @ e.T
    linked = s >= threshold
    group = np.zeros(n, bool)
    group[0] = True
    frontier = [0]
    while frontier:
        i = frontier.pop()
        new = linked[i] & ~group
        group |= new
        frontier.extend(np.flatnonzero(new).tolist())
    if group.all():
        return None
    cross = np.where(group[:, None] & ~group[None, :], s, -np.inf)
    i, j = np.unravel_index(int(np.argmax(cross)), cross.shape)
    return int(i), int(j), float(s[i, j])


def check_person(gallery, name: str, new: np.ndarray, labels: list[str], threshold: float,
                 allow_similar: bool = False) -> PersonCheck:
    """Check ``new`` (k, D) unit embeddings of ``name`` against ``gallery`` (``labels[i]`` names new row i,
    e.g. its file). Does not change the gallery."""
    out = PersonCheck(name)
    new = np.asarray(new, np.float32)
    mine = gallery.find(name)
    mine = mine if mine is not None and mine.name == name else None
    enrolled = (mine.embeddings / np.linalg.norm(mine.embeddings, axis=1, keepdims=True)
                if mine is not None else np.zeros((0, new.shape[1]), np.float32))
    for i in range(len(new)):
        seen = np.concatenate([enrolled, new[out.rows]]) if out.rows else enrolled
        if len(seen) and float(np.max(seen @ new[i])) >= SAME_PHOTO:
            out.duplicates.append(i)
        else:
            out.rows.append(i)
    if not out.rows:
        return out
    problems = []
    everyone = np.concatenate([enrolled, new[out.rows]])
    names = [f"enrolled embedding #{k + 1} of {name!r}" for k in range(len(enrolled))] + [labels[r] for r in out.rows]
    pair = disconnected_pair(everyone, threshold)
    if pair is not None:
        i, j, score = pair
        problems.append(f"the photos of {name!r} do not all show one person: {names[i]} and {names[j]} score "
                        f"{score:.3f} < threshold {threshold:.4f} (and no chain of matching photos links them)")
    for other in gallery.people:
        if other is mine:
            continue
        o = other.embeddings / np.linalg.norm(other.embeddings, axis=1, keepdims=True)
        scores = new[out.rows] @ o.T
        k = int(np.argmax(np.max(scores, axis=1)))
        best = float(np.max(scores[k]))
        if best >= threshold:
            problems.append(f"{labels[out.rows[k]]} matches the enrolled person {other.name!r} ({other.id}) "
                            f"with score {best:.3f} >= threshold {threshold:.4f}: the same face under two names")
    if problems and allow_similar:
        out.warnings = problems
    elif problems:
        out.refusal = "; ".join(problems)
    return out
