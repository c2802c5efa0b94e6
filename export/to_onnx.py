"""fp32 ONNX for the bundle: from a PyTorch embedder (dynamo exporter) or from an external ONNX file.

Every ``model.onnx`` this writes is one self-contained file (no external data), opset >= 17 (the per-channel
QDQ quantizer needs >= 13; 17+ keeps us on the exporter's tested path), dynamic batch where the graph allows
it, and passes ``onnx.checker``. No L2 normalisation is added: runtimes normalise on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeface.errors import ModelError

OPSET = 18
MIN_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


@dataclass
class OnnxInfo:
    """What the bundle and the quantizer need to know about an fp32 ONNX file."""

    path: Path
    input_name: str
    input_shape: list  # ints or symbolic names
    embedding_size: int
    opset: int
    dynamic_batch: bool
    source_opset: int | None = None  # for imports: the opset the external file had
    dynamo: bool = False  # exported by the torch dynamo exporter (quant_pre_process needs skip_symbolic_shape)


def default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def check_onnx(path: str | Path) -> None:
    """``onnx.checker`` on the file, and the bundle's own rules: one file, opset >= 17."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ModelError(f"{path}: {len(external)} initializers are stored as external data; the bundle needs one file")
    if default_opset(model) < MIN_OPSET:
        raise ModelError(f"{path}: opset {default_opset(model)} < {MIN_OPSET}")
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{path}: onnx.checker rejects it: {exc}") from exc


def describe(path: str | Path, dynamo: bool = False, source_opset: int | None = None) -> OnnxInfo:
    import onnxruntime as ort

    path = Path(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = list(inp.shape)
    h, w = (shape[2], shape[3]) if shape[1] == 3 else (shape[1], shape[2])
    x = np.zeros((1, 3, h, w) if shape[1] == 3 else (1, h, w, 3), np.float32)
    emb = int(np.asarray(sess.run(None, {inp.name: x})[0]).reshape(1, -1).shape[1])
    import onnx

    opset = default_opset(onnx.load(str(path), load_external_data=False))
    return OnnxInfo(path, inp.name, shape, emb, opset, not isinstance(shape[0], int), source_opset, dynamo)


def export_torch(model, path: str | Path, size: tuple[int, int] = (112, 112), opset: int = OPSET) -> OnnxInfo:
    """Export an eval-mode PyTorch embedder (N,3,H,W) -> (N,D) with the dynamo exporter, dynamic batch."""
    import torch

    path = Path(path)
    model = model.eval()
    x = torch.zeros(2, 3, *size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), verbose=False)
    except Exception as exc:  # the exporter raises many different error types
        raise ModelError(f"torch.onnx.export (dynamo) failed: {exc}") from exc
    # ONNXProgram.save keeps the weights inside the one file (external data only above 2 GB)
    program.save(str(path), external_data=False)
    check_onnx(path)
    info = describe(path, dynamo=True)
    with torch.no_grad():
        ref = model(torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(0))).numpy()
    got = _run(path, info.input_name, torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(0)).numpy())
    if not np.allclose(ref, got, atol=1e-3 * max(1.0, float(np.abs(ref).max()))):
        raise ModelError(f"{path}: ONNX output differs from PyTorch by {float(np.abs(ref - got).max()):.3g}")
    return info


def import_onnx(src: str | Path, dst: str | Path, opset: int = OPSET) -> OnnxInfo:
    """Copy an external ONNX embedder into the bundle: opset raised to ``opset`` with
    ``onnx.version_converter`` (per-channel QDQ needs >= 13), batch made dynamic when it was fixed at 1
    and the graph still gives the same embeddings that way, one file, checked."""
    import onnx
    from onnx import version_converter

    src, dst = Path(src), Path(dst)
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf decode errors and missing files alike
        raise ModelError(f"{src}: cannot read it as ONNX: {exc}") from exc
    source_opset = default_opset(model)
    if source_opset < opset:
        try:
            model = version_converter.convert_version(model, opset)
        except Exception as exc:  # the converter raises RuntimeError / ConvertError by op
            raise ModelError(f"{src}: cannot convert opset {source_opset} -> {opset}: {exc}") from exc
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
        _try_dynamic_batch(model)
    onnx.save(model, str(dst), save_as_external_data=False)
    check_onnx(dst)
    return describe(dst, source_opset=source_opset)


def _try_dynamic_batch(model) -> bool:
    """Relax a fixed batch of 1 to a symbolic one if the model then still runs a batch of 2 correctly."""
    import onnx

    trial = onnx.ModelProto()
    trial.CopyFrom(model)
    # inferred intermediate shapes still say batch 1 (onnxruntime would fold Shape ops to constants with them)
    del trial.graph.value_info[:]
    for vi in list(trial.graph.input[:1]) + list(trial.graph.output):
        d = vi.type.tensor_type.shape.dim
        if d:
            d[0].ClearField("dim_value")
            d[0].dim_param = "batch"
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(trial.SerializeToString(), providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = [2] + [int(v) for v in inp.shape[1:]]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        both = sess.run(None, {inp.name: x})[0]
        one = np.concatenate([sess.run(None, {inp.name: x[i:i + 1]})[0] for i in range(2)])
        if both.shape != one.shape or not np.allclose(both, one, atol=1e-4):
            return False
    except Exception:  # noqa: BLE001 - any failure means: keep the fixed batch
        return False
    model.CopyFrom(trial)
    return True


def _run(path: Path, input_name: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {input_name: x})[0]
