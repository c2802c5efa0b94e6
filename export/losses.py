"""Losses on embeddings of a PxK batch: triplet margin loss with a miner, and pairwise binary classification.

Both normalise the embeddings first (the network's output is unnormalised; the runtime normalises too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .distances import normalize, pairwise_distances
from .miners import get_miner

LOSSES = ("triplet", "pair")


class TripletLoss(nn.Module):
    """mean over mined triplets of max(0, d(a, p) - d(a, n) + margin), d squared Euclidean by default (FaceNet).

    With ``mining="all"`` the mean is over the triplets that still violate the margin (batch-all, Hermans et al.):
    averaging over all of them would drown the few informative ones in zeros."""

    def __init__(self, margin: float = 0.2, mining: str = "semi-hard", squared: bool = True) -> None:
        super().__init__()
        self.margin = float(margin)
        self.mining = mining
        self.miner = get_miner(mining)
        self.squared = squared

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = pairwise_distances(normalize(emb), squared=self.squared)
        a, p, n = self.miner(dist, labels)
        if len(a) == 0:
            return emb.sum() * 0.0  # no valid triplet in this batch: a zero that keeps the graph
        losses = F.relu(dist[a, p] - dist[a, n] + self.margin)
        if self.mining == "all":
            active = losses > 0
            return losses[active].mean() if active.any() else losses.sum() * 0.0
        return losses.mean()


def pair_features(fa: torch.Tensor, fb: torch.Tensor, form: str = "abs", eps: float = 1e-6) -> torch.Tensor:
    """Siamese pair features: |f(a) - f(b)| ("abs"), or the chi-square form (f(a) - f(b))^2 / (|f(a)| + |f(b)|)
    (DeepFace; absolute values in the denominator because normalised embeddings have negative components)."""
    if form == "abs":
        return (fa - fb).abs()
    if form == "chi2":
        return (fa - fb) ** 2 / (fa.abs() + fb.abs() + eps)
    raise ValueError(f"unknown pair form {form!r}; choose 'abs' or 'chi2'")


class PairLoss(nn.Module):
    """Pairwise binary classification: every pair (i < j) of the batch -> logistic unit on the pair features ->
    binary cross-entropy against "same person". Positives are weighted by n_negative / n_positive so the many
    impostor pairs of a PxK batch do not swamp the few genuine ones."""

    def __init__(self, embedding_size: int = 128, form: str = "abs") -> None:
        super().__init__()
        self.form = form
        self.classifier = nn.Linear(embedding_size, 1)
        nn.init.constant_(self.classifier.weight, -1.0)  # start: larger difference -> less likely the same
        nn.init.constant_(self.classifier.bias, 1.0)

    def logits(self, emb: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        e = normalize(emb)
        return self.classifier(pair_features(e[i], e[j], self.form)).squeeze(1)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        target = (labels[i] == labels[j]).to(emb.dtype)
        n_pos = target.sum()
        n_neg = len(target) - n_pos
        pos_weight = (n_neg / n_pos.clamp_min(1.0)).detach() if n_pos > 0 else None
        return F.binary_cross_entropy_with_logits(self.logits(emb, i, j), target, pos_weight=pos_weight)


def build_loss(name: str, margin: float = 0.2, mining: str = "semi-hard", embedding_size: int = 128,
               pair_form: str = "abs", squared: bool = True) -> nn.Module:
    if name == "triplet":
        return TripletLoss(margin, mining, squared)
    if name == "pair":
        return PairLoss(embedding_size, pair_form)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
