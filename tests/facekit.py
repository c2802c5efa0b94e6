"""Tiny real face sets for the training / evaluation tests: a few ORL identities copied into a temp folder
(the shared data itself is never copied into the repository), optionally with a photo that has no face."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np


def orl_subset(orl_dir: Path, dest: Path, identities: int = 4, per_identity: int = 4, blank: bool = False) -> Path:
    """``dest/<id>/*.png``: the first ``identities`` ORL people, ``per_identity`` photos each. ``blank`` adds a
    flat grey photo to the first identity, which no detector finds a face in."""
    dest.mkdir(parents=True, exist_ok=True)
    people = sorted(p for p in Path(orl_dir).iterdir() if p.is_dir())[:identities]
    for person in people:
        out = dest / person.name
        out.mkdir(exist_ok=True)
        for f in sorted(person.iterdir())[:per_identity]:
            shutil.copy(f, out / f.name)
    if blank:
        cv2.imwrite(str(dest / people[0].name / "zz_blank.png"), np.full((112, 92), 128, np.uint8))
    return dest
