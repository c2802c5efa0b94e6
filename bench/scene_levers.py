"""Which levers pay on the hard door scene: each decision rule measured on the same frames, side by side.

Takes the working folder of ``bench/door_scene.py`` (its bundle, split, gallery and clip). Every frame of the clip
goes once through the model (:meth:`Recognizer.observe`, with and without the mirror image), and the calibration
people's photos are embedded once; then the door's policy (:class:`edgeface.device.policy.Policy`, the real one)
is replayed on those frames under each variant:

* the door's default: the quality-weighted mean of the last n usable frames (with the mirror image), decided at
  the calibrated threshold, a failed track's second chance at the stricter one;
* a failed track's second chance at the door's own threshold;
* no live mirror (the embedder once per frame);
* equal weights; one frame decides (n = k = 1, a proxy for deciding frame by frame); other k and n;
* the ambiguity rule at other margins (decades of FAR);
* thresholds from photos embedded without the mirror image, and no live mirror.

Reported per variant: employees let in, strangers let in, wrong person, time to unlock p50. JSON and a PNG.

    .venv/bin/python bench/scene_levers.py --work /work/runs/scene --out bench/results/scene_levers.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from door_scene import FACES, YUNET  # noqa: E402


def frames_of(recognizer, clip: Path, cache: Path) -> dict:
    """Per processed frame: t, box, usable, embedding (plain and mirrored), quality weight, reason."""
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        return {k: z[k] for k in z.files}
    import cv2
    from tqdm import tqdm

    from edgeface.device.policy import quality_weight

    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    rows = {"t": [], "box": [], "emb": [], "emb_mirror": [], "weight": [], "reason": [], "ms": []}
    i = 0
    bar = tqdm(desc="frames", unit="frame")
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        obs = recognizer.observe(frame)
        rows["t"].append(i / fps)
        rows["ms"].append(obs.latency_ms)
        rows["box"].append(None if obs.face is None else tuple(float(v) for v in obs.face.box))
        if obs.usable:
            rows["emb"].append(obs.embedding)
            rows["emb_mirror"].append(recognizer.embed(obs.crop[None], mirror=True)[0])
            rows["weight"].append(quality_weight(obs.report))
            rows["reason"].append(None)
        else:
            rows["emb"].append(None)
            rows["emb_mirror"].append(None)
            rows["weight"].append(0.0)
            rows["reason"].append(",".join(obs.reasons) if obs.face is not None else None)
        i += 1
        bar.update()
    bar.close()
    out = {k: np.array(v, dtype=object) for k, v in rows.items()}
    np.savez(cache, **out)
    return out


def calibration_thresholds(recognizer, ids: list[str], far: float, cache: Path):
    """The bundle's Threshold records for this model from the calibration people, both representations."""
    from edgeface.bundle import Threshold
    from edgeface.calibrate import calibrate
    from edgeface.faceset import Photo

    if cache.exists():
        z = np.load(cache)
        emb_m, emb_p, labels = z["mirror"], z["plain"], z["labels"]
    else:
        photos = [Photo(i, p) for i in ids for p in sorted((FACES / i).iterdir())]
        got = recognizer.embed_photos(photos, desc="calibration")
        labels = got.labels
        crops = []
        for ph in got.accepted:
            crops.append(recognizer.check_photo(recognizer.read_photo(ph.path)).crop)
        emb_p = np.concatenate([recognizer.embed(np.stack(crops[i:i + 64])) for i in range(0, len(crops), 64)])
        emb_m = got.embeddings
        np.savez(cache, mirror=emb_m, plain=emb_p, labels=labels)
    out = {}
    for name, emb in (("mirror", emb_m), ("plain", emb_p)):
        cal = calibrate(emb, labels, far, scorer=recognizer.scorer)
        out[name] = Threshold(value=cal.threshold, far=far, tar=cal.tar, points=cal.points,
                              impostor_pairs=cal.impostor_pairs, top_impostor=cal.top_impostor, tail=cal.tail,
                              mirror=name == "mirror")
    return out


def probe_calibration(npz: Path, far: float):
    """A Threshold record from door-like probes (fused degraded frames, ``P``) against clean templates (``T``):
    impostor pairs are every probe against every other person's template."""
    from edgeface.bundle import Threshold
    from edgeface.calibrate import far_points, tail_fit, top_impostor
    from edgeface.metrics import threshold_at_far

    z = np.load(npz)
    P, T, L = z["P"], z["T"], z["L"]
    S = P @ T.T
    imp = S[L[:, None] != L[None, :]].astype(np.float64)
    if len(imp) > 4_000_000:
        imp = np.random.default_rng(0).choice(imp, 4_000_000, replace=False)
    gen = S[(L[:, None] == L[None, :]) & ~np.eye(len(L), dtype=bool)]
    value = float(np.nextafter(threshold_at_far(imp, far), np.inf))
    return Threshold(value=value, far=far, tar=float(np.mean(gen >= value)), points=far_points(imp),
                     impostor_pairs=len(imp), top_impostor=top_impostor(imp), tail=tail_fit(imp), mirror=True)


def replay(frames: dict, policy, mirror: bool) -> list:
    from edgeface.device.policy import Sighting

    decisions = []
    embs = frames["emb_mirror"] if mirror else frames["emb"]
    for t, box, emb, w, reason in zip(frames["t"], frames["box"], embs, frames["weight"], frames["reason"]):
        s = None if box is None else Sighting(tuple(box), None if emb is None else np.asarray(emb, np.float32),
                                              float(w), reason)
        decisions += policy.observe(float(t), s)
    decisions += policy.end(float(frames["t"][-1]) + 10)
    return decisions


def score(decisions, spans, enrolled: set[str]) -> dict:
    granted = [d for d in decisions if d.kind == "granted"]
    rows = []
    for s in spans:
        mine = [d for d in granted if s.t0 - 0.01 <= d.t <= s.t1 + 1.0]
        rows.append({"who": s.label, "enrolled": s.label in enrolled, "opened_for": sorted({d.person for d in mine}),
                     "time": round(mine[0].t - s.t0, 2) if mine else None})
    emp = [r for r in rows if r["enrolled"]]
    ok = [r for r in emp if r["opened_for"] == [r["who"]]]
    times = [r["time"] for r in ok]
    return {"employees_let_in": len(ok), "employees": len(emp),
            "strangers_let_in": sum(1 for r in rows if not r["enrolled"] and r["opened_for"]),
            "wrong_person": sum(1 for r in emp if r["opened_for"] and r["opened_for"] != [r["who"]]),
            "time_to_unlock_p50": statistics.median(times) if times else None,
            "lockouts": sum(1 for d in decisions if d.kind == "lockout"),
            "missed": [r["who"] for r in emp if r not in ok]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--model", default="onnx_int8")
    ap.add_argument("--far", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--door", choices=("other", "enrolled"), default="other")
    ap.add_argument("--severity", choices=("hard", "harsh"), default="hard")
    args = ap.parse_args()
    os.environ.setdefault("EDGEFACE_YUNET", str(YUNET))

    from edgeface.bundle import Bundle
    from edgeface.config import PolicyConfig
    from edgeface.device.policy import Policy, PolicyParams
    from edgeface.device.scene import celeba_cast, compose_video, hard_scene, spans_of
    from edgeface.gallery import Gallery
    from edgeface.recognizer import Recognizer
    from edgeface.thresholds import resolve

    work = args.work
    parts = json.loads((work / "split.json").read_text())
    bundle = Bundle.load(work / "bundle")
    rec = Recognizer.from_bundle(bundle, args.model)
    gallery = Gallery.load(work / f"people-{len(parts['employees'])}.gallery")
    enrolled = {p.name for p in gallery.people}
    _, cast = celeba_cast(FACES, parts["employees"], parts["strangers"], parts["background"],
                          {e: Path(p) for e, p in parts["enroll"].items()}, door=args.door)
    clip = work / f"door-{args.severity}-{args.seed}-{args.door}.avi"
    appearances = hard_scene(cast, seed=args.seed, severity=args.severity)
    spans = spans_of(appearances, fps=10.0, gap_s=1.5) if clip.exists() else \
        compose_video(clip, appearances, fps=10.0, gap_s=1.5, seed=args.seed)
    frames = frames_of(rec, clip, work / f"levers-frames-{args.model}-{args.severity}-{args.door}.npz")
    cals = calibration_thresholds(rec, parts["calibration"], args.far, work / f"levers-calibration-{args.model}.npz")
    matcher = rec.matcher(gallery)
    door_npz = work / "doorcal.npz"
    if door_npz.exists():
        cals["door"] = probe_calibration(door_npz, args.far)

    def run(name, cal="mirror", mirror=True, **policy_kw):
        bundle.meta.thresholds[args.model] = cals[cal]
        pc = PolicyConfig(**{k: v for k, v in policy_kw.items() if k in PolicyConfig.model_fields})
        th = resolve(bundle, args.model, pc)
        params = PolicyParams.from_config(pc, th)
        for field in ("weighted", "second_chance_strict"):
            if field in policy_kw:
                params = replace(params, **{field: policy_kw[field]})
        result = score(replay(frames, Policy(params, matcher, rec.scorer), mirror), spans, enrolled)
        result.update(name=name, door=round(th.door.value, 4), strict=round(th.strict, 4))
        print(f"{name:28s} employees {result['employees_let_in']}/{result['employees']}  strangers "
              f"{result['strangers_let_in']}  wrong {result['wrong_person']}  unlock p50 {result['time_to_unlock_p50']} s"
              f"  lockouts {result['lockouts']}  (door {th.door.value:.4f})", flush=True)
        return result

    results = [
        run("door default: fused, mirror"),
        run("second chance at door FAR", second_chance_strict=False),
        run("no live mirror", mirror=False),
        run("uniform weights", weighted=False),
        run("frame by frame (k=n=1)", k=1, n=1),
        run("k=2 of fused n=5", k=2),
        run("k=n=3", k=3, n=3),
        run("k=n=2", k=2, n=2),
        run("fused n=8", n=8),
        run("margin 0 decades", margin_decades=0.0),
        run("margin 0.5 decades", margin_decades=0.5),
        run("margin 2 decades", margin_decades=2.0),
        run("plain calibration, no live mirror", cal="plain", mirror=False),
        run("door at FAR 3e-5", far=3e-5),
        run("door at FAR 1e-5", far=1e-5),
    ] + ([run("door-probe calibration", cal="door"), run("door-probe calibration, FAR 3e-5", cal="door", far=3e-5)]
         if "door" in cals else [])
    usable = [m for m, e in zip(frames["ms"], frames["emb"]) if e is not None]
    report = {"command": " ".join(sys.argv), "far": args.far, "model": args.model, "variants": results,
              "frame_ms_face": {"p50": float(np.percentile(usable, 50)), "p95": float(np.percentile(usable, 95))},
              "frame_ms_all": {"p50": float(np.percentile(list(frames["ms"]), 50)),
                               "p95": float(np.percentile(list(frames["ms"]), 95))}}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        plot(results, args.out.with_suffix(".png"))
    return 0


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    names = [r["name"] for r in results]
    y = np.arange(len(results))
    ax.barh(y, [r["employees_let_in"] / max(1, r["employees"]) for r in results], color="tab:green")
    for i, r in enumerate(results):
        ax.text(0.01, i, f"{r['employees_let_in']}/{r['employees']}, strangers {r['strangers_let_in']}, wrong "
                         f"{r['wrong_person']}", va="center", fontsize=8, color="white")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("employees let in (hard door scene)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
