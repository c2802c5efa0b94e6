"""Training augmentation in plain torch ops (no torchvision), on the model-input tensor.

Input and output are (N, 3, H, W) float tensors already preprocessed exactly as the runtime does
(:func:`edgeface.preprocess.to_model_input`: RGB, (x - 127.5) / 128), so training sees the same distribution the
device feeds the network. Augmentations: horizontal flip (faces are nearly symmetric and the alignment template
is mirrored), colour jitter (brightness, contrast, saturation), and a small random affine (rotation, scale,
shift), which stands in for landmark jitter of the detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LO, HI = -127.5 / 128.0, 127.5 / 128.0  # value range of a preprocessed uint8 pixel


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    brightness: float = 0.2  # +- fraction of the full range
    contrast: float = 0.2  # scale in [1 - c, 1 + c]
    saturation: float = 0.2
    rotate_deg: float = 8.0
    scale: float = 0.05
    shift: float = 0.04  # fraction of the image side


def value_range(spec) -> tuple[float, float]:
    """The range of a preprocessed uint8 pixel under ``spec`` (an InputSpec), over all channels."""
    lo = min((0.0 - m) / s for m, s in zip(spec.mean, spec.std))
    hi = max((255.0 - m) / s for m, s in zip(spec.mean, spec.std))
    return lo, hi


def augment_flips(gen: torch.Generator, n: int, cfg: AugmentConfig = AugmentConfig(),
                  rows: tuple[int, int] | None = None) -> torch.Tensor:
    """The flip decisions :func:`augment` takes for a batch of ``n`` from a generator in the same state (its first
    draw): distillation pulls a flipped student view toward the teacher's embedding of the mirrored chip."""
    start, total = rows if rows is not None else (0, n)
    return torch.rand(total, generator=gen)[start:start + n] < cfg.flip


def augment(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig = AugmentConfig(),
            value_range: tuple[float, float] = (LO, HI), rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Augment a preprocessed batch; ``value_range`` is the pixel range of its preprocessing (:func:`value_range`).

    ``rows`` = (start, total): ``x`` is rows start.. of a batch of ``total``; the random draws are those of the whole
    batch, so a rank of a distributed run augments its part exactly as one process augments the global batch."""
    lo, hi = value_range
    n = x.shape[0]
    start, total = rows if rows is not None else (0, n)
    dev, dt = x.device, x.dtype

    def u(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(total, generator=gen)[start:start + n] * (hi - lo) + lo).to(device=dev, dtype=dt)

    flip = augment_flips(gen, n, cfg, rows).to(dev)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)

    x = x + u(-cfg.brightness, cfg.brightness)[:, None, None, None] * (hi - lo)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(1 - cfg.contrast, 1 + cfg.contrast)[:, None, None, None] + mean
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    x = (x - grey) * u(1 - cfg.saturation, 1 + cfg.saturation)[:, None, None, None] + grey

    angle = u(-cfg.rotate_deg, cfg.rotate_deg) * (math.pi / 180.0)
    s = u(1 - cfg.scale, 1 + cfg.scale)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    tx, ty = u(-cfg.shift, cfg.shift) * 2, u(-cfg.shift, cfg.shift) * 2
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # border padding: black corners would teach the network a cue the aligned runtime crops never have
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x.clamp(lo, hi)
