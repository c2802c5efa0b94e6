"""Read ``dlib_face_recognition_resnet_model_v1.dat`` (dlib's face-recognition ResNet) into layers and weights.

The file is a serialized ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

with ``ares<N> = relu<add_prev1<affine<con<N,3,3,1,1, relu<affine<con<N,3,3,1,1, tag1<SUBNET>>>>>>>>`` and
``ares_down<N> = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<affine<con<N,3,3,1,1, relu<affine<con<N,3,3,2,2,
tag1<SUBNET>>>>>>>>>>>>``. Serialization is recursive (``dlib/dnn/core.h``): the loss layer writes its version and its
``loss_metric_`` record, then every wrapper (``add_layer``, ``add_tag_layer``, ``add_skip_layer``) writes its version
number from the outermost inwards; the innermost ``add_layer`` then writes the input layer, its own details and its
state; then each outer ``add_layer`` writes its details (``dlib/dnn/layers.h``) and state on the way out. Tags and
skips hold no data, so the topology is not in the file: :data:`ANET_TYPE` spells it out and every record read is
checked against it (layer kinds, filter counts, kernel sizes, strides, padding, tensor shapes), and the file must end
exactly where the network does. Anything else (another network, a shape predictor, a truncated file) is refused with
a :class:`edgeface.errors.DlibFormatError` that names the layer and the byte offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from edgeface.errors import DlibFormatError
from edgeface.registry import refuse_forbidden

from .serialize import DlibReader

#: parameters of the face-recognition ResNet (conv filters + biases, affine gamma + beta, fc weights)
PARAMETER_COUNT = 5_614_592
EMBEDDING_SIZE = 128
INPUT_SIZE = 150


# -- the network, outermost layer first (as the file nests it) ------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One wrapper of anet_type: kind and the template arguments the file must agree with."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, tag, skip, fc
    n: int = 0  # con: filters; fc: outputs; tag/skip/add_prev: tag id
    size: int = 0  # con / pool: kernel size (0 = the whole input, for avg_pool_everything)
    stride: int = 1


def _con(n: int, k: int, s: int) -> Spec:
    return Spec("con", n, k, s)


def _block(n: int, stride: int) -> list[Spec]:
    # BN<con<N,3,3,1,1, relu<BN<con<N,3,3,stride,stride, SUBNET>>>>>
    return [Spec("affine"), _con(n, 3, 1), Spec("relu"), Spec("affine"), _con(n, 3, stride)]


def _ares(n: int) -> list[Spec]:
    return [Spec("relu"), Spec("add_prev", 1)] + _block(n, 1) + [Spec("tag", 1)]


def _ares_down(n: int) -> list[Spec]:
    return ([Spec("relu"), Spec("add_prev", 2), Spec("avg_pool", 0, 2, 2), Spec("skip", 1), Spec("tag", 2)]
            + _block(n, 2) + [Spec("tag", 1)])


def _anet_type() -> list[Spec]:
    layers = [Spec("fc", EMBEDDING_SIZE), Spec("avg_pool", 0, 0, 1)]
    layers += _ares_down(256)  # alevel0
    layers += _ares(256) + _ares(256) + _ares_down(256)  # alevel1
    layers += _ares(128) + _ares(128) + _ares_down(128)  # alevel2
    layers += _ares(64) + _ares(64) + _ares(64) + _ares_down(64)  # alevel3
    layers += _ares(32) + _ares(32) + _ares(32)  # alevel4
    layers += [Spec("max_pool", 0, 3, 2), Spec("relu"), Spec("affine"), _con(32, 7, 2)]
    return layers


#: anet_type's wrappers from the outermost (fc_no_bias) to the innermost (the first con), loss and input excluded
ANET_TYPE: tuple[Spec, ...] = tuple(_anet_type())


# -- what the reader returns, in forward order (input first) --------------------------------------------------------

@dataclass(frozen=True)
class Conv:
    filters: np.ndarray  # (out, in, k, k) float32, cross-correlation as torch's conv2d
    bias: np.ndarray | None  # (out,) float32
    stride: int
    padding: int
    relu: bool = False  # con_6 can fuse a relu into the conv


@dataclass(frozen=True)
class Affine:
    """Per-channel ``gamma * x + beta`` (a frozen batch norm); a disabled layer is gamma 1, beta 0."""

    gamma: np.ndarray  # (C,) float32
    beta: np.ndarray  # (C,) float32


@dataclass(frozen=True)
class Relu:
    enabled: bool = True


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    size: int  # 0 = the whole input (avg_pool_everything)
    stride: int
    padding: int


@dataclass(frozen=True)
class AddPrev:
    tag: int


@dataclass(frozen=True)
class Tag:
    id: int


@dataclass(frozen=True)
class Skip:
    tag: int


@dataclass(frozen=True)
class FcNoBias:
    weights: np.ndarray  # (in, out) float32: y = x . W


Layer = Union[Conv, Affine, Relu, Pool, AddPrev, Tag, Skip, FcNoBias]


@dataclass(frozen=True)
class ResNetDat:
    """The network read from the file. ``layers`` run in forward order, from the input to the fc."""

    mean: tuple[float, float, float]  # input_rgb_image: subtracted from R, G, B, then / 256
    input_size: tuple[int, int]  # (rows, cols) of input_rgb_image_sized
    layers: tuple[Layer, ...]
    loss_margin: float  # loss_metric_2
    loss_distance_threshold: float
    source: str

    @property
    def parameter_count(self) -> int:
        total = 0
        for layer in self.layers:
            if isinstance(layer, Conv):
                total += layer.filters.size + (0 if layer.bias is None else layer.bias.size)
            elif isinstance(layer, Affine):
                total += layer.gamma.size + layer.beta.size
            elif isinstance(layer, FcNoBias):
                total += layer.weights.size
        return total


# -- reading -------------------------------------------------------------------------------------------------------

def _padding_rule(kernel: int, stride: int) -> int:
    """dlib's default padding for con and pools: 0 when the stride is not 1, else kernel / 2."""
    return 0 if stride != 1 else kernel // 2


class _NetReader:
    def __init__(self, r: DlibReader):
        self.r = r

    def fail(self, where: str, message: str, at: int | None = None):
        self.r.fail(f"{where}: {message}", at)

    def check(self, ok: bool, where: str, message: str, at: int) -> None:
        if not ok:
            self.fail(where, message, at)

    def version_string(self, where: str, allowed: tuple[str, ...]) -> str:
        start = self.r.pos
        got = self.r.string(f"{where} version", max_len=64)
        self.check(got in allowed, where, f"record {got!r}, expected {' or '.join(map(repr, allowed))}", start)
        return got

    def version_int(self, where: str, lo: int, hi: int) -> int:
        start = self.r.pos
        v = self.r.int(f"{where} version", max_bytes=4)
        self.check(lo <= v <= hi, where, f"version {v}, expected {lo}..{hi}", start)
        return v

    def alias(self, where: str, what: str, expected: tuple[int, ...]) -> None:
        start = self.r.pos
        shape = self.r.alias_tensor(f"{what} of {where}")
        self.check(shape == expected, where, f"{what} shape {shape}, expected {expected}", start)

    def params(self, where: str, size: int) -> np.ndarray:
        start = self.r.pos
        t = self.r.tensor(f"params of {where}")
        self.check(t.size == size, where, f"{t.size} parameters, expected {size}", start)
        return t.reshape(-1)

    def learning_rates(self, where: str, count: int = 4) -> None:
        for i in range(count):
            self.r.float_scalar(f"multiplier {i} of {where}")

    # layer details ------------------------------------------------------------------------------------------
    def con(self, spec: Spec, channels_in: int, where: str) -> Conv:
        r = self.r
        version = self.version_string(where, ("con_4", "con_5", "con_6"))
        start = r.pos
        t = r.tensor(f"params of {where}")
        fields = {}
        for name, nbytes in (("num_filters", 8), ("nr", 8), ("nc", 8), ("stride_y", 4), ("stride_x", 4),
                             ("padding_y", 4), ("padding_x", 4)):
            at = r.pos
            fields[name] = r.int(f"{name} of {where}", max_bytes=nbytes)
            want = {"num_filters": spec.n, "nr": spec.size, "nc": spec.size, "stride_y": spec.stride,
                    "stride_x": spec.stride}.get(name, _padding_rule(spec.size, spec.stride))
            self.check(fields[name] == want, where, f"{name} {fields[name]}, expected {want}", at)
        fshape = (spec.n, channels_in, spec.size, spec.size)
        self.alias(where, "filters", fshape)
        bias_at = r.pos
        bias_shape = r.alias_tensor(f"biases of {where}")
        self.learning_rates(where)
        use_bias = r.bool(f"use_bias of {where}") if version in ("con_5", "con_6") else True
        use_relu = r.bool(f"use_relu of {where}") if version == "con_6" else False
        if use_bias:
            self.check(bias_shape == (1, spec.n, 1, 1), where, f"biases shape {bias_shape}, expected (1, {spec.n}, 1, 1)",
                       bias_at)
        nfilt = int(np.prod(fshape))
        self.check(t.size == nfilt + (spec.n if use_bias else 0), where,
                   f"{t.size} parameters, expected {nfilt + (spec.n if use_bias else 0)}", start)
        flat = t.reshape(-1)
        bias = flat[nfilt:].copy() if use_bias else None
        return Conv(flat[:nfilt].reshape(fshape).copy(), bias, spec.stride, fields["padding_y"], use_relu)

    def affine(self, channels: int, where: str) -> Affine:
        r = self.r
        start = r.pos
        version = r.string(f"{where} version", max_len=64)
        if version in ("bn_con2", "bn_fc2"):
            self.fail(where, f"a {version} (batch-norm) record stands where the affine layer is; only affine_ is read",
                      start)
        self.check(version in ("affine_", "affine_2"), where,
                   f"record {version!r}, expected 'affine_' or 'affine_2'", start)
        t = r.tensor(f"params of {where}")
        gamma_at = r.pos
        gamma = r.alias_tensor(f"gamma of {where}")
        beta = r.alias_tensor(f"beta of {where}")
        mode_at = r.pos
        mode = r.int(f"mode of {where}", max_bytes=4)
        disabled = r.bool(f"disabled of {where}") if version == "affine_2" else False
        if disabled:
            return Affine(np.ones(channels, np.float32), np.zeros(channels, np.float32))
        self.check(mode == 0, where, f"mode {mode}, expected 0 (CONV_MODE)", mode_at)
        self.check(gamma == beta == (1, channels, 1, 1), where,
                   f"gamma/beta shapes {gamma}/{beta}, expected (1, {channels}, 1, 1)", gamma_at)
        self.check(t.size == 2 * channels, where, f"{t.size} parameters, expected {2 * channels}", gamma_at)
        flat = t.reshape(-1)
        return Affine(flat[:channels].copy(), flat[channels:].copy())

    def relu(self, where: str) -> Relu:
        version = self.version_string(where, ("relu_", "relu_2"))
        disabled = self.r.bool(f"disabled of {where}") if version == "relu_2" else False
        return Relu(not disabled)

    def pool(self, spec: Spec, where: str) -> Pool:
        kind = spec.kind.split("_")[0]
        self.version_string(where, (f"{kind}_pool_2",))
        want = {"nr": spec.size, "nc": spec.size, "stride_y": spec.stride, "stride_x": spec.stride,
                "padding_y": _padding_rule(spec.size, spec.stride), "padding_x": _padding_rule(spec.size, spec.stride)}
        got = {}
        for name, nbytes in (("nr", 8), ("nc", 8), ("stride_y", 4), ("stride_x", 4), ("padding_y", 4),
                             ("padding_x", 4)):
            at = self.r.pos
            got[name] = self.r.int(f"{name} of {where}", max_bytes=nbytes)
            self.check(got[name] == want[name], where, f"{name} {got[name]}, expected {want[name]}", at)
        return Pool(kind, spec.size, spec.stride, got["padding_y"])

    def fc(self, spec: Spec, inputs: int, where: str) -> FcNoBias:
        r = self.r
        version = self.version_string(where, ("fc_2", "fc_3"))
        for name, want in (("num_outputs", spec.n), ("num_inputs", inputs)):
            at = r.pos
            got = r.uint(f"{name} of {where}")
            self.check(got == want, where, f"{name} {got}, expected {want}", at)
        t = self.params(where, inputs * spec.n)
        self.alias(where, "weights", (inputs, spec.n, 1, 1))
        r.alias_tensor(f"biases of {where}")
        at = r.pos
        mode = r.int(f"bias_mode of {where}", max_bytes=4)
        self.check(mode == 1, where, f"bias_mode {mode}, expected 1 (FC_NO_BIAS)", at)
        self.learning_rates(where)
        if version == "fc_3":
            r.bool(f"use_bias of {where}")
        return FcNoBias(t.reshape(inputs, spec.n).copy())

    def state(self, where: str, version: int, innermost: bool) -> None:
        """add_layer's state after its details: three bools and the cached tensors (ignored)."""
        r = self.r
        for name in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
            r.bool(f"{name} of {where}")
        r.tensor(f"x_grad of {where}")
        r.tensor(f"cached_output of {where}")
        if innermost:
            r.tensor(f"grad_final of {where}")
            if version >= 3:
                r.uint(f"sample_expansion_factor of {where}", max_bytes=4)
        elif version == 2:
            r.tensor(f"params_grad of {where}")

    def input_layer(self) -> tuple[tuple[float, float, float], tuple[int, int]]:
        r = self.r
        self.version_string("input layer", ("input_rgb_image_sized",))
        mean = tuple(r.float_scalar(f"input mean {c}", float32=True) for c in "RGB")
        size = (r.uint("input rows"), r.uint("input cols"))
        if size != (INPUT_SIZE, INPUT_SIZE):
            self.fail("input layer", f"size {size}, expected ({INPUT_SIZE}, {INPUT_SIZE})")
        return mean, size  # type: ignore[return-value]


def _channels_in(specs: tuple[Spec, ...]) -> list[int]:
    """Per wrapper (outermost first), the channel count of its input, following tags and skips as dlib does."""
    n = len(specs)
    chans_out = [0] * (n + 1)
    chans_out[n] = 3  # the input layer
    tag_channels: dict[int, int] = {}
    for i in range(n - 1, -1, -1):  # inner -> outer
        spec, c = specs[i], chans_out[i + 1]
        if spec.kind == "con":
            c = spec.n
        elif spec.kind == "tag":
            tag_channels[spec.n] = c
        elif spec.kind == "skip":
            c = tag_channels[spec.n]
        elif spec.kind == "add_prev":
            c = max(c, tag_channels[spec.n])
        elif spec.kind == "fc":
            c = spec.n
        chans_out[i] = c
    return chans_out[1:]


def read_resnet_dat(data: bytes, name: str = "<bytes>") -> ResNetDat:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat``; raise :class:`DlibFormatError` unless
    they are that network, read exactly to the end."""
    try:
        return _read(DlibReader(data, name))
    except DlibFormatError as exc:
        raise DlibFormatError(f"{exc}: not dlib's face-recognition ResNet v1, or a damaged copy") from None


def _read(r: DlibReader) -> ResNetDat:
    name = r.name
    net = _NetReader(r)
    specs = ANET_TYPE
    net.version_int("loss layer", 1, 1)
    net.version_string("loss layer", ("loss_metric_2",))
    margin = r.float_scalar("loss_metric margin", float32=True)
    threshold = r.float_scalar("loss_metric distance threshold", float32=True)

    def label(i: int) -> str:
        s = specs[i]
        return f"layer {i + 1} ({s.kind}{s.n if s.kind in ('tag', 'skip', 'add_prev') else ''})"

    versions = []
    for i, spec in enumerate(specs):
        innermost = i == len(specs) - 1
        if spec.kind in ("tag", "skip"):
            versions.append(net.version_int(label(i), 1, 1))
        else:
            versions.append(net.version_int(label(i), 2 if innermost else 1, 3 if innermost else 2))

    mean, size = net.input_layer()
    chans_in = _channels_in(specs)
    layers: list[Layer] = []
    for i in range(len(specs) - 1, -1, -1):  # details come back inner -> outer
        spec, where = specs[i], label(i)
        cin = chans_in[i]
        if spec.kind == "tag":
            layers.append(Tag(spec.n))
            continue
        if spec.kind == "skip":
            layers.append(Skip(spec.n))
            continue
        if spec.kind == "con":
            layers.append(net.con(spec, cin, where))
        elif spec.kind == "affine":
            layers.append(net.affine(cin, where))
        elif spec.kind == "relu":
            layers.append(net.relu(where))
        elif spec.kind in ("max_pool", "avg_pool"):
            layers.append(net.pool(spec, where))
        elif spec.kind == "add_prev":
            net.version_string(where, ("add_prev_",))
            layers.append(AddPrev(spec.n))
        elif spec.kind == "fc":
            layers.append(net.fc(spec, cin, where))
        net.state(where, versions[i], innermost=i == len(specs) - 1)
    r.expect_end()
    dat = ResNetDat(mean, size, tuple(layers), margin, threshold, name)  # type: ignore[arg-type]
    if dat.parameter_count != PARAMETER_COUNT:
        raise DlibFormatError(f"{name}: {dat.parameter_count} parameters, expected {PARAMETER_COUNT}")
    return dat


def load_resnet_dat(path: str | Path) -> ResNetDat:
    """Read the ResNet ``.dat`` file at ``path`` (see :func:`read_resnet_dat`)."""
    path = Path(path)
    refuse_forbidden(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DlibFormatError(f"{path}: cannot read it: {exc}") from exc
    return read_resnet_dat(data, str(path))
