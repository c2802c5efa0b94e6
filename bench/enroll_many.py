"""Enrolling many distinct people: how many does the duplicate-face check refuse, and does it still refuse the same
photo under a second name?

celeba-loose is split by name: the last ``--calibrate`` identities calibrate the bundle (FAR ``--far``); each of
the first ``--people`` identities is enrolled with its first photo that passes the quality gates, all in one
``edgeface enroll`` run (the real CLI, in this process). Then one enrolled photo is enrolled again under another
name. Every refusal is listed with its score and the threshold, to be looked at by eye (celeba-loose files a few
people under two identities: refusing those is right).

    .venv/bin/python bench/enroll_many.py --bundle /work/runs/dlib-bundle --work /work/runs/enroll-many \\
        --out bench/results/enroll_many.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = Path(os.environ.get("EDGEFACE_DATA", SHARED / "data" / "faces")) / "celeba-loose"


def cli(argv: list[str]) -> tuple[int, str]:
    from edgeface.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, out.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True, help="an exported bundle (copied, then calibrated)")
    ap.add_argument("--model", default="onnx_int8")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--calibrate", type=int, default=39)
    ap.add_argument("--far", type=float, default=1e-4)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from edgeface.recognizer import Recognizer

    work = args.work
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    bundle = work / "bundle"
    shutil.copytree(args.bundle, bundle)
    ids = sorted(p.name for p in FACES.iterdir() if p.is_dir())
    people, cal_ids = ids[: args.people], ids[-args.calibrate:]
    assert not set(people) & set(cal_ids), "calibration people overlap the enrolled ones"
    cal = work / "calibration"
    for i in cal_ids:
        (cal / i).parent.mkdir(parents=True, exist_ok=True)
        (cal / i).symlink_to(FACES / i)
    rc, out = cli(["calibrate", "--bundle", str(bundle), "--model", args.model, "--far", f"{args.far:g}",
                   "--data", str(cal), "--json", str(work / "calibration.json")])
    assert rc == 0, out
    rec = Recognizer.from_bundle(bundle, args.model)
    photos = work / "enroll"
    photos.mkdir()
    unusable = []
    for i in people:  # the first photo that passes the quality gates, as a desk retakes until one does
        chosen = next((p for p in sorted((FACES / i).iterdir()) if rec.check_photo(rec.read_photo(p)).ok), None)
        if chosen is None:
            unusable.append(i)
            continue
        (photos / f"{i}{chosen.suffix}").symlink_to(chosen)
    gallery = work / "people.gallery"
    rc, out = cli(["enroll", "--bundle", str(bundle), "--model", args.model, "--photos", str(photos),
                   "--gallery", str(gallery)])
    th = rec.thresholds()
    refused = [{"name": m.group(1), "matches": m.group(2), "score": float(m.group(3))}
               for m in re.finditer(r"REFUSED (\S+): .*? matches the enrolled person '([^']+)' .*?with score ([0-9.]+)", out)]
    enrolled = int(re.search(r"enrolled \d+ photo\(s\) of (\d+) person", out).group(1))
    # the same photo under a second name
    again = work / "again"
    again.mkdir()
    first = sorted(photos.iterdir())[0]
    (again / f"Second name of {first.stem}{first.suffix}").symlink_to(first.resolve())
    rc2, out2 = cli(["enroll", "--bundle", str(bundle), "--model", args.model, "--photos", str(again),
                     "--gallery", str(gallery)])
    report = {"command": " ".join(sys.argv), "model": args.model, "far": args.far,
              "calibration_identities": len(cal_ids), "people": len(people), "no_usable_photo": unusable,
              "enrolled": enrolled, "refused": refused,
              "duplicate_threshold": th.duplicate.value, "duplicate_source": th.duplicate.source,
              "door_threshold": th.door.value,
              "same_photo_second_name": {"exit": rc2, "refused": "REFUSED" in out2,
                                         "line": next((l for l in out2.splitlines() if l.startswith("REFUSED")), None)}}
    print(json.dumps({k: v for k, v in report.items() if k != "command"}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
