"""int8 ONNX: onnxruntime static quantization (QDQ, per-channel weights), recipe chosen by measurement.

Why a search: on this kind of network the right recipe is not knowable in advance. Measured on the reference
MobileFaceNet (ReLU6, AVX2 without VNNI, 256 probe faces, mean / min cosine to fp32):

* S8S8 and U8S8 with 8-bit weights: 0.991 / 0.97 when the QDQ graph is *emulated* in float, but 0.969 / 0.58 in
  onnxruntime's integer kernels: the AVX2 u8 x s8 multiply-add (vpmaddubsw) saturates at 16 bits;
* U8S8 with reduce_range (7-bit weights, no saturation): 0.977 / 0.88, the lost bit costs accuracy;
* "mixed": 7-bit weights only where the GEMM kernel saturates (non-depthwise convs), 8-bit depthwise weights:
  0.986 / 0.95; plus the network's tail (last three conv/linear layers, ~1.5 % of the MACs) in float:
  0.991 / 0.958 -- the embedding itself is then never squeezed through one 8-bit per-tensor scale.

So every export quantizes with a few recipes, measures each against the fp32 model on *probe* faces (crops of the
calibration identities that were not used to calibrate; the validation identities stay untouched for the
report), and keeps the most accurate; among near-equals (within ``NEAR_EQUAL`` mean cosine) the first in a fixed
order of preference (:data:`PREFERENCE`: the recipes whose embeddings an ARM door reproduces best first). The choice is
deterministic: the same inputs on the same machine give the same recipe. Latency is measured and recorded but
never decides: recipes within 1 % of each other used to be ranked by timing noise. Every measurement is recorded
in ``edgeface.json`` notes.

Calibration ranges are computed once per method and shared between recipes through onnxruntime's calibration
cache; histograms are collected in strides so memory stays bounded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeface.errors import ModelError

log = logging.getLogger(__name__)

BATCH = 16  # calibration batch (the fp32 graph has a dynamic batch)
STRIDE_BATCHES = 2  # batches per histogram update: bounds calibration memory to ~32 images of activations
NEAR_EQUAL = 0.002  # mean-cosine margin within which the faster recipe wins


@dataclass(frozen=True)
class Recipe:
    name: str
    activation: str  # "QInt8" | "QUInt8"
    weight: str = "QInt8"
    method: str = "MinMax"  # "MinMax" | "Percentile" | "Entropy"
    weight_range: str = "full"  # "full" 8-bit | "reduced" 7-bit everywhere | "mixed": 7-bit except depthwise convs
    float_tail: int = 0  # how many of the last Conv/Gemm/MatMul nodes stay in float

    def describe(self) -> dict:
        return asdict(self)


TAIL = 3
#: measured in this order. Percentile needs a histogram pass (minutes on 2 cores), so it is one candidate only.
CANDIDATES: tuple[Recipe, ...] = (
    Recipe("u8s8-rr-minmax", "QUInt8", "QInt8", "MinMax", "reduced"),
    Recipe("s8s8-minmax-tail", "QInt8", "QInt8", "MinMax", "full", TAIL),
    Recipe("u8s8-mixed-minmax", "QUInt8", "QInt8", "MinMax", "mixed"),
    Recipe("u8s8-mixed-minmax-tail", "QUInt8", "QInt8", "MinMax", "mixed", TAIL),
    Recipe("u8s8-mixed-percentile-tail", "QUInt8", "QInt8", "Percentile", "mixed", TAIL),
)
#: which recipe wins among near-equals (within NEAR_EQUAL mean cosine of the most accurate), first first: ordered
#: by how closely a Raspberry Pi (aarch64, Cortex-A72) reproduces the x86 embeddings, measured on dlib's ResNet
#: (scripts/pibox.sh prove, docs/benchmarks.md "Raspberry Pi, emulated"; worst cosine aarch64 vs x86 over 200 door
#: crops): mixed-minmax-tail 0.9999999, mixed-minmax 0.999985, rr-minmax 0.999982, mixed-percentile-tail 0.99996,
#: s8s8-minmax-tail 0.9995.
PREFERENCE: tuple[str, ...] = ("u8s8-mixed-minmax-tail", "u8s8-mixed-minmax", "u8s8-rr-minmax",
                               "u8s8-mixed-percentile-tail", "s8s8-minmax-tail")
#: the small set for tests and quick exports
FAST_CANDIDATES: tuple[Recipe, ...] = (CANDIDATES[0], CANDIDATES[3])


@dataclass
class Measurement:
    recipe: dict
    mean_cosine: float
    min_cosine: float
    latency_ms: float
    seconds: float


@dataclass
class QuantResult:
    path: Path
    recipe: Recipe
    measurements: list[Measurement] = field(default_factory=list)
    fp32_latency_ms: float | None = None
    failed: dict[str, str] = field(default_factory=dict)  # recipe name -> why it could not be made

    def notes(self) -> dict:
        return {"chosen": self.recipe.name, "recipe": self.recipe.describe(), "format": "QDQ", "per_channel": True,
                "probe": "crops of the calibration identities not used for calibration",
                "rule": f"highest mean cosine to fp32 on the probe; among recipes within {NEAR_EQUAL} of it, the "
                        "first in the order of preference (deterministic: latency is recorded, never decides)",
                "preference": list(PREFERENCE),
                "fp32_latency_ms": self.fp32_latency_ms, "latency_measured_with": measured_with(),
                "candidates": [asdict(m) for m in self.measurements], "failed": self.failed}


class _Reader:
    """Calibration batches for onnxruntime (supports the strided collection ``CalibStridedMinMax`` uses)."""

    def __init__(self, x: np.ndarray, input_name: str) -> None:
        self.batches = [x[i:i + BATCH] for i in range(0, len(x), BATCH)]
        self.name = input_name
        self.start, self.end = 0, len(self.batches)
        self.pos = 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end, self.pos = start_index, min(end_index, len(self.batches)), start_index

    def get_next(self):
        if self.pos >= self.end:
            return None
        self.pos += 1
        return {self.name: self.batches[self.pos - 1]}

    def rewind(self) -> None:
        self.pos = self.start


def preprocess_for_quant(src: Path, dst: Path, dynamo: bool) -> Path:
    """``quant_pre_process``: shape inference + graph optimisation before quantization (the symbolic shape
    pass is skipped for dynamo exports, which it cannot read)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=dynamo)
    except Exception as exc:  # noqa: BLE001 - retry without the symbolic pass, which fails on some imports
        log.info("quant_pre_process with symbolic shapes failed (%s); retrying without", exc)
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    return dst


def _weighted_nodes(model_path: Path):
    import onnx

    return [n for n in onnx.load(str(model_path)).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]


def tail_nodes(model_path: Path, count: int) -> list[str]:
    """Names of the last ``count`` Conv/Gemm/MatMul nodes (the embedding head)."""
    return [n.name for n in _weighted_nodes(model_path)[-count:]] if count else []


def weight_overrides(model_path: Path, weight_range: str) -> dict:
    """``TensorQuantOverrides`` giving 7-bit weights (reduce_range) to the nodes whose integer kernel is a
    u8 x s8 GEMM that can saturate on AVX2 without VNNI: every weighted node but the depthwise convs."""
    if weight_range != "mixed":
        return {}
    out = {}
    for n in _weighted_nodes(model_path):
        depthwise = n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
        if not depthwise and len(n.input) > 1:
            out[n.input[1]] = [{"reduce_range": True, "axis": 0 if n.op_type == "Conv" else 1}]
    return {"TensorQuantOverrides": out} if out else {}


def quantize_with(recipe: Recipe, pre: Path, out: Path, calib: np.ndarray, input_name: str, cache_dir: Path) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    reader = _Reader(calib, input_name)
    stride = STRIDE_BATCHES if len(reader) % STRIDE_BATCHES == 0 else 1
    # strided collection: ranges (MinMax) or histograms (Percentile, Entropy) are merged every `stride` batches.
    # (CalibMaxIntermediateOutputs is not used: in onnxruntime 1.32 it drops data without computing ranges)
    extra = {"CalibStridedMinMax": stride, **weight_overrides(pre, recipe.weight_range)}
    exclude = tail_nodes(pre, recipe.float_tail) or None
    cache = cache_dir / f"calib-{recipe.method}.json"
    try:
        quantize_static(
            str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            reduce_range=recipe.weight_range == "reduced", activation_type=getattr(QuantType, recipe.activation),
            weight_type=getattr(QuantType, recipe.weight), calibrate_method=getattr(CalibrationMethod, recipe.method),
            nodes_to_exclude=exclude, extra_options=extra, calibration_cache_path=str(cache))
    except Exception as exc:  # onnxruntime raises plain exceptions from deep inside
        raise ModelError(f"onnxruntime quantization ({recipe.name}) failed: {exc}") from exc
    return out


def measured_with(threads: int = 1) -> dict:
    """Which runtime, threads and CPU the recipe latencies were measured on (recorded in the bundle)."""
    import platform

    import onnxruntime as ort

    return {"runtime": f"onnxruntime {ort.__version__}", "provider": "CPUExecutionProvider", "threads": threads,
            "machine": platform.machine(), "processor": platform.processor() or None}


def session(path: Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_batched(sess, x: np.ndarray, batch: int = 32) -> np.ndarray:
    name = sess.get_inputs()[0].name
    fixed = sess.get_inputs()[0].shape[0]
    step = fixed if isinstance(fixed, int) and fixed > 0 else batch
    return np.concatenate([sess.run(None, {name: x[i:i + step]})[0].reshape(len(x[i:i + step]), -1)
                           for i in range(0, len(x), step)])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def choose(measured: list[tuple[Recipe, Measurement]]) -> Recipe:
    """The recipe to keep: the highest mean cosine; among those within ``NEAR_EQUAL`` of it, the first in
    :data:`PREFERENCE` (recipes it does not name come after, in the order measured). Timing plays no part."""
    best = max(m.mean_cosine for _, m in measured)
    near = [r for r, m in measured if m.mean_cosine >= best - NEAR_EQUAL]
    rank = {name: i for i, name in enumerate(PREFERENCE)}
    return min(near, key=lambda r: (rank.get(r.name, len(rank)), [x for x, _ in measured].index(r)))


def quantize_onnx(fp32: Path, out: Path, calib: np.ndarray, probe: np.ndarray, work: Path, dynamo: bool = False,
                  candidates: tuple[Recipe, ...] = CANDIDATES, progress: bool = True) -> QuantResult:
    """Quantize ``fp32`` (ONNX, float model inputs ``calib`` / ``probe`` already preprocessed) with each
    candidate recipe, measure each on ``probe``, write the chosen one to ``out``."""
    from tqdm import tqdm

    work.mkdir(parents=True, exist_ok=True)
    pre = preprocess_for_quant(fp32, work / "model.pre.onnx", dynamo)
    ref = run_batched(session(fp32), probe)
    input_name = session(pre).get_inputs()[0].name
    x1 = probe[:1]
    results: list[tuple[Recipe, Measurement, Path]] = []

    def attempt(recipe: Recipe) -> None:
        t0 = time.perf_counter()
        path = quantize_with(recipe, pre, work / f"{recipe.name}.onnx", calib, input_name, work)
        sess = session(path)
        cos = cosines(ref, run_batched(sess, probe))
        m = Measurement(recipe.describe(), float(cos.mean()), float(cos.min()), 0.0, round(time.perf_counter() - t0, 1))
        log.info("int8 ONNX %s: mean cosine %.4f, min %.4f", recipe.name, m.mean_cosine, m.min_cosine)
        results.append((recipe, m, path))

    failed: dict[str, str] = {}
    for recipe in tqdm(candidates, desc="int8 ONNX recipes", unit="recipe", disable=not progress):
        try:
            attempt(recipe)
        except ModelError as exc:  # one recipe failing (e.g. a histogram calibrator on few faces) is not fatal
            log.warning("int8 ONNX %s skipped: %s", recipe.name, exc)
            failed[recipe.name] = str(exc)
    if not results:
        raise ModelError(f"every int8 ONNX recipe failed ({', '.join(failed)}); see the log above")
    from .report import round_robin_ms

    sessions = [session(fp32)] + [session(p) for _, _, p in results]
    fp32_ms, *int8_ms = round_robin_ms([lambda s=s: s.run(None, {input_name: x1}) for s in sessions], 40, stat=np.min)
    log.info("fp32 ONNX: %.2f ms per face (1 thread, fastest of 40 interleaved runs)", fp32_ms)
    for (recipe, m, _), ms in zip(results, int8_ms):
        m.latency_ms = round(ms, 3)
        log.info("int8 ONNX %s: %.2f ms per face (1 thread, fastest of 40 interleaved runs)", recipe.name, ms)
    recipe = choose([(r, m) for r, m, _ in results])
    path = next(p for r, _, p in results if r == recipe)
    out.write_bytes(path.read_bytes())
    return QuantResult(out, recipe, [m for _, m, _ in results], round(fp32_ms, 3), failed)
