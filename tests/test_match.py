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


def _big_gallery(n_people=3000, seed=11):
    rng = np.random.default_rng(seed)
    g = Gallery.new("00" * 32, 128)
    for i in range(n_people):
        g.add(f"p{i}", rng.standard_normal((1 + (i % 3 == 0), 128)))
    return g


def test_int8_stage_gives_the_exact_answers():
    g = _big_gallery()
    exact, fast = Matcher(g, fast=False), Matcher(g, fast=True)
    assert fast._fast is not None and exact._fast is None
    rng = np.random.default_rng(12)
    near = np.stack([g.people[i].embeddings[0] for i in range(0, 3000, 100)])
    queries = np.concatenate([near + 0.5 * rng.standard_normal(near.shape), rng.standard_normal((30, 128))])
    for a, b in zip(exact.match_batch(queries), fast.match_batch(queries)):
        assert (a.person_id, a.second_person_id) == (b.person_id, b.second_person_id)
        assert b.score == pytest.approx(a.score, abs=1e-5) and b.margin == pytest.approx(a.margin, abs=1e-5)
    assert fast.fallbacks < len(queries)  # most answers were proven by the int8 bound


def test_int8_scores_stay_within_their_bound():
    from edgeface.int8_scores import Int8Scorer

    rng = np.random.default_rng(13)
    m = rng.standard_normal((5000, 128)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    q = rng.standard_normal((8, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    approx, bound = Int8Scorer(m).scores(q)
    err = np.abs(approx - q @ m.T).max(axis=1)
    assert np.all(err <= bound) and np.all(bound < 0.05) and np.all(err > 0)


def test_unprovable_candidates_fall_back_to_the_full_product():
    """Hundreds of people almost equally close to the query: the int8 bound cannot separate them from the
    rows outside the candidates, so the matcher recomputes in float32 and still answers exactly."""
    rng = np.random.default_rng(14)
    base = rng.standard_normal(128)
    g = Gallery.new("00" * 32, 128)
    for i in range(400):
        g.add(f"p{i}", base + 0.02 * rng.standard_normal((1, 128)))
    exact, fast = Matcher(g, fast=False), Matcher(g, fast=True)
    q = base + 0.02 * rng.standard_normal(128)
    assert fast.match(q).person_id == exact.match(q).person_id
    assert fast.fallbacks == 1
