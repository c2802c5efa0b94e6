"""Acceptance runs on celeba-loose: triplet (semi-hard), triplet (batch-hard) and pairwise training, each evaluated
on the identities held out by the run's split, next to the untrained network and the reference ONNX.

Everything goes through the ``edgeface`` command line, so the commands in docs/training.md are exactly what ran::

    nohup .venv/bin/python bench/train_celeba.py --out /work/runs/celeba-w05 --cache /work/runs/cache/celeba-loose \
        --width 0.5 --time-budget 45 --threads 1 --parallel 3 > /work/runs/celeba-w05/bench.log 2>&1 &

Runs whose ``checkpoint.pt`` already exists are not retrained (``--retrain`` forces it); evaluations are always
redone. Results: OUT/results.json and OUT/results.md (a markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
EDGEFACE = [sys.executable, "-m", "edgeface.cli"]

RUNS = {
    "triplet-semi-hard": ["--loss", "triplet", "--mining", "semi-hard"],
    "triplet-batch-hard": ["--loss", "triplet", "--mining", "batch-hard"],
    "pair": ["--loss", "pair"],
}


def sh(cmd: list[str], log: Path | None = None) -> subprocess.Popen:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    out = open(log, "w") if log else None
    return subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT if out else None, cwd=ROOT)


def untrained(out: Path, cache: Path, seed: int, calibrate_bn: bool, width: float) -> Path:
    """The untrained network's checkpoint, with the same split as the runs. ``calibrate_bn``: BatchNorm running
    statistics estimated on 20 training batches (no weight changes) - a fairer floor than the init statistics."""
    import numpy as np
    import torch

    from edgeface.cropcache import load_cache, split_identities, write_split
    from edgeface.export.checkpoint import save_checkpoint
    from edgeface.export.data import to_tensor
    from edgeface.export.model import build_model

    torch.set_num_threads(1)
    name = "untrained-bn" if calibrate_bn else "untrained"
    run = out / name
    run.mkdir(parents=True, exist_ok=True)
    c = load_cache(cache)
    train_ids, val_ids = split_identities(c.identity_names, 0.2, seed)
    write_split(run, train_ids, val_ids, seed, 0.2, c.manifest_sha256)
    torch.manual_seed(seed)
    model = build_model({"width": width})
    if calibrate_bn:
        x, _, _ = c.select(train_ids)
        rng = np.random.default_rng(seed)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the calibration batches
        model.train()
        with torch.no_grad():
            for _ in range(20):
                model(to_tensor(x[rng.choice(len(x), 32, replace=False)]))
    save_checkpoint(run / "checkpoint.pt", model, {"width": width}, manifest_sha256=c.manifest_sha256, epoch=0, step=0)
    return run


def evaluate(model: Path, cache: Path, run: Path, name: str) -> dict:
    js, png = run / f"eval-{name}.json", run / f"eval-{name}.png"
    rc = sh(EDGEFACE + ["eval", "--model", model, "--data", cache, "--json", js, "--plot", png,
                        "--val-split", run, "--no-progress"]).wait()
    if rc != 0:
        raise SystemExit(f"eval of {model} failed ({rc})")
    return json.loads(js.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SHARED / "data" / "faces" / "celeba-loose"))
    ap.add_argument("--cache", default=None, help="prepared cache (default OUT/cache, prepared if missing)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--time-budget", type=float, default=15.0, help="minutes per training run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=float, default=1.0, help="network width multiplier (all runs and the baseline)")
    ap.add_argument("--parallel", type=int, default=1, help="training runs at the same time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--reference", default=str(SHARED / "models" / "reference" / "mobilefacenet_128d.onnx"))
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache) if args.cache else out / "cache"
    if not (cache / "manifest.json").is_file():
        sh(EDGEFACE + ["prepare", "--data", args.data, "--out", cache, "--no-progress"]).wait()

    todo = [r for r in args.runs if args.retrain or not (out / r / "checkpoint.pt").is_file()]
    running: list[tuple[str, subprocess.Popen]] = []
    t0 = time.monotonic()
    while todo or running:
        while todo and len(running) < args.parallel:
            r = todo.pop(0)
            running.append((r, sh(EDGEFACE + ["train", "--data", cache, "--out", out / r, *RUNS[r],
                                              "--time-budget", args.time_budget, "--threads", args.threads,
                                              "--seed", args.seed, "--width", args.width, "--no-progress"],
                                           out / f"{r}.log")))
        time.sleep(5)
        for r, p in list(running):
            if p.poll() is not None:
                print(f"{r}: exit {p.returncode} after {(time.monotonic() - t0) / 60:.1f} min", flush=True)
                running.remove((r, p))

    results = {}
    for calibrate in (False, True):
        run = untrained(out, cache, args.seed, calibrate, args.width)
        results[run.name] = evaluate(run / "checkpoint.pt", cache, run, "val")
    for r in args.runs:
        results[r] = evaluate(out / r / "checkpoint.pt", cache, out / r, "val")
        results[r]["train"] = json.loads((out / r / "metrics.json").read_text())[-1]
    if Path(args.reference).is_file():
        results["reference-onnx"] = evaluate(Path(args.reference), cache, out / args.runs[0], "reference")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")

    lines = ["| model | training | TAR@1e-2 | TAR@1e-3 | EER | rank-1 | FNIR@FPIR 1e-2 | val images / ids / no face |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        tr = r.get("train")
        how = f"{tr['step']} steps, {tr['elapsed_s'] / 60:.0f} min" if tr else "-"
        f = r["fnir_at_fpir"]["1e-2"]
        lines.append(f"| {name} | {how} | {r['tar_at_far']['1e-2']:.3f} | {r['tar_at_far']['1e-3']:.3f} | "
                     f"{r['eer']:.3f} | {r['rank1']:.3f} | {'-' if f is None else f'{f:.3f}'} | "
                     f"{r['images']} / {r['identities']} / {r['no_face']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
