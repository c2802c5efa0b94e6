"""TFLite for the bundle with litert-torch: fp32, and int8 by PT2E static quantization.

litert-torch lowers a PyTorch module through ``torch.export`` straight to a ``.tflite`` flatbuffer (no
TensorFlow). The graph is exported at batch 1 and int8 is calibrated at batch 1 on the same faces as the
ONNX int8 model (observers see exactly the shapes the device runs). The input stays NCHW like the ONNX model,
so one ``InputSpec`` (layout NCHW) describes every file of the bundle; the int8 model has int8 input and output
tensors, which the core LiteRT runtime quantizes / dequantizes with their scale and zero point.

An external ONNX model is brought into PyTorch with onnx2torch (checked against onnxruntime), after its batch
is fixed to 1 and shape arithmetic is constant-folded (``Shape -> Gather -> Concat -> Reshape`` chains would
otherwise be data-dependent for ``torch.export``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import types
from pathlib import Path

import numpy as np

from edgeface.errors import ModelError

from .quiet import native_stderr_filtered


@contextlib.contextmanager
def _without_torchvision():
    """onnx2torch imports torchvision at module level for two detection ops (NMS, RoIAlign) we never convert;
    torchvision is not a dependency (and a mismatched one fails to import). Give it a placeholder while
    onnx2torch is imported; those two converters then raise if ever used."""
    if "torchvision" in sys.modules:
        yield
        return
    tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

    def unavailable(*_a, **_k):
        raise NotImplementedError("torchvision is not installed: NMS / RoIAlign cannot be converted")

    ops.nms = ops.box_convert = ops.roi_align = unavailable
    tv.ops = ops
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops
    try:
        yield
    finally:
        del sys.modules["torchvision"], sys.modules["torchvision.ops"]


@contextlib.contextmanager
def _root_logger_quiet():
    """litert-torch logs each lowering on the root logger at INFO: hold the root at WARNING meanwhile
    (unless debug logging was asked for)."""
    root = logging.getLogger()
    level = root.level
    if root.getEffectiveLevel() > logging.DEBUG:
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def _static_batch1(path: Path):
    """The ONNX model with batch 1 and its shape computations folded into constants."""
    import onnx
    import onnxscript.optimizer

    model = onnx.load(str(path))
    for vi in list(model.graph.input[:1]) + list(model.graph.output):
        d = vi.type.tensor_type.shape.dim
        if d:
            d[0].ClearField("dim_param")
            d[0].dim_value = 1
    model = onnx.shape_inference.infer_shapes(model)
    model = onnxscript.optimizer.optimize(model)
    # the dynamo exporter writes Reshape(allowzero=1), which onnx2torch refuses; with a constant target shape
    # that holds no 0, allowzero changes nothing and can be dropped
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        shape = consts.get(node.input[1]) if len(node.input) > 1 else None
        if shape is not None and not (shape == 0).any():
            keep = [a for a in node.attribute if a.name != "allowzero"]
            del node.attribute[:]
            node.attribute.extend(keep)
    return model


def _constant_reshapes(gm):
    """onnx2torch's Reshape checks ``shape == 0`` on a tensor, which ``torch.export`` cannot trace; with a
    constant target shape it becomes a plain ``torch.reshape`` with Python ints."""
    import torch
    from onnx2torch.node_converters.reshape import OnnxReshape

    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), OnnxReshape):
            continue
        x, shape = node.args
        if getattr(shape, "op", None) != "get_attr":
            continue
        value = gm
        for part in shape.target.split("."):
            value = getattr(value, part)
        dims = tuple(int(v) for v in value.tolist())
        if 0 in dims:
            continue
        with gm.graph.inserting_after(node):
            new = gm.graph.call_function(torch.reshape, (x, dims))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def onnx_to_torch(path: str | Path, shape: tuple[int, ...] = (1, 3, 112, 112)):
    """An eval-mode PyTorch module (batch 1) equivalent to the ONNX embedder at ``path``."""
    import onnxruntime as ort
    import torch

    path = Path(path)
    try:
        with _without_torchvision():
            from onnx2torch import convert
    except ImportError as exc:
        raise ModelError("exporting an external ONNX to TFLite needs onnx2torch: "
                         "pip install --no-deps onnx2torch==1.5.15 (its torchvision dependency is not needed)") from exc
    try:
        module = _constant_reshapes(convert(_static_batch1(path))).eval()
    except Exception as exc:  # onnx2torch raises NotImplementedError / KeyError for unsupported ops
        raise ModelError(f"{path}: onnx2torch cannot convert it to PyTorch for TFLite export: {exc}") from exc
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-3 * max(1.0, float(np.abs(want).max()))):
        raise ModelError(f"{path}: the onnx2torch conversion does not reproduce onnxruntime's output")
    return module


def export_fp32(model, path: str | Path, shape: tuple[int, ...] = (1, 3, 112, 112)) -> Path:
    import torch

    path = Path(path)
    sample = (torch.zeros(*shape),)
    try:
        with _root_logger_quiet(), native_stderr_filtered():  # LiteRT's converter's absl INFO lines
            import litert_torch

            litert_torch.convert(model.eval(), sample).export(str(path))
    except Exception as exc:  # litert-torch surfaces lowering errors of many types
        raise ModelError(f"litert-torch fp32 conversion failed: {exc}") from exc
    return path


#: the last conv/linear layers kept in float, as for the ONNX int8 model. Measured on the reference MobileFaceNet
#: (PT2E emulated in torch, 128 probe faces, mean / min cosine to fp32): all int8 0.957 / 0.850, last two float
#: 0.958 / 0.856, last three (1x1 conv to 512, GDC, projection; ~1.5 % of the MACs) float 0.995 / 0.983.
FLOAT_TAIL = 3


def _tail_float_quantizer(float_tail: int):
    """litert-torch's PT2E quantizer (int8 activations, per-channel symmetric int8 weights) that leaves the
    graph from the ``float_tail``-th last conv/linear onward unannotated, i.e. in float."""
    import torch
    from litert_torch.quantize import pt2e_quantizer as pq

    weighted_ops = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)

    class TailFloatQuantizer(pq.PT2EQuantizer):
        def annotate(self, model):
            model = super().annotate(model)
            _annotate_plain_adds(model, self.global_config)
            weighted = [n for n in model.graph.nodes if n.op == "call_function" and n.target in weighted_ops]
            if float_tail and weighted:
                start = weighted[-min(float_tail, len(weighted))]
                tail = False
                for node in model.graph.nodes:
                    tail = tail or node is start
                    if tail:
                        node.meta.pop("quantization_annotation", None)
            return model

    return TailFloatQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))


def _annotate_plain_adds(model, config) -> None:
    """Quantize residual adds that litert-torch's annotator misses. It finds adds by their Python source
    (``operator.add`` / ``torch.add``); in an onnx2torch graph they come from a converter module, so they were left
    in float between a DEQUANTIZE and a QUANTIZE each (12 round trips in the reference MobileFaceNet)."""
    import torch
    from litert_torch.quantize.pt2e_quantizer_utils import get_input_act_qspec, get_output_act_qspec
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for node in model.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.add.Tensor:
            continue
        if "quantization_annotation" in node.meta or not all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
            continue
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={a: get_input_act_qspec(config) for a in node.args[:2]},
            output_qspec=get_output_act_qspec(config), _annotated=True)


def export_int8(model, path: str | Path, calib: np.ndarray, shape: tuple[int, ...] = (1, 3, 112, 112),
                progress: bool = True, float_tail: int = FLOAT_TAIL) -> Path:
    """PT2E static int8 (int8 activations, symmetric per-channel weights) calibrated one face at a time on
    ``calib`` (preprocessed float model inputs, one row per face, in the model's layout); the last
    ``float_tail`` conv/linear layers stay float."""
    import torch

    with native_stderr_filtered():  # LiteRT's converter writes absl INFO lines when it loads
        import litert_torch
        from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e
    from tqdm import tqdm

    path = Path(path)
    sample = (torch.zeros(*shape),)
    try:
        with _root_logger_quiet():
            exported = torch.export.export(model.eval(), sample).module()
            quantizer = _tail_float_quantizer(float_tail)
            prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
            with torch.no_grad():
                for x in tqdm(calib, desc="calibrate int8 TFLite", unit="face", disable=not progress):
                    prepared(torch.from_numpy(np.ascontiguousarray(x[None], np.float32)))
            converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
            with native_stderr_filtered():  # LiteRT's converter's absl INFO lines
                edge = litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
                edge.export(str(path))
    except Exception as exc:  # torch.export / PT2E / lowering errors of many types
        raise ModelError(f"litert-torch int8 (PT2E) conversion failed: {exc}") from exc
    return path
