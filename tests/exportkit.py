"""Small real inputs for the export tests: a tiny embedder with MobileFaceNet's shape of head, and aligned ORL
faces (detected and aligned by the core) of a few identities."""

from __future__ import annotations

import numpy as np


def tiny_embedder(seed: int = 0, embedding_size: int = 16):
    """112x112 -> ``embedding_size``: strided convs with BN + ReLU, depthwise and pointwise convs, then the
    MobileFaceNet head (1x1 conv, 7x7 global depthwise conv, linear 1x1 projection). Random but fixed weights,
    BatchNorm statistics set to non-trivial values so that folding matters."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def cbr(cin, cout, k, s, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2 if k < 7 else 0, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, nn.ReLU()) if act else nn.Sequential(*layers)

    net = nn.Sequential(
        cbr(3, 8, 3, 4), cbr(8, 8, 3, 2, groups=8), cbr(8, 16, 1, 1), cbr(16, 16, 3, 2, groups=16),
        cbr(16, 32, 1, 1), cbr(32, 32, 7, 1, groups=32, act=False), nn.Conv2d(32, embedding_size, 1, bias=False),
        nn.Flatten(1))
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return net.eval()


def orl_faces(detector, orl_dir, identities: int = 12, per_identity: int = 10):
    """(crops (N,112,112,3) uint8 BGR, labels) of the first ``identities`` ORL people, aligned by the core."""
    from edgeface.faceset import aligned_crop, read_image, scan_identities

    names = sorted({p.identity for p in scan_identities(orl_dir)}, key=lambda s: int(s.lstrip("s")))[:identities]
    crops, labels = [], []
    for p in scan_identities(orl_dir):
        if p.identity in names and sum(1 for lab in labels if lab == p.identity) < per_identity:
            crop, _ = aligned_crop(detector, read_image(p.path))
            if crop is not None:
                crops.append(crop)
                labels.append(p.identity)
    return np.stack(crops), np.array(labels)
