"""Pairwise distances between embeddings (rows), the one place the loss and the miners get them from."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalize(emb: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise rows: the network's output is unnormalised, the loss and the runtime normalise."""
    return F.normalize(emb, p=2, dim=1, eps=eps)


def pairwise_distances(emb: torch.Tensor, squared: bool = True, eps: float = 1e-12) -> torch.Tensor:
    """(B, B) Euclidean distances (squared by default, as in FaceNet) between the rows of ``emb``.

    Computed from the Gram matrix and clamped at 0 (rounding can make it slightly negative); the square root
    gets ``eps`` inside so its gradient at zero distance is finite, and the diagonal is exactly 0."""
    gram = emb @ emb.T
    sq = gram.diagonal()
    d = (sq[:, None] - 2.0 * gram + sq[None, :]).clamp_min(0.0)
    d = d * (1.0 - torch.eye(len(emb), dtype=emb.dtype, device=emb.device))
    if squared:
        return d
    zero = d == 0
    return torch.sqrt(d + zero.to(d.dtype) * eps) * (~zero).to(d.dtype)
