"""Triplet and pairwise losses against naive per-triplet / per-pair loops on small random embeddings."""

import math

import pytest
import torch

from edgeface.export.distances import normalize
from edgeface.export.losses import PairLoss, TripletLoss, build_loss, pair_features

torch.set_num_threads(1)


def _batch(seed=0, p=4, k=3, d=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(p * k, d, generator=g) * 3.0, torch.arange(p).repeat_interleave(k)


def _d(x, y, squared):
    s = float(((x - y) ** 2).sum())
    return s if squared else math.sqrt(s)


@pytest.mark.parametrize("mining", ["batch-hard", "semi-hard", "all"])
@pytest.mark.parametrize("squared", [True, False])
def test_triplet_loss_matches_a_naive_loop(mining, squared):
    emb, labels = _batch(1)
    margin = 0.3
    got = float(TripletLoss(margin, mining, squared)(emb, labels))
    e, lab, n = normalize(emb), labels.tolist(), len(labels)
    per = []
    for a in range(n):
        pos = [p for p in range(n) if p != a and lab[p] == lab[a]]
        neg = [q for q in range(n) if lab[q] != lab[a]]
        if mining == "batch-hard":
            dp = max(_d(e[a], e[p], squared) for p in pos)
            dn = min(_d(e[a], e[q], squared) for q in neg)
            per.append(max(dp - dn + margin, 0.0))
            continue
        for p in pos:
            dp = _d(e[a], e[p], squared)
            if mining == "semi-hard":
                far = [_d(e[a], e[q], squared) for q in neg if _d(e[a], e[q], squared) > dp]
                dn = min(far) if far else max(_d(e[a], e[q], squared) for q in neg)
                per.append(max(dp - dn + margin, 0.0))
            else:
                per.extend(max(dp - _d(e[a], e[q], squared) + margin, 0.0) for q in neg)
    if mining == "all":
        per = [v for v in per if v > 0]
    want = sum(per) / len(per)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_triplet_loss_is_zero_once_identities_are_separated_by_the_margin():
    labels = torch.tensor([0, 0, 1, 1])
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]])
    for mining in ("batch-hard", "semi-hard", "all"):
        assert float(TripletLoss(0.2, mining)(emb, labels)) == 0.0


def test_triplet_loss_without_positives_is_zero_but_differentiable():
    emb = torch.randn(3, 4, requires_grad=True)
    loss = TripletLoss()(emb, torch.tensor([0, 1, 2]))
    loss.backward()
    assert float(loss) == 0.0 and emb.grad is not None


@pytest.mark.parametrize("form", ["abs", "chi2"])
def test_pair_loss_matches_a_naive_loop(form):
    emb, labels = _batch(2, p=3, k=3)
    loss = PairLoss(embedding_size=emb.shape[1], form=form)
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.randn(1, emb.shape[1], generator=torch.Generator().manual_seed(5)))
        loss.classifier.bias.fill_(0.3)
    got = float(loss(emb, labels))
    e, lab, n = normalize(emb), labels.tolist(), len(labels)
    w, b = loss.classifier.weight[0], float(loss.classifier.bias)
    terms = []
    for i in range(n):
        for j in range(i + 1, n):
            fa, fb = e[i], e[j]
            feat = (fa - fb).abs() if form == "abs" else (fa - fb) ** 2 / (fa.abs() + fb.abs() + 1e-6)
            prob = 1.0 / (1.0 + math.exp(-(float((w * feat).sum()) + b)))
            terms.append((lab[i] == lab[j], prob))
    n_pos = sum(1 for s, _ in terms if s)
    n_neg = len(terms) - n_pos
    want = sum(-(n_neg / n_pos) * math.log(p) if s else -math.log(1 - p) for s, p in terms) / len(terms)
    assert got == pytest.approx(want, rel=1e-4)


def test_pair_features_reject_unknown_form():
    with pytest.raises(ValueError):
        pair_features(torch.zeros(1, 2), torch.zeros(1, 2), "cosine")


def test_build_loss_refuses_unknown_names():
    with pytest.raises(ValueError):
        build_loss("contrastive")
    with pytest.raises(ValueError):
        build_loss("triplet", mining="hardest")
