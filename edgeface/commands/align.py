"""``edgeface align IMAGE --out CROP.png``: the aligned 112x112 crop of the chosen face."""

from __future__ import annotations

from pathlib import Path

import cv2

from ..align import align_face
from ..errors import EdgefaceError
from ..faces import largest_face, most_central_face
from ._common import add_detector_arguments, detector_from_args, read_image_or_fail

NAME = "align"
HELP = "write the aligned 112x112 crop of one face"


def add_arguments(p) -> None:
    p.add_argument("image", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output image (PNG)")
    p.add_argument("--select", choices=("largest", "central"), default="largest", help="which face if several")
    p.add_argument("--size", type=int, default=112, help="crop size (the template scales with it)")
    add_detector_arguments(p)


def run(args) -> int:
    image = read_image_or_fail(args.image)
    dets = detector_from_args(args).detect(image)
    face = largest_face(dets) if args.select == "largest" else most_central_face(dets, image.shape)
    if face is None:
        raise EdgefaceError(f"{args.image}: no face found")
    crop = align_face(image, face.landmarks, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), crop):
        raise EdgefaceError(f"cannot write {args.out}")
    print(f"{args.out}: {args.size}x{args.size} crop of the {args.select} face (score {face.score:.3f}) of {len(dets)}")
    return 0
