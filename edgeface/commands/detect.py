"""``edgeface detect IMAGE``: boxes, 5 landmarks and scores of every face."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import add_detector_arguments, detector_from_args, read_image_or_fail

NAME = "detect"
HELP = "detect faces in an image: boxes, 5 landmarks, scores"


def add_arguments(p) -> None:
    p.add_argument("image", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_detector_arguments(p)


def run(args) -> int:
    image = read_image_or_fail(args.image)
    det = detector_from_args(args)
    dets = det.detect(image)
    faces = dets.to_json()
    if args.json:
        print(json.dumps({"image": str(args.image), "detector": det.name, "approximate_landmarks": det.approximate,
                          "faces": faces}, indent=2))
        return 0
    print(f"{args.image}: {len(faces)} face(s) [{det.name}{', approximate landmarks' if det.approximate else ''}]")
    for i, f in enumerate(faces):
        x, y, w, h = f["box"]
        lm = " ".join(f"({px:.0f},{py:.0f})" for px, py in f["landmarks"])
        print(f"  #{i} score {f['score']:.3f} box x={x:.0f} y={y:.0f} w={w:.0f} h={h:.0f} landmarks {lm}")
    return 0
