"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a torch module.

The same topology as dlib's ``anet_type`` (see :mod:`edgeface.export.dlib.resnet_dat`), layer by layer:

- stem: con 7x7/2 (32) -> affine -> relu -> max_pool 3x3/2: 3x150x150 -> 32x72x72 -> 32x35x35;
- 14 residual blocks: con 3x3 -> affine -> relu -> con 3x3 -> affine, added to the block's input (``add_prev``), relu.
  A downsampling block (at 64, 128, 256, 256 channels) has stride 2 in its first con and an average-pooled
  (2x2/2) shortcut: 35 -> 17 -> 8 -> 4 -> 2;
- global average pool -> fc 256 -> 128 without bias; the raw fc output is returned (not normalised).

Faithful details: dlib's padding rule (0 when the stride is not 1, else kernel / 2); ``affine`` is a per-channel
``gamma * x + beta`` (a separate op, or folded into the preceding conv by :meth:`DlibResNet.fold_affine`);
``add_prev`` of two differently shaped tensors zero-pads the smaller at the end: the missing channels (the shortcut
has no projection) and, in the last two downsampling blocks, the bottom rows and right columns of the conv path's
3x3 / 1x1 output up to the pooled shortcut's 4x4 / 2x2. Padding is ``F.pad`` so that ``torch.onnx.export`` and
litert-torch both accept it. Input: RGB, ``(pixel - DLIB_RESNET_MEAN) / 256``, NCHW float32, 150x150.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeface.errors import ModelError

from .resnet_dat import (EMBEDDING_SIZE, INPUT_SIZE, PARAMETER_COUNT, Affine as DatAffine, AddPrev, Conv as DatConv,
                         FcNoBias, Pool, Relu, ResNetDat, Skip, Tag, load_resnet_dat)

#: input_rgb_image's means (R, G, B), as float32 in the file; the network sees (pixel - mean) / std
DLIB_RESNET_MEAN = (122.782, 117.001, 104.298)
DLIB_RESNET_STD = (256.0, 256.0, 256.0)
CHIP_SIZE = INPUT_SIZE
DLIB_RESNET_PARAMETERS = PARAMETER_COUNT

#: (channels, downsampling) of the 14 residual blocks, input side first: alevel4, alevel3, alevel2, alevel1, alevel0
BLOCKS = ((32, False),) * 3 + ((64, True),) + ((64, False),) * 3 + ((128, True),) + ((128, False),) * 2 \
    + ((256, True),) + ((256, False),) * 2 + ((256, True),)


def preprocess_chips(chips_rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB chips (N, 150, 150, 3) -> the network's float32 input (N, 3, 150, 150), as dlib's
    ``input_rgb_image::to_tensor`` computes it (float32 subtraction, then / 256, which is exact)."""
    x = np.asarray(chips_rgb)
    if x.ndim != 4 or x.shape[3] != 3:
        raise ModelError(f"expected RGB chips (N, H, W, 3), got shape {x.shape}")
    mean = np.asarray(DLIB_RESNET_MEAN, np.float32)
    return np.ascontiguousarray(((x.astype(np.float32) - mean) / np.float32(256.0)).transpose(0, 3, 1, 2))


class AffineChannels(nn.Module):
    """dlib's ``affine`` layer in CONV_MODE: per-channel ``gamma * x + beta``."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=0 if stride != 1 else k // 2, bias=True)


def _pad_to(x: torch.Tensor, channels: int, rows: int, cols: int) -> torch.Tensor:
    dc, dr, dcol = channels - x.shape[1], rows - x.shape[2], cols - x.shape[3]
    if dc or dr or dcol:
        x = F.pad(x, (0, dcol, 0, dr, 0, dc))  # zeros after the last column, row and channel
    return x


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, each input zero-padded at the end where it is smaller."""
    shape = (max(a.shape[1], b.shape[1]), max(a.shape[2], b.shape[2]), max(a.shape[3], b.shape[3]))
    return _pad_to(a, *shape) + _pad_to(b, *shape)


class ResidualBlock(nn.Module):
    """``ares`` (stride 1, identity shortcut) or ``ares_down`` (stride 2, 2x2/2 average-pooled shortcut)."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = _conv(cin, cout, 3, 2 if down else 1)
        self.affine1 = AffineChannels(cout)
        self.conv2 = _conv(cout, cout, 3, 1)
        self.affine2 = AffineChannels(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(shortcut, y))


class DlibResNet(nn.Module):
    """(N, 3, 150, 150) float32, normalised as dlib does -> (N, 128) raw fc output (norm about 1.3-1.6)."""

    def __init__(self):
        super().__init__()
        self.conv = _conv(3, 32, 7, 2)
        self.affine = AffineChannels(32)
        blocks, cin = [], 32
        for cout, down in BLOCKS:
            blocks.append(ResidualBlock(cin, cout, down))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, EMBEDDING_SIZE, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def conv_affine_pairs(self) -> list[tuple[nn.Conv2d, nn.Module]]:
        """Every conv with the affine that follows it, in forward order (29 pairs)."""
        pairs = [(self.conv, self.affine)]
        for b in self.blocks:
            pairs += [(b.conv1, b.affine1), (b.conv2, b.affine2)]
        return pairs

    def load_dat(self, dat: ResNetDat) -> DlibResNet:
        """Copy the weights read from the ``.dat`` file into this module; returns self."""
        _check_topology(dat)
        convs = [layer for layer in dat.layers if isinstance(layer, DatConv)]
        affines = [layer for layer in dat.layers if isinstance(layer, DatAffine)]
        fc = next(layer for layer in dat.layers if isinstance(layer, FcNoBias))
        with torch.no_grad():
            for (conv, affine), cw, aw in zip(self.conv_affine_pairs(), convs, affines, strict=True):
                if tuple(conv.weight.shape) != cw.filters.shape or conv.stride[0] != cw.stride \
                        or conv.padding[0] != cw.padding:
                    raise ModelError(f"{dat.source}: a con layer of shape {cw.filters.shape}, stride {cw.stride}, "
                                     f"padding {cw.padding} does not fit the port's {tuple(conv.weight.shape)}")
                conv.weight.copy_(torch.from_numpy(cw.filters))
                conv.bias.copy_(torch.from_numpy(cw.bias))
                affine.gamma.copy_(torch.from_numpy(aw.gamma))
                affine.beta.copy_(torch.from_numpy(aw.beta))
            self.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(fc.weights.T)))
        return self

    def fold_affine(self) -> DlibResNet:
        """A copy with each affine folded into the conv before it (``W * gamma``, ``b * gamma + beta``) and
        replaced by an identity: the same function up to float rounding, with conv-only blocks (for int8)."""
        folded = copy.deepcopy(self)
        with torch.no_grad():
            for conv, affine in folded.conv_affine_pairs():
                if not isinstance(affine, AffineChannels):
                    continue
                conv.weight.mul_(affine.gamma.view(-1, 1, 1, 1))
                conv.bias.copy_(conv.bias * affine.gamma + affine.beta)
        folded.affine = nn.Identity()
        for b in folded.blocks:
            b.affine1, b.affine2 = nn.Identity(), nn.Identity()
        return folded


def _check_topology(dat: ResNetDat) -> None:
    """The layer sequence the module implements, in forward order, against the one read from the file."""
    want: list[str] = ["con", "affine", "relu", "max"]
    for _, down in BLOCKS:
        want += ["tag1", "con", "affine", "relu", "con", "affine"]
        want += ["tag2", "skip1", "avg", "add_prev2", "relu"] if down else ["add_prev1", "relu"]
    want += ["avg", "fc"]

    def kind(layer) -> str:
        if isinstance(layer, DatConv):
            if layer.relu or layer.bias is None:
                raise ModelError(f"{dat.source}: a con layer with a fused relu or without bias is not supported")
            return "con"
        if isinstance(layer, Relu):
            if not layer.enabled:
                raise ModelError(f"{dat.source}: a disabled relu layer is not supported")
            return "relu"
        names = {DatAffine: "affine", FcNoBias: "fc"}
        if type(layer) in names:
            return names[type(layer)]
        if isinstance(layer, Pool):
            return layer.kind
        if isinstance(layer, Tag):
            return f"tag{layer.id}"
        if isinstance(layer, Skip):
            return f"skip{layer.tag}"
        if isinstance(layer, AddPrev):
            return f"add_prev{layer.tag}"
        raise ModelError(f"{dat.source}: unknown layer {layer!r}")

    got = [kind(layer) for layer in dat.layers]
    if got != want:
        first = next(i for i, (a, b) in enumerate(zip(got + [""] * len(want), want + [""] * len(got))) if a != b)
        raise ModelError(f"{dat.source}: layer {first + 1} is {got[first:first + 1]}, the port expects "
                         f"{want[first:first + 1]}: not dlib's face-recognition ResNet v1")


def load_dlib_resnet(path: str | Path | ResNetDat) -> DlibResNet:
    """The network of ``dlib_face_recognition_resnet_model_v1.dat`` at ``path`` (or an already read
    :class:`ResNetDat`), in eval mode with its weights loaded. Raises a ModelError subclass on a bad file."""
    dat = path if isinstance(path, ResNetDat) else load_resnet_dat(path)
    model = DlibResNet().load_dat(dat).eval()
    if model.parameter_count() != DLIB_RESNET_PARAMETERS:
        raise ModelError(f"{dat.source}: the port has {model.parameter_count()} parameters, "
                         f"expected {DLIB_RESNET_PARAMETERS}")
    return model
