"""The one preprocessing: aligned BGR uint8 crops -> the model's input tensor, as the bundle metadata says."""

from __future__ import annotations

import numpy as np

from .bundle import InputSpec


def to_model_input(crops_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(N, H, W, 3) or (H, W, 3) BGR uint8 aligned crops -> float32 (N, C, H, W) or (N, H, W, C)."""
    x = np.asarray(crops_bgr)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) crops, got shape {x.shape}")
    if tuple(x.shape[1:3]) != tuple(spec.size):
        raise ValueError(f"crops are {x.shape[1]}x{x.shape[2]}, the model expects {spec.size[0]}x{spec.size[1]}")
    if spec.color_order == "RGB":
        x = x[..., ::-1]
    x = (x.astype(np.float32) - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def l2_normalize(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)
