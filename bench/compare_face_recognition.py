"""edgeface vs ageitgey/face_recognition (dlib) on the same real faces, side by side in one run.

Runs in its own environment (dlib-bin, face_recognition_models and face_recognition --no-deps), made by
``bash bench/setup_bench_env.sh``:

    .venv-bench/bin/python bench/compare_face_recognition.py --data ../shared/data/faces/celeba-loose \
        --model ../shared/models/reference/mobilefacenet_128d.onnx --model BUNDLE:onnx_int8 --identities 60

For each method: the fraction of photos where a face was found, per-image time (detect + embed, median and p95,
one thread), and verification on the photos every method found a face in (so all methods are scored on the
same pairs): TAR at FAR 1e-2 / 1e-3, EER. Writes JSON (and prints a Markdown table).
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

from edgeface.detect import create_detector  # noqa: E402
from edgeface.faceset import aligned_crop, read_image, scan_identities  # noqa: E402
from edgeface.metrics import eer, pair_scores, tar_at_far  # noqa: E402
from edgeface.runtime import open_embedder  # noqa: E402


def pick_photos(root: Path, identities: int, seed: int):
    photos = scan_identities(root)
    ids = sorted({p.identity for p in photos})
    chosen = set(np.random.default_rng(seed).permutation(ids)[:identities].tolist())
    return [p for p in photos if p.identity in chosen]


def run_edgeface(photos, detector, spec: str, threads: int):
    path, _, key = spec.partition(":")
    emb_model = open_embedder(path, model=key or None, threads=threads)
    emb_model.warm_up()
    out, times = {}, []
    for i, p in enumerate(tqdm(photos, desc=f"edgeface {Path(path).name}{':' + key if key else ''}")):
        img = read_image(p.path)
        t0 = time.perf_counter()
        crop, _ = aligned_crop(detector, img)
        if crop is not None:
            out[i] = emb_model.embed(crop[None])[0]
        times.append((time.perf_counter() - t0) * 1000)
    return out, np.array(times), 1.0  # cosine: higher is more alike


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
    return out, np.array(times), -1.0  # euclidean distance: lower is more alike


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", action="append", default=[], help="bundle dir, .onnx or .tflite, optionally PATH:KEY")
    ap.add_argument("--detector-model", type=Path, default=None)
    ap.add_argument("--identities", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dlib-model", default="hog", choices=("hog", "cnn"))
    ap.add_argument("--json", type=Path, default=Path("bench/results/compare_face_recognition.json"))
    args = ap.parse_args()

    photos = pick_photos(args.data, args.identities, args.seed)
    labels = np.array([p.identity for p in photos])
    detector = create_detector("yunet", args.detector_model)
    runs = {}
    for spec in args.model:
        runs[f"edgeface {spec}"] = run_edgeface(photos, detector, spec, args.threads)
    try:
        runs[f"face_recognition dlib ({args.dlib_model})"] = run_dlib(photos, args.dlib_model)
    except ImportError as exc:
        print(f"face_recognition not installed here ({exc}); run bench/setup_bench_env.sh", file=sys.stderr)
    common = sorted(set.intersection(*(set(r[0]) for r in runs.values())))
    results = {"data": str(args.data), "identities": args.identities, "photos": len(photos),
               "scored_photos": len(common), "threads": args.threads, "machine": os.uname().machine,
               "cpu_count": os.cpu_count(), "methods": {}}
    for name, (embs, times, sign) in runs.items():
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
            "face_found": len(embs) / len(photos),
            "ms_per_image_median": float(np.median(times)), "ms_per_image_p95": float(np.percentile(times, 95)),
            "tar_at_far": tar_at_far(g, imp, (1e-2, 1e-3)), "eer": eer(g, imp)[0],
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\n{len(photos)} photos of {args.identities} identities; verification on the {len(common)} photos every method found a face in\n")
    print("| method | face found | ms/image median (p95) | TAR@FAR 1e-2 | TAR@FAR 1e-3 | EER |")
    print("|---|---|---|---|---|---|")
    for name, m in results["methods"].items():
        t = m["tar_at_far"]
        print(f"| {name} | {m['face_found']:.3f} | {m['ms_per_image_median']:.1f} ({m['ms_per_image_p95']:.1f}) | "
              f"{t['1e-2']:.3f} | {t['1e-3']:.3f} | {m['eer']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
