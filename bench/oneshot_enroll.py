"""One-shot enrollment on real faces: enroll one photo of each person, then match their other photos and photos
of people who were never enrolled, at a threshold calibrated on yet other people.

Per dataset (ORL, celeba-loose) the identities are split (seeded) into three disjoint groups:
calibration (threshold for the target FAR via edgeface.calibrate), enrolled (one photo each: the first one that
passes the quality gates, as an operator would retake a bad photo) and strangers (never enrolled). Every photo
goes through the door's path: YuNet, largest face, alignment, quality gates, the embedder; the gallery is
written to a real gallery file and read back; matching is edgeface.match.Matcher.

Reported at the calibrated threshold (a probe is accepted when score >= threshold):
rank-1 (best match is the right person, among mated probes that passed quality), TAR (right person and
accepted), false-accept rate (strangers' probes accepted as anyone), misidentification (mated probes accepted as
the wrong person); also the same with the threshold calibrated on the other dataset's calibration group, and on
both together (one threshold for the device).

    .venv/bin/python bench/oneshot_enroll.py --out bench/results/oneshot_enroll.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from edgeface.calibrate import calibrate  # noqa: E402
from edgeface.config import DetectorConfig  # noqa: E402
from edgeface.faceset import scan_identities  # noqa: E402
from edgeface.gallery import Gallery  # noqa: E402
from edgeface.metrics import far_key  # noqa: E402
from edgeface.recognizer import Recognizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))


def split_identities(ids: list[str], seed: int, calib_fraction: float, enrolled_fraction: float):
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_cal = int(round(len(ids) * calib_fraction))
    n_enr = int(round(len(ids) * enrolled_fraction))
    return sorted(order[:n_cal]), sorted(order[n_cal:n_cal + n_enr]), sorted(order[n_cal + n_enr:])


def evaluate(gallery: Gallery, mated_emb, mated_lab, stranger_emb, threshold: float, mated_missing: int,
             recognizer) -> dict:
    """Rates at ``threshold``; mated probes with no usable face (``mated_missing``) count as misses. (The door's
    ambiguity rule, in decades of FAR, is measured on whole appearances by bench/scene_levers.py.)"""
    matcher = recognizer.matcher(gallery)
    name_of = {p.id: p.name for p in gallery.people}
    mm = matcher.match_batch(mated_emb) if len(mated_emb) else []
    sm = matcher.match_batch(stranger_emb) if len(stranger_emb) else []
    right = np.array([name_of[m.person_id] == lab for m, lab in zip(mm, mated_lab)], bool)
    m_score = np.array([m.score for m in mm])
    s_score = np.array([m.score for m in sm])
    n_mated = len(mm) + mated_missing
    accepted = m_score >= threshold
    return {
        "threshold": threshold,
        "rank1": float(right.sum() / n_mated) if n_mated else None,
        "rank1_usable_probes": float(right.mean()) if len(right) else None,
        "tar": float((right & accepted).sum() / n_mated) if n_mated else None,
        "fnir": float(1 - (right & accepted).sum() / n_mated) if n_mated else None,
        "false_accept_rate": float(np.mean(s_score >= threshold)) if len(s_score) else None,
        "false_accepts": int(np.sum(s_score >= threshold)),
        "misidentified": int(np.sum(~right & accepted)),
        "misidentification_rate": float(np.sum(~right & accepted) / n_mated) if n_mated else None,
        "mated_probes": n_mated, "stranger_probes": int(len(s_score)),
        "mated_scores": m_score.round(4).tolist(), "stranger_scores": s_score.round(4).tolist(),
    }


def run_dataset(name: str, root: Path, rec, args) -> dict:
    photos = scan_identities(root)
    by_id: dict[str, list] = {}
    for p in photos:
        by_id.setdefault(p.identity, []).append(p)
    ids = sorted(i for i in by_id if len(by_id[i]) >= 2)
    cal_ids, enr_ids, str_ids = split_identities(ids, args.seed, args.calib_fraction, args.enrolled_fraction)
    pick = lambda group: [p for i in group for p in by_id[i][:args.max_per_identity]]  # noqa: E731

    cal = rec.embed_photos(pick(cal_ids), desc=f"{name} calibration")
    enr = rec.embed_photos(pick(enr_ids), desc=f"{name} enrolled")
    strangers = rec.embed_photos(pick(str_ids), desc=f"{name} strangers")
    calibration = {far_key(f): calibrate(cal.embeddings, cal.labels, f, seed=args.seed, scorer=rec.scorer)
                   for f in args.far}
    embedder = rec

    # one enrollment photo per person: the first (sorted) that passed quality; the rest are probes
    gallery = Gallery.new(embedder.fingerprint, embedder.embedding_size)
    probe_rows, retakes, mated_missing = [], 0, 0
    labels = enr.labels
    accepted_paths = {p.path for p in enr.accepted}
    for ident in enr_ids:
        rows = np.flatnonzero(labels == ident)
        if len(rows) < 2:
            continue  # nothing left to probe with
        gallery.add(ident, enr.embeddings[rows[:1]])
        tried = by_id[ident][:args.max_per_identity]
        first_ok = next(i for i, p in enumerate(tried) if p.path in accepted_paths)
        retakes += first_ok  # rejected photos before the enrollment photo: retakes at the desk
        mated_missing += sum(1 for p in tried[first_ok + 1:] if p.path not in accepted_paths)  # door misses
        probe_rows.extend(rows[1:].tolist())
    with tempfile.TemporaryDirectory() as tmp:  # through a real gallery file, as the device reads it
        path = gallery.save(Path(tmp) / "gallery.efg")
        gallery = Gallery.load(path, expected_fingerprint=embedder.fingerprint)
        gallery_bytes = path.stat().st_size
    return {
        "identities": {"calibration": len(cal_ids), "enrolled": len(gallery), "strangers": len(str_ids)},
        "photos": {"calibration": len(cal.accepted), "enrolled_group": len(enr.accepted),
                   "strangers": len(strangers.accepted)},
        "rejected_by_quality": {"calibration": len(cal.rejected), "enrolled_group": len(enr.rejected),
                                "strangers": len(strangers.rejected)},
        "enrollment_retakes": retakes,
        "gallery_file_bytes": gallery_bytes,
        "calibration": {k: c.to_json() for k, c in calibration.items()},
        "_gallery": gallery, "_mated": (enr.embeddings[probe_rows], labels[probe_rows], mated_missing),
        "_strangers": strangers.embeddings, "_cal": (cal.embeddings, cal.labels),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=SHARED / "models/reference/mobilefacenet_128d.onnx",
                    help="bundle directory or bare model file")
    ap.add_argument("--detector-model", type=Path, default=SHARED / "models/yunet/face_detection_yunet_2026may.onnx")
    ap.add_argument("--data", type=Path, default=SHARED / "data/faces")
    ap.add_argument("--datasets", nargs="+", default=["orl", "celeba-loose"])
    ap.add_argument("--far", type=float, nargs="+", default=[1e-3, 1e-4], help="target FARs (per comparison)")
    ap.add_argument("--calib-fraction", type=float, default=0.5)
    ap.add_argument("--enrolled-fraction", type=float, default=0.25)
    ap.add_argument("--max-per-identity", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oneshot_enroll.json")
    args = ap.parse_args()

    rec = Recognizer.from_bundle(args.model, detector=DetectorConfig(model_path=args.detector_model))
    embedder, cfg = rec, rec.quality
    runs = {name: run_dataset(name, args.data / name, rec, args) for name in args.datasets}

    thresholds = {f"{name} calibration, FAR {k}": r["calibration"][k]["threshold"]
                  for name, r in runs.items() for k in r["calibration"]}
    if len(runs) > 1:
        emb = np.concatenate([r["_cal"][0] for r in runs.values()])
        lab = np.concatenate([np.char.add(f"{n}:", r["_cal"][1].astype(str)) for n, r in runs.items()])
        for far in args.far:
            thresholds[f"all calibration groups, FAR {far_key(far)}"] = calibrate(emb, lab, far, seed=args.seed).threshold
    report = {"model": str(args.model), "fingerprint": embedder.fingerprint, "far_targets": args.far,
              "quality": cfg.model_dump(), "seed": args.seed, "thresholds": thresholds, "datasets": {}}
    for name, r in runs.items():
        mated_emb, mated_lab, missing = r.pop("_mated")
        gallery, strangers = r.pop("_gallery"), r.pop("_strangers")
        r.pop("_cal")
        r["at"] = {src: evaluate(gallery, mated_emb, mated_lab, strangers, t, missing, rec)
                   for src, t in thresholds.items()}
        report["datasets"][name] = r
        for src, e in r["at"].items():
            print(f"{name:13s} threshold {e['threshold']:.4f} ({src}): rank-1 {e['rank1']:.4f}, TAR {e['tar']:.4f}, "
                  f"false accepts {e['false_accepts']}/{e['stranger_probes']} ({e['false_accept_rate']:.4f}), "
                  f"misidentified {e['misidentified']}/{e['mated_probes']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.out.with_suffix(".png"))
    return 0


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = report["datasets"][name]
        own = r["at"][f"{name} calibration, FAR {far_key(report['far_targets'][0])}"]
        bins = np.linspace(-0.4, 1.0, 71)
        ax.hist(own["mated_scores"], bins=bins, alpha=0.6, label="enrolled people (best score)")
        ax.hist(own["stranger_scores"], bins=bins, alpha=0.6, label="strangers (best score)")
        for src, t in report["thresholds"].items():
            if src.startswith(name):
                ax.axvline(t, ls="--", lw=1, color="k")
                ax.text(t, ax.get_ylim()[1] * 0.9, src.split(", ")[-1], fontsize=6, rotation=90)
        ax.set_title(f"{name}: rank-1 {own['rank1']:.3f}, FA {own['false_accept_rate']:.4f} at {own['threshold']:.3f}",
                     fontsize=9)
        ax.set_xlabel("cosine score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
