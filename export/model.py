"""The embedder network: MobileFaceNet (Chen et al. 2018), sized by a width multiplier.

112x112 RGB (preprocessed as :func:`edgeface.preprocess.to_model_input` with the default InputSpec:
NCHW, (x - 127.5) / 128) -> an UNNORMALISED embedding (N, embedding_size). The L2 normalisation happens in the
loss and in the runtime, never in the graph: in-graph normalisation hurts int8 conversion.

Only plain ops (Conv2d, BatchNorm2d, ReLU or PReLU, flatten), so ONNX (dynamo) and LiteRT export cleanly and
int8 quantization fuses Conv+BN+ReLU. ReLU is the default: with onnxruntime on one thread the same network took
5.9 ms with ReLU and 15.8 ms with PReLU (PReLU is neither fused nor quantized). The head is MobileFaceNet's
global depthwise conv (GDC, a linear 7x7 depthwise conv) then a linear 1x1 conv to the embedding and a BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_CONFIG = {
    "arch": "mobilefacenet",
    "width": 1.0,
    "embedding_size": 128,
    "activation": "relu",
    "input_size": 112,
}

#: the architecture of dlib's face-recognition ResNet (:mod:`edgeface.export.dlib.resnet`)
DLIB_ARCH = "dlib-resnet-v1"

# (expansion t, output channels c, repeats n, stride of the first s), MobileFaceNet Table 1
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def full_config(config: dict | None = None) -> dict:
    """The defaults completed by ``config``; unknown keys are refused (a typo must not train the wrong net)."""
    cfg = dict(DEFAULT_CONFIG)
    unknown = set(config or {}) - set(cfg)
    if unknown:
        raise ValueError(f"unknown model config keys {sorted(unknown)}; known: {sorted(cfg)}")
    cfg.update(config or {})
    if cfg["arch"] == DLIB_ARCH:
        # dlib's ResNet has one fixed shape: 150x150 chips -> 128-d
        cfg.update(width=1.0, embedding_size=128, activation="relu", input_size=150)
        return cfg
    if cfg["arch"] != "mobilefacenet":
        raise ValueError(f"unknown arch {cfg['arch']!r}; known: mobilefacenet, {DLIB_ARCH}")
    if cfg["activation"] not in ("relu", "prelu"):
        raise ValueError(f"activation must be 'relu' or 'prelu', got {cfg['activation']!r}")
    if cfg["input_size"] != 112:
        raise ValueError("the GDC head assumes 112x112 input")
    return cfg


def _ch(c: int, width: float) -> int:
    """Channels scaled by the width multiplier, rounded to a multiple of 8 (fast int8 kernels)."""
    return max(8, int(round(c * width / 8)) * 8)


def _act(kind: str, channels: int) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == "relu" else nn.PReLU(channels)


class ConvBN(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation: the unit int8 quantizers fuse."""

    def __init__(self, cin: int, cout: int, k: int, s: int = 1, groups: int = 1, act: str | None = "relu") -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2 if k < 7 else 0, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout)]
        if act:
            layers.append(_act(act, cout))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand -> 3x3 depthwise -> linear 1x1 project (+ identity when shapes match)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, act: str) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            ConvBN(cin, hidden, 1, act=act),
            ConvBN(hidden, hidden, 3, stride, groups=hidden, act=act),
            ConvBN(hidden, cout, 1, act=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    def __init__(self, width: float = 1.0, embedding_size: int = 128, activation: str = "relu") -> None:
        super().__init__()
        act = activation
        c64, c512 = _ch(64, width), _ch(512, width)
        layers: list[nn.Module] = [ConvBN(3, c64, 3, 2, act=act), ConvBN(c64, c64, 3, 1, groups=c64, act=act)]
        cin = c64
        for t, c, n, s in BOTTLENECKS:
            cout = _ch(c, width)
            for i in range(n):
                layers.append(Bottleneck(cin, cout, s if i == 0 else 1, t, act))
                cin = cout
        layers.append(ConvBN(cin, c512, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.gdc = ConvBN(c512, c512, 7, 1, groups=c512, act=None)  # linear global depthwise conv: 7x7 -> 1x1
        self.project = nn.Conv2d(c512, embedding_size, 1, bias=False)
        self.bn = nn.BatchNorm2d(embedding_size)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # residual branches start near identity: the last BN of each bottleneck at zero scale trains faster
        for m in self.modules():
            if isinstance(m, Bottleneck) and m.residual:
                nn.init.zeros_(m.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.project(self.gdc(self.features(x))))
        return torch.flatten(x, 1)


def build_model(config: dict | None = None) -> nn.Module:
    """A fresh (untrained) embedder for ``config`` (see :data:`DEFAULT_CONFIG`)."""
    cfg = full_config(config)
    if cfg["arch"] == DLIB_ARCH:
        from .dlib.resnet import DlibResNet

        return DlibResNet()
    return MobileFaceNet(width=float(cfg["width"]), embedding_size=int(cfg["embedding_size"]),
                         activation=cfg["activation"])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
