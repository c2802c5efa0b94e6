"""Matching speed on one core: a 100,000 x 128 gallery, median milliseconds per query (goal: <= 5 ms).

Measures the exact float32 product and the default matcher (int8 candidates, float32 rescoring, exact answers),
on queries near enrolled vectors (a person at the door) and random ones (a stranger), and checks that both give
the same answers. Writes JSON and a latency plot.

    .venv/bin/python bench/match_speed.py --out bench/results/match_speed.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from edgeface.gallery import Gallery, Person  # noqa: E402
from edgeface.match import Matcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def synthetic_gallery(n: int, d: int, seed: int) -> Gallery:
    """n people with one random unit vector each (built directly: Gallery.add checks names one by one)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, d)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    g = Gallery.new("00" * 32, d)
    g.people = [Person(f"{i:06d}", f"person {i}", "", "", e[i:i + 1]) for i in range(n)]
    return g


def timed(matcher: Matcher, queries: np.ndarray) -> tuple[np.ndarray, list]:
    out, ms = [], []
    for q in queries:
        t0 = time.perf_counter()
        out.append(matcher.match(q))
        ms.append((time.perf_counter() - t0) * 1e3)
    return np.array(ms), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/match_speed.json")
    args = ap.parse_args()

    g = synthetic_gallery(args.people, args.dim, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    half = args.queries // 2
    enrolled = np.concatenate([g.people[i].embeddings for i in rng.choice(args.people, half, replace=False)])
    near = enrolled + 0.06 * rng.standard_normal(enrolled.shape).astype(np.float32)  # cosine ~0.8 to its person
    strangers = rng.standard_normal((args.queries - half, args.dim)).astype(np.float32)
    queries = np.concatenate([near, strangers])

    results = {}
    answers = {}
    for name, fast in (("float32_exact", False), ("int8_candidates", None)):
        t0 = time.perf_counter()
        m = Matcher(g, fast=fast)
        build_s = time.perf_counter() - t0
        timed(m, queries[:5])  # warm-up
        m.fallbacks = 0
        ms, found = timed(m, queries)
        answers[name] = found
        results[name] = {
            "build_s": round(build_s, 3),
            "median_ms": round(float(np.median(ms)), 3),
            "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "p10_ms": round(float(np.percentile(ms, 10)), 3),  # on a shared machine: closest to uncontended
            "median_ms_enrolled": round(float(np.median(ms[:half])), 3),
            "median_ms_strangers": round(float(np.median(ms[half:])), 3),
            "fallbacks": m.fallbacks,
            "latencies_ms": [round(float(v), 4) for v in ms],
        }
        print(f"{name:16s} median {results[name]['median_ms']:.2f} ms, p10 {results[name]['p10_ms']:.2f} ms, "
              f"p90 {results[name]['p90_ms']:.2f} ms, "
              f"build {build_s:.2f} s, fallbacks {m.fallbacks}/{len(queries)}")
    same = all(a.person_id == b.person_id and a.second_person_id == b.second_person_id
               and abs(a.score - b.score) < 1e-5 for a, b in zip(answers["float32_exact"], answers["int8_candidates"]))
    print(f"answers identical: {same}")
    report = {"people": args.people, "dim": args.dim, "queries": len(queries), "threads": 1,
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "answers_identical": same, **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name in results:
            ax.hist(results[name]["latencies_ms"], bins=40, alpha=0.6, label=f"{name} (median {results[name]['median_ms']:.1f} ms)")
        ax.axvline(5.0, color="k", ls="--", lw=1, label="goal 5 ms")
        ax.set_xlabel(f"ms per query, {args.people:,} x {args.dim} gallery, 1 thread")
        ax.set_ylabel("queries")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"), dpi=110)
    except ImportError:
        pass
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
