"""Would a region-of-interest search make detection cheaper without losing faces? (issue 13: measure, keep only
if faster and losing no face.)

The candidate: look near the last face first (a square of ``--grow`` x the last box around it, from the full
frame, resized so the face is ``--face-px`` pixels for YuNet), fall back to the downscaled full frame when nothing
is found there. The baseline is the gate's detector (the downscaled full frame). Both run on the same frames,
interleaved (order alternating), one thread.

Frames: a 640x480 door clip composed from real ORL and celeba-loose photos (``device/scene.py``), and the same
clip with a second real face pasted into half of its face frames at 85-100 % of the first face's size (a second
person at the door: the case the several-faces quality gate exists for). A face is *lost* when the baseline finds
a face of at least ``min_face_px`` that the ROI search does not report.

    .venv/bin/python bench/roi_search.py --out bench/results/roi_search.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edgeface.detect.yunet import YuNetDetector  # noqa: E402
from edgeface.device.scene import Appearance, compose_video  # noqa: E402
from edgeface.faces import Detections, largest_face  # noqa: E402
from edgeface.faceset import read_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "data" / "faces"
YUNET = SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"


class RoiSearch:
    """Detect near the last face first; the whole (downscaled) frame when nothing is there."""

    def __init__(self, model: Path, full: YuNetDetector, grow: float, face_px: float) -> None:
        self.full, self.grow, self.face_px = full, grow, face_px
        self.roi = YuNetDetector(model, score_threshold=0.7, detect_width=4096)  # sized per call
        self.last = None
        self.fallbacks = 0

    def detect(self, frame: np.ndarray) -> Detections:
        if self.last is not None:
            x, y, w, h = self.last
            side = self.grow * max(w, h)
            cx, cy = x + w / 2, y + h / 2
            x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
            x1, y1 = int(min(frame.shape[1], cx + side / 2)), int(min(frame.shape[0], cy + side / 2))
            k = min(1.0, self.face_px / max(w, h))
            crop = frame[y0:y1, x0:x1]
            small = cv2.resize(crop, (max(32, round(crop.shape[1] * k)), max(32, round(crop.shape[0] * k))),
                               interpolation=cv2.INTER_AREA)
            d = self.roi.detect(small)
            if len(d):
                fx, fy = crop.shape[1] / small.shape[1], crop.shape[0] / small.shape[0]
                boxes = d.boxes * np.array([fx, fy, fx, fy], np.float32) + np.array([x0, y0, 0, 0], np.float32)
                marks = d.landmarks * np.array([fx, fy], np.float32) + np.array([x0, y0], np.float32)
                d = Detections(boxes, marks, d.scores)
                self.last = tuple(largest_face(d).box)
                return d
        self.fallbacks += 1
        d = self.full.detect(frame)
        face = largest_face(d)
        self.last = None if face is None else tuple(face.box)
        return d


def frames_of(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f)


def with_second_face(frames, detector, photos, rng) -> list[np.ndarray]:
    """Half of the face frames get a second real face at 85-100 % of the first one's size (less where it would not
    fit), on the other half of the frame."""
    out = []
    for i, f in enumerate(frames):
        face = largest_face(detector.detect(f))
        if face is None or i % 2:
            out.append(f)
            continue
        p = photos[i % len(photos)]
        pf = largest_face(detector.detect(p))
        k = min(face.size * rng.uniform(0.85, 1.0) / pf.size, 0.95 * f.shape[0] / p.shape[0],
                0.45 * f.shape[1] / p.shape[1])  # it must fit beside the first
        img = cv2.resize(p, (round(p.shape[1] * k), round(p.shape[0] * k)), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        g = f.copy()
        left = face.box[0] + face.box[2] / 2 > f.shape[1] / 2  # put it on the other half
        x = 0 if left else f.shape[1] - w
        y = int(rng.integers(0, max(1, f.shape[0] - h)))
        g[y:y + h, x:x + w] = img
        out.append(g)
    return out


def measure(frames, base: YuNetDetector, roi: RoiSearch, min_face_px: float) -> dict:
    t_base, t_roi, lost, faces = [], [], 0, 0
    for i, f in enumerate(frames):
        order = (0, 1) if i % 2 else (1, 0)
        out = {}
        for which in order:
            det = base if which == 0 else roi
            t = time.perf_counter()
            out[which] = det.detect(f)
            (t_base if which == 0 else t_roi).append((time.perf_counter() - t) * 1e3)
        b, r = out[0], out[1]
        for j in range(len(b)):
            if min(b.boxes[j, 2:]) < min_face_px:
                continue
            faces += 1
            c = b.boxes[j, :2] + b.boxes[j, 2:] / 2
            hit = any(r.boxes[k, 0] <= c[0] <= r.boxes[k, 0] + r.boxes[k, 2]
                      and r.boxes[k, 1] <= c[1] <= r.boxes[k, 1] + r.boxes[k, 3] for k in range(len(r)))
            lost += not hit
    return {"frames": len(frames), "faces_at_or_above_min": faces, "faces_lost_by_roi": lost,
            "roi_fallbacks_to_full_frame": roi.fallbacks,
            "detect_median_ms": {"downscaled_full_frame": round(float(np.median(t_base)), 2),
                                 "roi_search": round(float(np.median(t_roi)), 2)},
            "detect_p95_ms": {"downscaled_full_frame": round(float(np.percentile(t_base, 95)), 2),
                              "roi_search": round(float(np.percentile(t_roi, 95)), 2)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "roi_search.json")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeface-bench-roi"))
    ap.add_argument("--min-face-px", type=float, default=60)
    ap.add_argument("--grow", type=float, default=2.5)
    ap.add_argument("--face-px", type=float, default=60, help="face size in the resized ROI (YuNet pixels)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    celeb = sorted(p.name for p in (FACES / "celeba-loose").iterdir())
    people = [FACES / "orl" / f"s{i}" for i in (1, 5, 9, 13)] + [FACES / "celeba-loose" / c for c in celeb[:4]]
    apps = [Appearance(p.name, sorted(p.iterdir())[1], 2.0, int(rng.integers(200, 320)),
                       tuple(rng.uniform(0.05, 0.95, 2)), tuple(rng.uniform(0.05, 0.95, 2))) for p in people]
    video = args.work / "door.avi"
    compose_video(video, apps, fps=10.0, gap_s=1.0, seed=args.seed)
    base = YuNetDetector(YUNET, score_threshold=0.7, min_face_px=args.min_face_px)
    frames = frames_of(video)
    others = [read_image(sorted((FACES / "celeba-loose" / c).iterdir())[0]) for c in celeb[20:30]]
    two = with_second_face(frames, base, others, rng)
    results = {}
    for name, clip in (("one_person", frames), ("second_person_in_half_the_face_frames", two)):
        results[name] = measure(clip, base, RoiSearch(YUNET, base, args.grow, args.face_px), args.min_face_px)
        print(name, json.dumps(results[name]))
    faster = all(r["detect_median_ms"]["roi_search"] < r["detect_median_ms"]["downscaled_full_frame"]
                 for r in results.values())
    no_loss = all(r["faces_lost_by_roi"] == 0 for r in results.values())
    doc = {"what": __doc__.splitlines()[0], "detect_size": list(base.input_size(640, 480)),
           "grow": args.grow, "roi_face_px": args.face_px, "min_face_px": args.min_face_px,
           "results": results, "faster": faster, "loses_no_face": no_loss,
           "kept": faster and no_loss, "load_avg_at_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"faster: {faster}; loses no face: {no_loss}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
