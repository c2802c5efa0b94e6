"""``edgeface seal-bundle BUNDLE``: accept a checked ``edgeface.json`` by (re)computing its integrity sha256.

``Bundle.load`` refuses an ``edgeface.json`` whose content does not match its ``integrity.sha256`` (an edit,
or a file from an edgeface without the check). After checking the file by eye, this command validates it
(schema, every model file's size and sha256; each threshold finite, inside its scorer's range, above the
scorer's chance level and, where the calibration stored its points, accepting no more than the FAR it states;
each FAR in (0, 1): :func:`edgeface.thresholds.check_calibrated`) and seals it again. It prints the thresholds it
seals, so an edited threshold is seen. Anything refused is one line (exit 1) and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

NAME = "seal-bundle"
HELP = "validate an edited edgeface.json and recompute its integrity sha256"


def add_arguments(p) -> None:
    p.add_argument("bundle", type=Path, help="bundle directory")


def run(args) -> int:
    from ..bundle import Bundle
    from ..thresholds import check_calibrated

    bundle = Bundle.load(args.bundle, check_integrity=False)  # every model file is still verified
    for key, t in bundle.meta.thresholds.items():  # a sane threshold for the scorer, or nothing is sealed
        check_calibrated(bundle.meta, key, t)
    out = bundle.save()
    for key, t in bundle.meta.thresholds.items():
        print(f"  threshold[{key}] = {t.value:.4f} at FAR {t.far:g}")
    print(f"sealed {out}")
    return 0
