"""int8 vs fp32 latency per runtime, one thread, one aligned face at a time (what the door does).

    .venv/bin/python bench/int8_latency.py BUNDLE [BUNDLE ...] [--runs 300] [--threads 1] [--out bench/results/int8_latency.json]

Models of a bundle are timed round-robin (one call each, in turn, ``runs`` times) so that a busy shared CPU
slows them alike; the median (and the minimum, the least disturbed run) per model is reported and the int8/fp32
ratio per runtime (goal: <= 0.6). ``--keys`` limits the models (e.g. tflite keys only, to run this in the
tflite-runtime venv, which has no onnxruntime).
Preprocessing and L2 normalisation are included (``Embedder.embed``), as on the device. Writes JSON and a PNG.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from edgeface.bundle import Bundle
from edgeface.runtime import open_embedder

GOAL = 0.6


def bench_bundle(path: Path, runs: int, threads: int, keys: list[str] | None = None) -> dict:
    bundle = Bundle.load(path)
    embedders = {key: open_embedder(bundle, model=key, threads=threads) for key in keys or bundle.meta.models}
    crop = np.random.default_rng(0).integers(0, 255, (1, *bundle.meta.input.size, 3), dtype=np.uint8)
    for e in embedders.values():
        for _ in range(10):
            e.embed(crop)
    times = {k: [] for k in embedders}
    for _ in range(runs):
        for key, e in embedders.items():
            t = time.perf_counter()
            e.embed(crop)
            times[key].append(time.perf_counter() - t)
    rows = {k: {"backend": embedders[k].backend, "median_ms": round(float(np.median(v)) * 1e3, 3),
                "p90_ms": round(float(np.percentile(v, 90)) * 1e3, 3), "min_ms": round(float(np.min(v)) * 1e3, 3),
                "size_bytes": bundle.model(k).size}
            for k, v in times.items()}
    ratios, ratios_min = {}, {}
    for fmt in ("onnx", "tflite"):
        if f"{fmt}_int8" in rows and f"{fmt}_fp32" in rows:
            ratios[fmt] = round(rows[f"{fmt}_int8"]["median_ms"] / rows[f"{fmt}_fp32"]["median_ms"], 3)
            ratios_min[fmt] = round(rows[f"{fmt}_int8"]["min_ms"] / rows[f"{fmt}_fp32"]["min_ms"], 3)
    chosen = bundle.meta.notes.get("onnx_int8", {}).get("chosen")
    return {"bundle": str(path), "source": bundle.meta.notes.get("source", {}).get("kind"), "onnx_int8_recipe": chosen,
            "models": rows, "int8_over_fp32": ratios, "int8_over_fp32_by_min": ratios_min, "goal": GOAL,
            "meets_goal": {k: v <= GOAL for k, v in ratios.items()}}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keys", nargs="*", help="bundle model keys to time (default: all)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "int8_latency.json")
    args = ap.parse_args()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    result = {"cpu": _cpu(), "avx2": " avx2" in flags, "avx512_vnni": "avx512_vnni" in flags or "avx_vnni" in flags,
              "threads": args.threads, "runs": args.runs, "bundles": []}
    for b in args.bundles:
        r = bench_bundle(b, args.runs, args.threads, args.keys)
        result["bundles"].append(r)
        for key, row in r["models"].items():
            print(f"{b.name:24s} {key:12s} {row['backend']:14s} median {row['median_ms']:7.2f} ms "
                  f"(p90 {row['p90_ms']:.2f}, min {row['min_ms']:.2f})")
        print(f"{b.name:24s} int8/fp32 median: {r['int8_over_fp32']}, by min: {r['int8_over_fp32_by_min']} "
              f"(goal <= {GOAL})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    try:
        _plot(result, args.out.with_suffix(".png"))
    except ImportError:  # the small tflite-runtime venv has no matplotlib
        pass
    print(f"wrote {args.out}")
    return 0


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values = [], []
    for b in result["bundles"]:
        for key, row in b["models"].items():
            labels.append(f"{Path(b['bundle']).name}\n{key}")
            values.append(row["median_ms"])
    fig, ax = plt.subplots(figsize=(max(6, len(labels) * 0.9), 4))
    ax.bar(range(len(values)), values, color=["tab:blue" if "fp32" in lab else "tab:orange" for lab in labels])
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel(f"median ms per face, {result['threads']} thread")
    ax.set_title("embedder latency: fp32 (blue) vs int8 (orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
