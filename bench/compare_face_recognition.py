"""edgeface vs ageitgey/face_recognition (dlib) on the same real faces, side by side in one run.

Runs in the project's venv (scripts/setup.sh installs dlib-bin, face_recognition_models and face_recognition
--no-deps as references):

    .venv/bin/python bench/compare_face_recognition.py --data UNSEEN_FACES \
        --model BUNDLE:onnx_fp32 --model BUNDLE:onnx_int8 --identities 60

For each method: the no-face rate, per-face time (detect + landmarks + chip + embed, median and p95, one thread,
and each stage's median for edgeface), and verification on the photos every method found a face in (so all
methods are scored on the same pairs): TAR at FAR 1e-2 / 1e-3 / 1e-4, EER. Each edgeface model runs with its
bundle's own alignment. Writes JSON (and prints a Markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from edgeface.faceset import read_image, scan_identities  # noqa: E402
from edgeface.metrics import eer, pair_scores, tar_at_far  # noqa: E402


def pick_photos(root: Path, identities: int, seed: int):
    photos = scan_identities(root)
    ids = sorted({p.identity for p in photos})
    chosen = set(np.random.default_rng(seed).permutation(ids)[:identities].tolist())
    return [p for p in photos if p.identity in chosen]


def run_edgeface(photos, detector_model, spec: str, threads: int, mirror: bool = False):
    """Each photo through the model object's own parts (its photo detector, alignment and embedder), timed per
    stage."""
    from edgeface.config import DetectorConfig
    from edgeface.faces import largest_face
    from edgeface.recognizer import Recognizer

    path, _, key = spec.partition(":")
    rec = Recognizer.from_bundle(path, key or None, detector=DetectorConfig(model_path=detector_model), threads=threads)
    rec.warm_up()
    detector, aligner, emb_model = rec.photo_detector, rec.aligner, rec
    out, times, stages = {}, [], {"detect": [], "landmarks": [], "chip": [], "embed": []}
    for i, p in enumerate(tqdm(photos, desc=f"edgeface {Path(path).name}{':' + key if key else ''}")):
        img = read_image(p.path)
        t0 = time.perf_counter()
        face = largest_face(detector.detect(img))
        t1 = time.perf_counter()
        if face is not None:
            points = aligner.points(img, face)
            t2 = time.perf_counter()
            crop = aligner.crop(img, face) if aligner.spec.template == "arcface" else \
                __import__("edgeface.chip", fromlist=["extract_dlib_chip"]).extract_dlib_chip(
                    img, points, aligner.size, aligner.spec.padding)
            t3 = time.perf_counter()
            out[i] = emb_model.embed(crop[None], mirror=mirror)[0]
            t4 = time.perf_counter()
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[k].append(v * 1000)
        times.append((time.perf_counter() - t0) * 1000)
    medians = {k: float(np.median(v)) if v else None for k, v in stages.items()}
    return out, np.array(times), 1.0, medians  # cosine: higher is more alike


def run_dlib(photos, model: str):
    import face_recognition

    out, times = {}, []
    for i, p in enumerate(tqdm(photos, desc=f"face_recognition ({model})")):
        img = face_recognition.load_image_file(str(p.path))
        t0 = time.perf_counter()
        locs = face_recognition.face_locations(img, model=model)
        if locs:
            largest = max(locs, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            out[i] = face_recognition.face_encodings(img, [largest])[0]
        times.append((time.perf_counter() - t0) * 1000)
    return out, np.array(times), -1.0, {}  # euclidean distance: lower is more alike


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", action="append", default=[], help="bundle dir, .onnx or .tflite, optionally PATH:KEY")
    ap.add_argument("--detector-model", type=Path, default=None)
    ap.add_argument("--identities", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dlib-model", default="hog", choices=("hog", "cnn"))
    ap.add_argument("--mirror", action="store_true", help="edgeface: also embed each face's mirror image")
    ap.add_argument("--json", type=Path, default=Path("bench/results/compare_face_recognition.json"))
    args = ap.parse_args()

    photos = pick_photos(args.data, args.identities, args.seed)
    labels = np.array([p.identity for p in photos])
    runs = {}
    for spec in args.model:
        runs[f"edgeface {spec}"] = run_edgeface(photos, args.detector_model, spec, args.threads, args.mirror)
    try:
        runs[f"face_recognition dlib ({args.dlib_model})"] = run_dlib(photos, args.dlib_model)
    except ImportError as exc:
        print(f"face_recognition not installed here ({exc}); run scripts/setup.sh", file=sys.stderr)
    common = sorted(set.intersection(*(set(r[0]) for r in runs.values())))
    results = {"data": str(args.data), "identities": args.identities, "photos": len(photos),
               "scored_photos": len(common), "threads": args.threads, "machine": os.uname().machine,
               "cpu_count": os.cpu_count(), "methods": {}}
    for name, (embs, times, sign, stage_ms) in runs.items():
        e = np.stack([embs[i] for i in common]).astype(np.float32)
        lab = labels[common]
        if sign > 0:
            g, imp = pair_scores(e, lab, max_impostors=None)
        else:
            d = np.linalg.norm(e[:, None, :] - e[None, :, :], axis=-1)
            iu, ju = np.triu_indices(len(e), 1)
            same = lab[iu] == lab[ju]
            g, imp = -d[iu[same], ju[same]], -d[iu[~same], ju[~same]]
        results["methods"][name] = {
            "face_found": len(embs) / len(photos), "no_face_rate": 1.0 - len(embs) / len(photos),
            "ms_per_image_median": float(np.median(times)), "ms_per_image_p95": float(np.percentile(times, 95)),
            "stage_ms_median": stage_ms,
            "tar_at_far": tar_at_far(g, imp, (1e-2, 1e-3, 1e-4)), "eer": eer(g, imp)[0],
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\n{len(photos)} photos of {args.identities} identities; verification on the {len(common)} photos every method found a face in\n")
    print("| method | no face | ms/face median (p95) | stages ms (detect / landmarks / chip / embed) | TAR@1e-2 | TAR@1e-3 | TAR@1e-4 | EER |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in results["methods"].items():
        t = m["tar_at_far"]
        st = " / ".join(f"{v:.1f}" for v in m["stage_ms_median"].values() if v is not None) or "-"
        f4 = "-" if t.get("1e-4") is None else f"{t['1e-4']:.3f}"
        print(f"| {name} | {m['no_face_rate']:.3f} | {m['ms_per_image_median']:.1f} ({m['ms_per_image_p95']:.1f}) | {st} | "
              f"{t['1e-2']:.3f} | {t['1e-3']:.3f} | {f4} | {m['eer']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
