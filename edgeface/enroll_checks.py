"""Identity checks at enrollment: one face must not get two names, one name must not hold two faces.

Every comparison is made by the model's scorer and every threshold is a false-accept rate read from the bundle's
calibration (:class:`edgeface.thresholds.Thresholds`, through :meth:`edgeface.recognizer.Recognizer.thresholds`),
so the same rules hold for dlib's compressed cosines and for any other model:

* **already enrolled**: a new photo whose embedding is (numerically) one the person already has (cosine >=
  :data:`SAME_PHOTO`: the same photo, through the same pipeline) adds nothing and is reported as "already enrolled";
* **one name, several people**: the person's photos (those already enrolled plus the new ones) must form one group
  where every photo matches at least one other at the ``same_face`` threshold (FAR 1e-2: two photos of one
  person nearly always reach it, two people rarely); otherwise the name is refused, naming the closest pair of
  photos that still does not match;
* **one face, two names**: a new photo that matches another enrolled person at the ``duplicate`` threshold (a FAR
  100 times stricter than the door's, so that hundreds of distinct people enroll without a false refusal) is
  refused, naming that person and the score. The same photo under a second name always is.

``allow_similar`` turns the two refusals into warnings (an explicit operator decision).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: two embeddings at least this similar (cosine) come from the same photo
SAME_PHOTO = 0.9995


@dataclass
class PersonCheck:
    """The verdict on one name's new photos: ``rows`` (indices into the new embeddings) to enroll,
    ``duplicates`` already enrolled, ``refusal`` (None when accepted), ``warnings`` (overridden refusals)."""

    name: str
    rows: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)


def disconnected_pair(scores: np.ndarray, threshold: float) -> tuple[int, int, float] | None:
    """None when every photo is linked to every other through pairs scoring ``>= threshold`` (``scores``: the
    square matrix of their scores); else the closest pair (i, j, score) between the group of photo 0 and the rest."""
    s = np.asarray(scores, np.float64)
    n = len(s)
    if n < 2:
        return None
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


def check_person(gallery, name: str, new: np.ndarray, labels: list[str], recognizer,
                 allow_similar: bool = False) -> PersonCheck:
    """Check ``new`` (k, D) unit embeddings of ``name`` against ``gallery`` (``labels[i]`` names new row i, e.g.
    its file), with ``recognizer``'s scorer and thresholds. Does not change the gallery."""
    th = recognizer.thresholds()
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
    pair = disconnected_pair(recognizer.scores(everyone, everyone), th.same_face)
    if pair is not None:
        i, j, score = pair
        problems.append(f"the photos of {name!r} do not all show one person: {names[i]} and {names[j]} score "
                        f"{score:.4f} < {th.same_face:.4f} (FAR 1e-2; no chain of matching photos links them)")
    dup = min(th.duplicate.value, SAME_PHOTO) if recognizer.scorer.kind == "cosine" else th.duplicate.value
    for other, best, k in similar_people(gallery, new[out.rows], recognizer, dup, skip=mine):
        problems.append(f"{labels[out.rows[k]]} matches the enrolled person {other.name!r} ({other.id}) with score "
                        f"{best:.4f} >= {dup:.4f} ({th.duplicate.source}): the same face under two names")
    if problems and allow_similar:
        out.warnings = problems
    elif problems:
        out.refusal = "; ".join(problems)
    return out


def similar_people(gallery, embeddings: np.ndarray, recognizer, threshold: float, skip=None):
    """(person, best score, which row of ``embeddings``) for every enrolled person (but ``skip``) that one of
    ``embeddings`` matches at ``threshold`` or above, best first."""
    if not len(gallery):
        return []
    m = recognizer.matcher(gallery)
    scores = m.person_scores(embeddings)  # (rows, people)
    out = []
    for j, person in enumerate(gallery.people):
        if person is skip:
            continue
        k = int(np.argmax(scores[:, j]))
        if scores[k, j] >= threshold:
            out.append((person, float(scores[k, j]), k))
    return sorted(out, key=lambda x: -x[1])
