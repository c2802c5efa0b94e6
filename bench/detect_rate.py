"""Detection rate and alignment accuracy of the core detectors on every photo of the shared faces.

    .venv/bin/python bench/detect_rate.py --data ../shared/data/faces --detector-model ../shared/models/yunet/face_detection_yunet_2026may.onnx

Prints, per data set and detector: photos with a face found, median / p95 detect time (one thread), and how
far the aligned eyes land from the ArcFace template (px). Writes bench/results/detect_rate.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeface.align import ARCFACE_TEMPLATE, similarity_transform, transform_points
from edgeface.detect import create_detector
from edgeface.faces import largest_face
from edgeface.faceset import read_image, scan_identities


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder holding data sets (orl, celeba-loose)")
    ap.add_argument("--detector-model", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=Path("bench/results/detect_rate.json"))
    args = ap.parse_args()
    cv2.setNumThreads(1)
    detectors = {"yunet": create_detector("yunet", args.detector_model), "haar": create_detector("haar")}
    results = {}
    for ds in sorted(p for p in args.data.iterdir() if p.is_dir()):
        photos = scan_identities(ds)
        for name, det in detectors.items():
            found, times, eye_err = 0, [], []
            for p in tqdm(photos, desc=f"{ds.name} {name}"):
                img = read_image(p.path)
                t0 = time.perf_counter()
                face = largest_face(det.detect(img))
                times.append((time.perf_counter() - t0) * 1000)
                if face is not None:
                    found += 1
                    m = similarity_transform(face.landmarks)
                    eye_err.extend(np.linalg.norm(transform_points(m, face.landmarks[:2]) - ARCFACE_TEMPLATE[:2], axis=1))
            r = {"photos": len(photos), "found": found, "rate": found / len(photos),
                 "ms_median": float(np.median(times)), "ms_p95": float(np.percentile(times, 95)),
                 "eye_error_px_median": float(np.median(eye_err)), "eye_within_3px": float(np.mean(np.array(eye_err) <= 3))}
            results[f"{ds.name}/{name}"] = r
            print(f"{ds.name:14s} {name:6s} {found}/{len(photos)} = {r['rate']:.4f}  {r['ms_median']:.1f} ms "
                  f"(p95 {r['ms_p95']:.1f})  eye err median {r['eye_error_px_median']:.2f} px, "
                  f"{r['eye_within_3px']:.3f} within 3 px")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
