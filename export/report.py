"""The parity report: does each exported file still tell people apart, how big and fast is it, what stayed float.

For every artefact of a bundle, run through the *core runtimes* (``edgeface.runtime.open_embedder``, exactly
what the door runs): size; mean and min cosine to the reference embeddings (the PyTorch model, or the source
ONNX of an import) on held-out real faces; TAR@1e-3 and EER on the validation identities and the drop in TAR
points against the reference; median single-face latency at 1 and 2 threads; the op types left in float.
Written as ``report.json`` (+ ``report.png``, the ROC curves) and printed as a table.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from edgeface.metrics import verification
from edgeface.preprocess import l2_normalize

MIN_MEAN_COSINE = 0.98
MAX_TAR_DROP_POINTS = 2.0
FAR = "1e-3"

#: onnxruntime op types that run on integers (after its QDQ fusion), and the ones that only convert
ONNX_INT_PREFIXES = ("QLinear", "QGemm", "ConvInteger", "MatMulInteger", "QAttention", "DynamicQuantize")
ONNX_CONVERT = {"QuantizeLinear", "DequantizeLinear"}
TFLITE_CONVERT = {"QUANTIZE", "DEQUANTIZE"}


def onnx_op_precision(path: str | Path) -> dict:
    """Op types of the graph onnxruntime actually runs (QDQ pairs fused into integer kernels)."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        nodes = onnx.load(opts.optimized_model_filepath).graph.node
    ops = Counter(n.op_type for n in nodes)
    return _split(ops, lambda op: op.startswith(ONNX_INT_PREFIXES), ONNX_CONVERT)


def tflite_op_precision(path: str | Path) -> dict:
    """TFLite op types by the dtype of their first input (no delegate, so every op is listed as itself)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    dtype = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    ints, floats, convert = Counter(), Counter(), Counter()
    for op in interp._get_ops_details():  # noqa: SLF001 - the only API listing a model's ops
        name = op["op_name"]
        first = [i for i in op["inputs"] if i >= 0][:1]
        if name in TFLITE_CONVERT:
            convert[name] += 1
        elif first and dtype.get(first[0]) in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)):
            ints[name] += 1
        else:
            floats[name] += 1
    return {"int": dict(ints), "float": dict(floats), "convert": dict(convert)}


def _split(ops: Counter, is_int: Callable[[str], bool], convert: set) -> dict:
    return {"int": {k: v for k, v in ops.items() if is_int(k)},
            "float": {k: v for k, v in ops.items() if not is_int(k) and k not in convert},
            "convert": {k: v for k, v in ops.items() if k in convert}}


def round_robin_ms(calls: list[Callable[[], object]], rounds: int = 40, warmup: int = 3,
                   stat: Callable = np.median) -> list[float]:
    """Milliseconds of each call (``stat`` over the runs: median by default; ``np.min``, the least disturbed run,
    ranks candidates best on a busy CPU), timed round-robin (one call each, in turn) so that other load on a
    shared CPU slows every candidate alike."""
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            t = time.perf_counter()
            call()
            times[i].append(time.perf_counter() - t)
    return [round(float(stat(t)) * 1e3, 3) for t in times]


def _verify(emb: np.ndarray, labels: np.ndarray) -> dict:
    res, genuine, impostor = verification(emb, labels)
    tar = res.tar_at_far.get(FAR)
    return {"tar_at_far": res.tar_at_far, "tar_1e-3": tar, "eer": res.eer, "genuine_pairs": res.genuine_pairs,
            "impostor_pairs": res.impostor_pairs, "_scores": (genuine, impostor)}


def evaluate(bundle_dir: str | Path, reference_embed: Callable[[np.ndarray], np.ndarray], crops: np.ndarray,
             labels: np.ndarray | None, reference_name: str, keys: list[str] | None = None,
             latency_runs: int = 40, validation: str = "") -> dict:
    """Measure every model of the bundle (or ``keys``) against ``reference_embed`` (crops -> raw embeddings)."""
    from edgeface.bundle import Bundle
    from edgeface.runtime import open_embedder

    bundle = Bundle.load(bundle_dir)
    keys = keys or list(bundle.meta.models)
    ref = l2_normalize(reference_embed(crops))
    report = {"reference": reference_name, "validation": validation, "faces": int(len(crops)),
              "identities": int(len(set(labels.tolist()))) if labels is not None else 0, "far": FAR,
              "thresholds": {"min_mean_cosine": MIN_MEAN_COSINE, "max_tar_drop_points": MAX_TAR_DROP_POINTS},
              "artefacts": {}}
    scores, embs = {}, {}
    if labels is not None:
        v = _verify(ref, labels)
        scores[reference_name] = v.pop("_scores")
        report["reference_verification"] = v
    for key in keys:
        mf = bundle.model(key)
        emb_1 = open_embedder(bundle, model=key, threads=1)
        emb = emb_1.embed(crops)
        embs[key] = emb
        cos = np.sum(emb * ref, axis=1)
        row = {"file": mf.file, "format": mf.format, "precision": mf.precision, "size_bytes": mf.size,
               "backend": emb_1.backend, "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()),
               "latency_ms": {},
               "ops": (onnx_op_precision if mf.format == "onnx" else tflite_op_precision)(bundle.path_of(key))}
        if labels is not None:
            v = _verify(emb, labels)
            scores[key] = v.pop("_scores")
            row.update(v)
            ref_tar = report["reference_verification"]["tar_1e-3"]
            if row["tar_1e-3"] is not None and ref_tar is not None:
                row["tar_drop_points"] = round((ref_tar - row["tar_1e-3"]) * 100, 3)
        report["artefacts"][key] = row
    timed = [(key, t) for key in keys for t in (1, 2)]
    embedders = [open_embedder(bundle, model=k, threads=t) for k, t in timed]
    # one aligned face through ``embed``: preprocessing and normalisation included, as on the door
    ms = round_robin_ms([lambda e=e: e.embed(crops[:1]) for e in embedders], latency_runs)
    for (key, t), v in zip(timed, ms):
        report["artefacts"][key]["latency_ms"][str(t)] = v
    for key, row in report["artefacts"].items():  # int8 vs the fp32 file of the same format
        fp32 = report["artefacts"].get(f"{row['format']}_fp32")
        if row["precision"] == "int8" and fp32 and row.get("tar_1e-3") is not None and fp32.get("tar_1e-3") is not None:
            row["tar_drop_vs_fp32_points"] = round((fp32["tar_1e-3"] - row["tar_1e-3"]) * 100, 3)
        if row["precision"] == "int8" and fp32:
            row["mean_cosine_to_fp32"] = float(np.mean(np.sum(embs[key] * embs[f"{row['format']}_fp32"], axis=1)))
    report["_scores"] = scores
    return report


def problems(report: dict) -> list[str]:
    """Why an int8 artefact is not good enough (empty when all pass)."""
    out = []
    for key, row in report["artefacts"].items():
        if row["precision"] != "int8":
            continue
        if row["mean_cosine"] < MIN_MEAN_COSINE:
            out.append(f"{key}: mean cosine to the reference {row['mean_cosine']:.4f} < {MIN_MEAN_COSINE}")
        drop = row.get("tar_drop_points")
        if drop is not None and drop > MAX_TAR_DROP_POINTS:
            out.append(f"{key}: TAR@{FAR} drops {drop:.2f} points (> {MAX_TAR_DROP_POINTS})")
    return out


def table(report: dict) -> str:
    head = f"{'model':12s} {'size':>8s} {'cos mean':>8s} {'cos min':>8s} {'TAR@1e-3':>8s} {'drop':>6s} " \
           f"{'EER':>6s} {'ms 1t':>7s} {'ms 2t':>7s}  ops in float"
    lines = [f"parity vs {report['reference']} on {report['faces']} faces of {report['identities']} identities "
             f"({report.get('validation', '')})"]
    rv = report.get("reference_verification")
    if rv:
        lines.append(f"reference TAR@1e-3 {_pct(rv['tar_1e-3'])}, EER {_pct(rv['eer'])} "
                     f"({rv['genuine_pairs']} genuine / {rv['impostor_pairs']} impostor pairs)")
    lines.append(head)
    for key, r in report["artefacts"].items():
        floats = ",".join(f"{k}x{v}" for k, v in sorted(r["ops"]["float"].items())) if r["precision"] == "int8" \
            else "(all: fp32 model)"
        lines.append(f"{key:12s} {r['size_bytes'] / 1e6:7.2f}M {r['mean_cosine']:8.4f} {r['min_cosine']:8.4f} "
                     f"{_pct(r.get('tar_1e-3')):>8s} {r.get('tar_drop_points', float('nan')):6.2f} "
                     f"{_pct(r.get('eer')):>6s} {r['latency_ms']['1']:7.2f} {r['latency_ms']['2']:7.2f}  "
                     f"{floats or '-'}")
    return "\n".join(lines)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def write(report: dict, out_dir: str | Path) -> Path:
    """``report.json`` and ``report.png`` (ROC per artefact) in ``out_dir``."""
    out_dir = Path(out_dir)
    scores = report.pop("_scores", {})
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    if scores:
        _plot(scores, out_dir / "report.png")
    return path


def _plot(scores: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeface.metrics import roc

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (genuine, impostor) in scores.items():
        far, tar, _ = roc(genuine, impostor)
        keep = far > 0
        ax.plot(far[keep], tar[keep], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.axvline(1e-3, color="grey", lw=0.5)
    ax.set_title("verification ROC on the validation identities")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
