"""Miners and distances against naive per-triplet Python loops on small random embeddings."""

import itertools

import pytest
import torch

from edgeface.export.distances import normalize, pairwise_distances
from edgeface.export.miners import all_triplets, batch_hard, semi_hard

torch.set_num_threads(1)


def _batch(seed=0, p=4, k=3, d=8):
    g = torch.Generator().manual_seed(seed)
    emb = normalize(torch.randn(p * k, d, generator=g))
    labels = torch.arange(p).repeat_interleave(k)
    return emb, labels[torch.randperm(p * k, generator=g)]


@pytest.mark.parametrize("squared", [True, False])
def test_pairwise_distances_match_naive(squared):
    emb, _ = _batch()
    d = pairwise_distances(emb, squared=squared)
    for i, j in itertools.product(range(len(emb)), repeat=2):
        ref = float(((emb[i] - emb[j]) ** 2).sum())
        ref = ref if squared else ref ** 0.5
        assert abs(float(d[i, j]) - ref) < 1e-5
    assert torch.all(d.diagonal() == 0)


def test_sqrt_distance_has_finite_gradient_at_duplicates():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    pairwise_distances(emb, squared=False).sum().backward()
    assert torch.all(torch.isfinite(emb.grad))


def _naive_valid(labels):
    n = len(labels)
    return [(a, p, q) for a in range(n) for p in range(n) for q in range(n)
            if a != p and labels[a] == labels[p] and labels[q] != labels[a]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_triplets_is_every_valid_triplet(seed):
    emb, labels = _batch(seed)
    a, p, n = all_triplets(pairwise_distances(emb), labels)
    got = sorted(zip(a.tolist(), p.tolist(), n.tolist()))
    assert got == sorted(_naive_valid(labels.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_picks_farthest_positive_and_nearest_negative(seed):
    emb, labels = _batch(seed)
    d = pairwise_distances(emb)
    a, p, n = batch_hard(d, labels)
    lab = labels.tolist()
    assert a.tolist() == list(range(len(lab)))
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        pos = [j for j in range(len(lab)) if j != ai and lab[j] == lab[ai]]
        neg = [j for j in range(len(lab)) if lab[j] != lab[ai]]
        assert float(d[ai, pi]) == max(float(d[ai, j]) for j in pos)
        assert float(d[ai, ni]) == min(float(d[ai, j]) for j in neg)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_semi_hard_follows_the_facenet_rule(seed):
    emb, labels = _batch(seed, p=5, k=3)
    d = pairwise_distances(emb)
    a, p, n = semi_hard(d, labels)
    lab = labels.tolist()
    pairs = [(i, j) for i in range(len(lab)) for j in range(len(lab)) if i != j and lab[i] == lab[j]]
    assert sorted(zip(a.tolist(), p.tolist())) == sorted(pairs)
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        negs = [j for j in range(len(lab)) if lab[j] != lab[ai]]
        farther = [j for j in negs if float(d[ai, j]) > float(d[ai, pi])]
        want = min(float(d[ai, j]) for j in farther) if farther else max(float(d[ai, j]) for j in negs)
        assert float(d[ai, ni]) == want


def test_miners_skip_anchors_without_positives():
    emb = normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
    labels = torch.tensor([0, 0, 1, 2])  # only identity 0 has a positive
    d = pairwise_distances(emb)
    for miner in (batch_hard, semi_hard, all_triplets):
        a, p, n = miner(d, labels)
        assert set(a.tolist()) == {0, 1}
        assert all(labels[x] == labels[y] != labels[z] for x, y, z in zip(a, p, n))
