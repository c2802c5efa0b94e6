"""1:N matching agrees with a naive loop over people and their embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeface.gallery import Gallery, GalleryEmbeddingSizeError
from edgeface.match import SOLE_PERSON_MARGIN, Matcher

D = 32


def naive(gallery: Gallery, q: np.ndarray):
    """Best and second-best person by the best cosine over each person's embeddings, one at a time."""
    q = q / np.linalg.norm(q)
    scores = []
    for p in gallery.people:
        best = -math.inf
        for e in p.embeddings:
            best = max(best, float(np.dot(q, e / np.linalg.norm(e))))
        scores.append((best, p.id, p.name))
    scores.sort(key=lambda t: -t[0])
    return scores


@pytest.fixture
def gallery():
    rng = np.random.default_rng(7)
    g = Gallery.new("00" * 32, D)
    for i in range(40):
        g.add(f"p{i}", rng.standard_normal((int(rng.integers(1, 5)), D)))
    return g


def test_match_batch_agrees_with_naive_loop(gallery):
    rng = np.random.default_rng(8)
    # half the queries are noisy copies of enrolled vectors (a clear winner), half random (close calls)
    near = np.stack([gallery.people[i].embeddings[-1] for i in range(0, 40, 2)])
    queries = np.concatenate([near + 0.3 * rng.standard_normal(near.shape), rng.standard_normal((20, D))])
    found = Matcher(gallery).match_batch(queries.astype(np.float32))
    assert len(found) == len(queries)
    for q, m in zip(queries, found):
        ref = naive(gallery, q)
        assert m.person_id == ref[0][1] and m.name == ref[0][2]
        assert m.score == pytest.approx(ref[0][0], abs=1e-5)
        assert m.second_person_id == ref[1][1]
        assert m.margin == pytest.approx(ref[0][0] - ref[1][0], abs=1e-5)
        assert m.margin >= 0


def test_single_match_equals_batch_row(gallery):
    q = gallery.people[5].embeddings[0] + 0.1
    m = Matcher(gallery)
    assert m.match(q) == m.match_batch(q[None])[0]
    assert m.match(q).name == "p5"


def test_several_photos_of_one_person_do_not_shrink_the_margin():
    rng = np.random.default_rng(3)
    g = Gallery.new("00" * 32, D)
    a = rng.standard_normal(D)
    g.add("alice", np.stack([a, a + 0.01 * rng.standard_normal(D)]))  # two near-identical photos
    g.add("bob", rng.standard_normal((1, D)))
    m = Matcher(g).match(a)
    assert m.name == "alice" and m.second_person_id == g.find("bob").id
    assert m.margin > 0.3


def test_one_person_and_empty_gallery():
    g = Gallery.new("00" * 32, D)
    assert Matcher(g).match(np.ones(D)) is None
    assert Matcher(g).match_batch(np.ones((3, D))) == [None, None, None]
    g.add("solo", np.ones((2, D)))
    m = Matcher(g).match(np.ones(D))
    assert m.name == "solo" and m.score == pytest.approx(1.0) and m.margin == SOLE_PERSON_MARGIN
    assert m.second_person_id is None


def test_wrong_query_size(gallery):
    with pytest.raises(GalleryEmbeddingSizeError, match="32-d"):
        Matcher(gallery).match(np.ones(D + 1))
