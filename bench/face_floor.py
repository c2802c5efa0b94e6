"""YuNet's face-size floor: the smallest face (in detector pixels) it finds every time, at full and reduced scale.

Real ORL and celeba-loose photos (seeded sample) are pasted into 640x480 wall frames (``device/scene.py``) with
their YuNet face box scaled to a given size, at a random place; YuNet runs on the frame downscaled to each
``--widths`` value (boxes mapped back). A face counts as found when a box of at least half its size comes back.
:data:`edgeface.detect.scale.FACE_FLOOR_PX` is the smallest size found every time at every width.

    .venv/bin/python bench/face_floor.py --out bench/results/face_floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from edgeface.detect.yunet import YuNetDetector
from edgeface.device.scene import H, W, background
from edgeface.faces import largest_face
from edgeface.faceset import read_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "data" / "faces"
YUNET = SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face_floor.json")
    ap.add_argument("--widths", type=int, nargs="+", default=[640, 448, 320])
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 28, 32, 36, 40, 44, 48, 54, 60],
                    help="face sizes in detector pixels")
    ap.add_argument("--orl", type=int, default=40)
    ap.add_argument("--celeba", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    full = YuNetDetector(YUNET, score_threshold=0.7)
    photos = []
    for ds, n in (("orl", args.orl), ("celeba-loose", args.celeba)):
        ids = sorted(os.listdir(FACES / ds))
        for i in rng.choice(len(ids), n, replace=False):
            files = sorted((FACES / ds / ids[i]).iterdir())
            img = read_image(files[int(rng.integers(len(files)))])
            face = largest_face(full.detect(img))
            if face is not None:
                photos.append((img, face.size / img.shape[0]))
    wall = background(0)
    table = {}
    for width in args.widths:
        det = YuNetDetector(YUNET, score_threshold=0.7, detect_width=width)
        k = det.input_size(W, H)[0] / W
        row = {}
        for px in args.sizes:
            s = px / k  # the face size in full-frame pixels
            found = 0
            for img, ratio in photos:
                h = int(round(s / ratio))
                w = int(round(img.shape[1] * h / img.shape[0]))
                h, w = min(h, H), min(w, W)
                small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_CUBIC)
                frame = wall.copy()
                x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
                frame[y:y + h, x:x + w] = small
                d = det.detect(frame)
                found += int(len(d) > 0 and float(np.max(np.minimum(d.boxes[:, 2], d.boxes[:, 3]))) >= 0.5 * s)
            row[px] = found
            print(f"width {width}: {px} px faces ({s:.0f} full-frame px): {found}/{len(photos)}", flush=True)
        table[width] = row
    floor = min((px for px in args.sizes if all(table[w][px] == len(photos) for w in args.widths)
                 and all(all(table[w][q] == len(photos) for w in args.widths) for q in args.sizes if q >= px)),
                default=None)
    doc = {"what": __doc__.splitlines()[0], "faces": len(photos), "found": table, "floor_px": floor,
           "rule": "the smallest size from which on every face was found at every width"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"floor: {floor} px; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
