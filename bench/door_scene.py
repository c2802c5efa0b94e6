"""The hard door scene: how many employees does the door let in, and does it ever let in a stranger?

celeba-loose identities are split once by ``--seed`` into employees (enrolled with one photo each), strangers, a
few background people (only ever seen behind someone) and calibration people (everyone else): the threshold is
calibrated on people the scene never shows. The clip is :func:`edgeface.device.scene.hard_scene` (light changes,
blur, noise, JPEG, walking in, a second face in the background), replayed by ``edgeface gate --simulate`` (the
real CLI, in this process). Every step is the real subcommand, printed so it can be re-run by hand.

Reported per appearance: who the door opened for (nobody, the right person, someone else), the time from the
appearance's first frame to the unlock, and the events; overall: employees let in, strangers let in, wrong
person, time-to-unlock p50 / p90, frame p50 / p95 (the gate's own run summary). JSON and a PNG.

    .venv/bin/python bench/door_scene.py --work /work/runs/scene --out bench/results/door_scene.json
    # reuse an exported bundle (it is copied, then calibrated): --bundle /work/runs/dlib-bundle

The default bundle is dlib's ResNet, exported int8 (onnx_int8) with ``export --pretrained dlib-resnet-v1``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = Path(os.environ.get("EDGEFACE_DATA", SHARED / "data" / "faces")) / "celeba-loose"
YUNET = Path(os.environ.get("EDGEFACE_YUNET", SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"))


def cli(argv: list[str], capture: bool = False) -> str:
    from edgeface.cli import main

    print(f"$ edgeface {shlex.join(argv)}", file=sys.stderr, flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        rc = main(argv)
    if rc not in (0, None):
        raise SystemExit(f"edgeface {argv[0]} failed (exit {rc})")
    return out.getvalue()


def split(seed: int, employees: int, strangers: int, background: int) -> dict[str, list[str]]:
    ids = sorted(p.name for p in FACES.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 3)
    ids = [str(i) for i in np.random.default_rng(seed).permutation(ids)]
    a, b, c = employees, employees + strangers, employees + strangers + background
    return {"employees": ids[:a], "strangers": ids[a:b], "background": ids[b:c], "calibration": ids[c:]}


def link(ids: list[str], out: Path) -> Path:
    for i in ids:
        d = out / i
        d.mkdir(parents=True, exist_ok=True)
        for p in sorted((FACES / i).iterdir()):
            if not (d / p.name).exists():
                (d / p.name).symlink_to(p.resolve())
    return out


def enrollment_photos(employees: list[str]) -> dict[str, str]:
    """Each employee's enrollment photo: their first photo (by name) that passes the quality gates, as a desk
    would retake a photo until it is usable."""
    from edgeface.config import QualityConfig
    from edgeface.enroll import check_photo
    from edgeface.recognizer import build_detector
    from edgeface.alignment import Aligner
    from edgeface.enroll_photos import read_photo_strict

    det, aligner, out = build_detector(frames=False), Aligner.arcface(), {}
    for e in employees:
        photos = sorted((FACES / e).iterdir())
        out[e] = str(next((p for p in photos if check_photo(det, read_photo_strict(p), QualityConfig(), aligner).ok),
                          photos[0]))
    return out


def score(events: list[dict], spans) -> list[dict]:
    rows = []
    for s in spans:
        mine = [e for e in events if s.t0 - 0.01 <= e["t"] <= s.t1 + 1.0]
        unlocks = [e for e in mine if e["event"] == "unlock"]
        opened = sorted({e.get("person") for e in unlocks})
        rows.append({"who": s.label, "enrolled": s.enrolled, "t0": s.t0, "t1": s.t1, "opened_for": opened,
                     "time_to_unlock_s": round(unlocks[0]["t"] - s.t0, 3) if unlocks else None,
                     "events": [{k: e.get(k) for k in ("event", "person", "score", "detail", "t")}
                                for e in mine if e["event"] not in ("unlock",)]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="working folder (bundle, gallery, clip, events)")
    ap.add_argument("--out", type=Path, default=None, help="JSON report (a PNG is written beside it)")
    ap.add_argument("--bundle", type=Path, default=None, help="an exported bundle to copy instead of exporting one")
    ap.add_argument("--model", default="onnx_int8")
    ap.add_argument("--far", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--employees", type=int, default=30)
    ap.add_argument("--strangers", type=int, default=25)
    ap.add_argument("--background", type=int, default=10)
    ap.add_argument("--enroll-only", type=int, default=None, help="enroll only the first N employees (the others "
                                                                   "then count as strangers)")
    ap.add_argument("--config", type=Path, default=None, help="a gate config for the simulation's policy numbers")
    ap.add_argument("--recalibrate", action="store_true")
    ap.add_argument("--severity", choices=("hard", "harsh"), default="hard", help="how hard the camera is")
    ap.add_argument("--door", choices=("other", "enrolled"), default="other",
                    help="what the camera sees of an employee: another photo of them (default) or the enrollment "
                         "photo itself (only the camera's conditions differ)")
    args = ap.parse_args()

    from edgeface.device.scene import celeba_cast, compose_video, hard_scene

    os.environ.setdefault("EDGEFACE_YUNET", str(YUNET))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    split_file = work / "split.json"
    if split_file.exists():
        parts = json.loads(split_file.read_text())
    else:
        parts = split(args.seed, args.employees, args.strangers, args.background)
        parts["enroll"] = enrollment_photos(parts["employees"])
        split_file.write_text(json.dumps(parts, indent=2))
    bundle = work / "bundle"
    if not bundle.exists():
        if args.bundle is not None:
            shutil.copytree(args.bundle, bundle)
        else:
            cal = parts["calibration"]
            cli(["export", "--pretrained", "dlib-resnet-v1", "--out", str(bundle), "--int8", "--no-tflite",
                 "--calib", str(link(cal[: len(cal) // 2], work / "photos-int8")),
                 "--val", str(link(cal[len(cal) // 2:], work / "photos-val"))])
    meta = json.loads((bundle / "edgeface.json").read_text())
    if args.recalibrate or args.model not in meta.get("thresholds", {}):
        cli(["calibrate", "--bundle", str(bundle), "--model", args.model, "--far", f"{args.far:g}",
             "--data", str(link(parts["calibration"], work / "photos-calibration")),
             "--json", str(work / "calibration.json")])
    enroll, cast = celeba_cast(FACES, parts["employees"], parts["strangers"], parts["background"],
                               {e: Path(p) for e, p in parts["enroll"].items()}, door=args.door)
    enrolled = parts["employees"][: args.enroll_only] if args.enroll_only else parts["employees"]
    photos = work / f"photos-enroll-{len(enrolled)}"
    if photos.exists():
        shutil.rmtree(photos)
    photos.mkdir()
    for e in enrolled:
        (photos / f"{e}{enroll[e].suffix}").symlink_to(enroll[e].resolve())
    gallery = work / f"people-{len(enrolled)}.gallery"
    gallery.unlink(missing_ok=True)
    cli(["enroll", "--bundle", str(bundle), "--model", args.model, "--photos", str(photos), "--gallery",
         str(gallery), "--skip-rejected"])
    from edgeface.gallery import Gallery

    not_enrolled = sorted(set(enrolled) - {p.name for p in Gallery.load(gallery).people})
    if not_enrolled:
        print(f"not enrolled (photo refused): {', '.join(not_enrolled)}: they count as strangers", file=sys.stderr)
        enrolled = [e for e in enrolled if e not in not_enrolled]
    clip = work / f"door-{args.severity}-{args.seed}-{args.door}.avi"
    t0 = time.monotonic()
    spans = compose_video(clip, hard_scene(cast, seed=args.seed, severity=args.severity), fps=10.0, gap_s=1.5,
                          seed=args.seed)
    print(f"scene: {len(spans)} appearances, {spans[-1].t1 + 1.5:.0f} s of video ({time.monotonic() - t0:.0f} s)",
          file=sys.stderr)
    argv = ["gate", "--simulate", str(clip), "--bundle", str(bundle), "--gallery", str(gallery), "--model", args.model]
    if args.config:
        argv += ["--config", str(args.config)]
    out = cli(argv, capture=True)
    (work / f"gate-events-{args.severity}-{args.door}.jsonl").write_text(out)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    summary = next((e for e in reversed(events) if e["event"] == "summary"), {})
    rows = score([e for e in events if e["event"] != "summary"], spans)
    for r in rows:
        r["enrolled"] = r["who"] in enrolled
    emp = [r for r in rows if r["enrolled"]]
    others = [r for r in rows if not r["enrolled"]]
    let_in = [r for r in emp if r["opened_for"] == [r["who"]]]
    wrong = [r for r in rows if r["opened_for"] and r["opened_for"] != [r["who"]] and r["enrolled"]]
    strangers_in = [r for r in others if r["opened_for"]]
    times = [r["time_to_unlock_s"] for r in let_in]
    report = {
        "command": " ".join(sys.argv), "bundle": str(bundle), "model": args.model, "far": args.far, "seed": args.seed,
        "door_photo": args.door, "severity": args.severity,
        "threshold": json.loads((bundle / "edgeface.json").read_text())["thresholds"].get(args.model),
        "employees_enrolled": len(enrolled), "appearances": len(rows),
        "employees_let_in": len(let_in), "employees_let_in_rate": round(len(let_in) / max(1, len(emp)), 4),
        "strangers_let_in": len(strangers_in), "wrong_person": len(wrong),
        "time_to_unlock_s": {"p50": round(statistics.median(times), 3) if times else None,
                             "p90": round(float(np.percentile(times, 90)), 3) if times else None},
        "frame_ms": summary.get("latency_ms"), "face_frame_ms": summary.get("face_latency_ms"),
        "run_summary": summary, "misses": [r for r in emp if r not in let_in], "rows": rows,
    }
    print(f"employees let in {len(let_in)}/{len(emp)}; strangers let in {len(strangers_in)}/{len(others)}; "
          f"wrong person {len(wrong)}; time to unlock p50 {report['time_to_unlock_s']['p50']} s; "
          f"frame p95 {(summary.get('latency_ms') or {}).get('p95')} ms")
    for r in report["misses"]:
        print(f"  missed {r['who']}: " + "; ".join(f"{e['event']} {e.get('person') or ''} {e.get('score') or ''} "
                                                     f"{e.get('detail') or ''}".strip() for e in r["events"]))
    for r in strangers_in + wrong:
        print(f"  WRONG: {r['who']} opened for {r['opened_for']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        plot(report, args.out.with_suffix(".png"))
    return 0


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    fig, ax = plt.subplots(figsize=(12, 3.6))
    for i, r in enumerate(rows):
        ok = r["opened_for"] == [r["who"]]
        colour = ("tab:green" if ok else "tab:orange") if r["enrolled"] else ("tab:red" if r["opened_for"] else "tab:grey")
        best = max([e["score"] for e in r["events"] if e.get("score") is not None] or [np.nan])
        ax.bar(i, 1 if r["opened_for"] else 0.3, color=colour)
        if best == best:
            ax.text(i, 0.02, f"{best:.3f}", rotation=90, fontsize=6, ha="center", va="bottom")
    ax.set_yticks([])
    ax.set_xlabel("appearance (green: employee let in, orange: employee missed, grey: stranger kept out, red: stranger let in)")
    ax.set_title(f"hard door scene, {report['model']} at FAR {report['far']:g}: employees {report['employees_let_in']}/"
                 f"{report['employees_enrolled']}, strangers let in {report['strangers_let_in']}, wrong person "
                 f"{report['wrong_person']}, unlock p50 {report['time_to_unlock_s']['p50']} s", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
