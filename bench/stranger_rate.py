"""How often a stranger gets in, per attempt, at a door of N people enrolled with one photo each, at a calibrated
FAR per comparison, and what the ambiguity margin (decades of FAR) changes: on calibration photos only (people
the door scenes never show), many random splits.

Reads the embeddings ``bench/scene_levers.py`` caches (``levers-calibration-<key>.npz``: each photo with its mirror
image, as enrollment embeds). Each split: half the identities calibrate (FAR ``--far``), ``--enrolled`` of the
rest are enrolled with their first photo and probed with their others, the remaining ones are strangers.

    .venv/bin/python bench/stranger_rate.py /work/runs/scene4/levers-calibration-onnx_int8.npz
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("embeddings", help="levers-calibration-<key>.npz from bench/scene_levers.py")
    ap.add_argument("--far", type=float, default=1e-4)
    ap.add_argument("--enrolled", type=int, default=30)
    ap.add_argument("--splits", type=int, default=40)
    ap.add_argument("--margins", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2, 3])
    args = ap.parse_args()

    from edgeface.bundle import Threshold
    from edgeface.calibrate import calibrate
    from edgeface.thresholds import ScoreScale

    z = np.load(args.embeddings)
    E, L = z["mirror"], z["labels"]
    ids = sorted(set(L))
    rng = np.random.default_rng(0)
    res = {m: {"genuine": [0, 0], "stranger": [0, 0]} for m in args.margins}
    for rep in range(args.splits):
        perm = rng.permutation(ids)
        cal_ids = set(perm[: len(ids) // 2])
        rest = perm[len(ids) // 2:]
        cm = np.array([label in cal_ids for label in L])
        c = calibrate(E[cm], L[cm], args.far, seed=rep)
        scale = ScoreScale(Threshold(value=c.threshold, far=args.far, points=c.points, impostor_pairs=c.impostor_pairs,
                                     top_impostor=c.top_impostor, tail=c.tail))
        enrolled, strangers = list(rest[: args.enrolled]), rest[args.enrolled:]
        templates, probes, owner = [], [], []
        for i in enrolled:
            rows = np.flatnonzero(L == i)
            templates.append(E[rows[0]])
            probes += [E[j] for j in rows[1:]]
            owner += [i] * (len(rows) - 1)
        G = np.array(templates)
        S = np.array([E[j] for i in strangers for j in np.flatnonzero(L == i)])
        for X, kind in ((np.array(probes), "genuine"), (S, "stranger")):
            s = X @ G.T
            order = np.argsort(-s, axis=1)
            rows = np.arange(len(s))
            best, second = s[rows, order[:, 0]], s[rows, order[:, 1]]
            decades = np.array([scale.decades(b, c2) for b, c2 in zip(best, second)])
            for m in res:
                ok = (best >= c.threshold) & (decades >= m)
                if kind == "genuine":
                    ok &= np.array(enrolled)[order[:, 0]] == np.array(owner)
                res[m][kind][0] += int(ok.sum())
                res[m][kind][1] += len(ok)
    out = {f"{m:g}": {"tar": r["genuine"][0] / r["genuine"][1], "stranger_rate": r["stranger"][0] / r["stranger"][1],
                      "strangers_in": r["stranger"][0], "stranger_attempts": r["stranger"][1]} for m, r in res.items()}
    print(json.dumps({"far": args.far, "enrolled": args.enrolled, "splits": args.splits, "by_margin_decades": out},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
