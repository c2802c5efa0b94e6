"""Automatic mixed precision for the training step (``--amp off|bf16|fp16``), with ``torch.autocast``.

bf16 runs on CUDA and on the CPU (same exponent range as float32, no gradient scaler needed); fp16 only on CUDA,
with ``torch.amp.GradScaler`` against underflowing gradients. Losses are computed in float32 on the float32 copy of
the embeddings; weights, optimizer state and checkpoints stay float32.
"""

from __future__ import annotations

import contextlib

import torch

from edgeface.errors import EdgefaceError

AMP_MODES = ("off", "bf16", "fp16")


def check_amp(mode: str, device: torch.device) -> None:
    if mode not in AMP_MODES:
        raise EdgefaceError(f"unknown --amp {mode!r}; use {', '.join(AMP_MODES)}")
    if mode == "fp16" and device.type != "cuda":
        raise EdgefaceError("--amp fp16 needs --device cuda; on the CPU use --amp bf16")


def autocast(mode: str, device: torch.device):
    if mode == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def grad_scaler(mode: str, device: torch.device) -> torch.amp.GradScaler:
    """A scaler that is a no-op unless ``mode`` is fp16."""
    return torch.amp.GradScaler(device.type, enabled=mode == "fp16")
