"""Online triplet mining inside a PxK batch (P identities x K images each).

A miner takes the (B, B) distance matrix and the (B,) labels and returns index tensors (anchor, positive,
negative) of the triplets the loss should use. Kept apart from the loss so each is small and testable against
a naive loop (tests/test_miners.py).

- ``batch-hard`` (Hermans et al. 2017): per anchor, its farthest positive and nearest negative.
- ``semi-hard`` (Schroff et al. 2015, FaceNet; the TensorFlow ``triplet_semihard_loss`` rule): per positive pair
  (a, p), the nearest negative that is still farther than p; if no negative is farther, the farthest negative.
- ``all``: every valid triplet (a, p, n), a != p, label(a) == label(p) != label(n).
"""

from __future__ import annotations

import torch

MININGS = ("batch-hard", "semi-hard", "all")


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard(dist: torch.Tensor, labels: torch.Tensor):
    pos, neg = _masks(labels)
    anchors = torch.nonzero(pos.any(1) & neg.any(1)).flatten()
    d = dist.detach()
    hardest_p = torch.where(pos, d, torch.full_like(d, -float("inf"))).argmax(1)
    hardest_n = torch.where(neg, d, torch.full_like(d, float("inf"))).argmin(1)
    return anchors, hardest_p[anchors], hardest_n[anchors]


def semi_hard(dist: torch.Tensor, labels: torch.Tensor):
    pos, neg = _masks(labels)
    a, p = torch.nonzero(pos & neg.any(1, keepdim=True), as_tuple=True)
    d = dist.detach()
    d_an = d[a]  # (T, B) distances from each pair's anchor
    d_ap = d[a, p][:, None]
    negs = neg[a]
    farther = negs & (d_an > d_ap)
    inf = torch.full_like(d_an, float("inf"))
    nearest_farther = torch.where(farther, d_an, inf).argmin(1)
    farthest = torch.where(negs, d_an, -inf).argmax(1)
    n = torch.where(farther.any(1), nearest_farther, farthest)
    return a, p, n


def all_triplets(dist: torch.Tensor, labels: torch.Tensor):
    pos, neg = _masks(labels)
    valid = pos[:, :, None] & neg[:, None, :]
    a, p, n = torch.nonzero(valid, as_tuple=True)
    return a, p, n


def get_miner(name: str):
    try:
        return {"batch-hard": batch_hard, "semi-hard": semi_hard, "all": all_triplets}[name]
    except KeyError:
        raise ValueError(f"unknown mining {name!r}; choose one of {', '.join(MININGS)}") from None
