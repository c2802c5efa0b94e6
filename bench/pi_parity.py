"""The same door on the same input, on x86 and on an (emulated) Raspberry Pi: do they decide the same?

Three steps, driven by ``scripts/pibox.sh prove`` (results: docs/benchmarks.md, "Raspberry Pi, emulated"):

``prepare`` (x86, the desktop venv, with torch): celeba-loose identities split by ``--seed`` into 5 employees,
5 strangers, 2 background people, 60 calibration and 40 validation identities for the int8 export, and the rest
for the threshold. Then the Quickstart's own commands: ``export --pretrained dlib-resnet-v1 --int8`` (ONNX and
TFLite), ``calibrate`` for ``onnx_int8`` and ``tflite_int8``, ``enroll`` one photo per employee (one gallery per
model: a gallery is tied to its model's fingerprint), a door clip composed with ``edgeface.device.scene``
(:func:`hard_scene`: light, noise, JPEG, blur, walk-ins; the employees seen in another photo than the enrolled one)
as an MJPG video and the same frames as PNG files, and aligned face crops from the clip's frames. With
``--recipes`` every int8 ONNX candidate recipe is also quantized again from the export's own calibration crops.

``run`` (on each machine, with only the wheel's door extras: no torch): ``edgeface gate --simulate`` for each model
and each source (video, PNG frames), events kept as JSON lines; embeddings of the crops by every model of the
bundle (and every recipe); ``validate-config`` and ``install-service --dry-run`` on a door config.

``compare`` (anywhere): per appearance, who the door opened for on x86 and on aarch64; embeddings of the same
crops: min and mean cosine aarch64 vs x86, how many bit-identical. Emulated time is no speed figure and is not
reported.

    .venv/bin/python bench/pi_parity.py prepare --work /work/runs/pi
    .venv/bin/python bench/pi_parity.py run --work /work/runs/pi --tag x86_64
    (in the Pi root) python pi_parity.py run --work /work/runs/pi --tag aarch64
    .venv/bin/python bench/pi_parity.py compare --work /work/runs/pi --out bench/results/pi_parity.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = Path(os.environ.get("EDGEFACE_DATA", SHARED / "data" / "faces")) / "celeba-loose"
YUNET = Path(os.environ.get("EDGEFACE_YUNET", SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"))
MODELS = ("onnx_int8", "tflite_int8")
#: video: the MJPG clip through OpenCV's default reader (FFmpeg); video-cv_mjpeg: the same file through OpenCV's own
#: MJPEG reader (libjpeg-turbo; OPENCV_VIDEOIO_PRIORITY_LIST=CV_MJPEG); frames: the clip's frames as PNG files
SOURCES = ("video", "video-cv_mjpeg", "frames")
FPS = 10.0  # the clip's frame rate


def cli(argv: list[str], capture: bool = False) -> str:
    """The real subcommand, in this process; printed so that it can be re-run by hand."""
    from edgeface.cli import main

    print(f"$ edgeface {shlex.join(argv)}", file=sys.stderr, flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        rc = main(argv)
    if rc not in (0, None):
        raise SystemExit(f"edgeface {argv[0]} failed (exit {rc}){': ' + out.getvalue()[-2000:] if capture else ''}")
    return out.getvalue()


def split(seed: int) -> dict[str, list[str]]:
    ids = sorted(p.name for p in FACES.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 3)
    ids = [str(i) for i in np.random.default_rng(seed).permutation(ids)]
    cut = np.cumsum([5, 5, 2, 60, 40])
    return {"employees": ids[:cut[0]], "strangers": ids[cut[0]:cut[1]], "background": ids[cut[1]:cut[2]],
            "int8_calibration": ids[cut[2]:cut[3]], "int8_validation": ids[cut[3]:cut[4]], "threshold": ids[cut[4]:]}


def link(ids: list[str], out: Path) -> Path:
    for i in ids:
        d = out / i
        d.mkdir(parents=True, exist_ok=True)
        for p in sorted((FACES / i).iterdir()):
            if not (d / p.name).exists():
                (d / p.name).symlink_to(p.resolve())
    return out


# -- prepare (x86) --------------------------------------------------------------------------------------------

def prepare(args) -> None:
    from edgeface.device.scene import celeba_cast, compose_video, hard_scene

    os.environ.setdefault("EDGEFACE_YUNET", str(YUNET))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "yunet.onnx").exists():  # the detector the door side reads (EDGEFACE_YUNET there)
        (work / "yunet.onnx").write_bytes(YUNET.read_bytes())
    split_file = work / "split.json"
    parts = json.loads(split_file.read_text()) if split_file.exists() else split(args.seed)
    split_file.write_text(json.dumps(parts, indent=2) + "\n")
    bundle = work / "bundle"
    if not (bundle / "edgeface.json").exists():
        cli(["export", "--pretrained", "dlib-resnet-v1", "--out", str(bundle), "--int8", "--force", "--no-progress",
             "--calib", str(link(parts["int8_calibration"], work / "photos-int8")),
             "--val", str(link(parts["int8_validation"], work / "photos-val"))])
    meta = json.loads((bundle / "edgeface.json").read_text())
    for key in MODELS:
        if key not in meta.get("thresholds", {}):
            cli(["calibrate", "--bundle", str(bundle), "--model", key, "--far", "1e-3",
                 "--data", str(link(parts["threshold"], work / "photos-threshold"))])
    enroll, cast = celeba_cast(FACES, parts["employees"], parts["strangers"], parts["background"])
    photos = work / "photos-enroll"
    photos.mkdir(exist_ok=True)
    for e, p in enroll.items():
        if not (photos / f"{e}{p.suffix}").exists():
            (photos / f"{e}{p.suffix}").symlink_to(p.resolve())
    for key in MODELS:
        gallery = work / f"people-{key}.gallery"
        if not gallery.exists():
            cli(["enroll", "--bundle", str(bundle), "--model", key, "--photos", str(photos), "--gallery",
                 str(gallery), "--skip-rejected"])
    clip = work / "door.avi"
    spans = compose_video(clip, hard_scene(cast, seed=args.seed, group=3), fps=FPS, gap_s=1.5, seed=args.seed)
    (work / "spans.json").write_text(json.dumps([{"label": s.label, "t0": s.t0, "t1": s.t1} for s in spans],
                                                indent=1) + "\n")
    frames = work / "frames"
    frames.mkdir(exist_ok=True)
    for old in frames.glob("*.png"):
        old.unlink()
    import cv2

    cap = cv2.VideoCapture(str(clip))
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        cv2.imwrite(str(frames / f"frame{n:05d}.png"), img)
        n += 1
    cap.release()
    np.save(work / "crops.npy", crops_from(frames, bundle, args.crops))
    if args.recipes:
        recipes(work, bundle, parts)
    print(f"prepared {work}: {len(spans)} appearances, {n} frames, {args.crops} crops", file=sys.stderr)


def crops_from(frames: Path, bundle: Path, count: int) -> np.ndarray:
    """Up to ``count`` aligned crops of the faces the door's recognizer finds in the clip's frames (its detector,
    the bundle's own alignment; quality gates not applied), spread evenly over the frames that have one."""
    import cv2

    from edgeface.config import DetectorConfig
    from edgeface.recognizer import Recognizer

    rec = Recognizer.from_bundle(bundle, "onnx_fp32", detector=DetectorConfig(model_path=YUNET))
    out = []
    for p in sorted(frames.glob("*.png")):
        obs = rec.observe(cv2.imread(str(p)))
        if obs.crop is not None:
            out.append(obs.crop)
    idx = np.linspace(0, len(out) - 1, min(count, len(out))).round().astype(int)
    return np.stack([out[i] for i in idx])


def recipes(work: Path, bundle: Path, parts: dict) -> None:
    """Every candidate int8 ONNX recipe, quantized again from the export's calibration crops (checked by their
    sha256 against the bundle's notes), into ``work/recipes/NAME.onnx``."""
    import hashlib
    import tempfile

    from edgeface.config import DetectorConfig
    from edgeface.export import calib as calibset
    from edgeface.export.quantize import CANDIDATES, preprocess_for_quant, quantize_with, session
    from edgeface.preprocess import to_model_input
    from edgeface.recognizer import Recognizer

    rec = Recognizer.from_bundle(bundle, "onnx_fp32", detector=DetectorConfig(model_path=YUNET))
    b = rec.bundle
    notes = b.meta.notes["calibration"]
    faces = calibset.load_faces(work / "photos-int8", rec.photo_detector, progress=False, aligner=rec.aligner)
    crops, _ = calibset.pick_calibration(faces, notes["crops"], calibset.DEFAULT_PROBE_CROPS)
    if hashlib.sha256(np.ascontiguousarray(crops).tobytes()).hexdigest() != notes["crops_sha256"]:
        raise SystemExit("the calibration crops differ from the export's: cannot redo its recipes")
    out = work / "recipes"
    out.mkdir(exist_ok=True)
    x = to_model_input(crops, b.meta.input)
    with tempfile.TemporaryDirectory() as tmp:
        pre = preprocess_for_quant(b.path_of("onnx_fp32"), Path(tmp) / "pre.onnx", dynamo=True)
        name = session(pre).get_inputs()[0].name
        for r in CANDIDATES:
            if not (out / f"{r.name}.onnx").exists():
                quantize_with(r, pre, out / f"{r.name}.onnx", x, name, Path(tmp))
                print(f"recipe {r.name} quantized", file=sys.stderr, flush=True)


# -- run (each machine) ---------------------------------------------------------------------------------------

def run(args) -> None:
    work, tag = args.work, args.tag
    out = work / tag
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EDGEFACE_YUNET", str(work / "yunet.onnx"))
    info = {"machine": platform.machine(), "python": platform.python_version(), "versions": versions()}
    (out / "platform.json").write_text(json.dumps(info, indent=2) + "\n")
    decoded(work, out)
    bundle = work / "bundle"
    todo = [(m, s) for m in MODELS for s in SOURCES if args.only is None or f"{m}/{s}" in args.only]
    if not args.no_embed:
        embed(work, bundle, out, args.fp32_crops)
    for key, source in todo:
        dst = out / f"gate-{key}-{source}.jsonl"
        if dst.exists():
            continue
        gallery = work / f"people-{key}.gallery"
        argv = ["gate", "--simulate", str(work / ("frames" if source == "frames" else "door.avi")), "--bundle",
                str(bundle), "--gallery", str(gallery), "--model", key]
        if source == "frames":  # a folder has no frame rate: the camera's fps stands in, the clip's 10 here
            cfg = out / f"frames-{key}.toml"
            cfg.write_text(f'[camera]\nsource = "{work / "frames"}"\nfps = {FPS}\n\n[model]\nbundle = "{bundle}"\n'
                           f'gallery = "{gallery}"\nkey = "{key}"\n\n[relay]\nbackend = "mock"\n')
            argv += ["--config", str(cfg)]
        if source == "video-cv_mjpeg":  # OpenCV reads the variable once per process: a process of its own
            exe = Path(sys.executable).with_name("edgeface")
            print(f"$ OPENCV_VIDEOIO_PRIORITY_LIST=CV_MJPEG edgeface {shlex.join(argv)}", file=sys.stderr, flush=True)
            p = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=7200,
                               env={**os.environ, "OPENCV_VIDEOIO_PRIORITY_LIST": "CV_MJPEG"})
            if p.returncode != 0:
                raise SystemExit(f"edgeface gate failed (exit {p.returncode}): {p.stderr[-2000:]}")
            text = p.stdout
        else:
            text = cli(argv, capture=True)
        dst.write_text(text)
    if not args.no_checks:
        checks(work, out)


def decoded(work: Path, out: Path) -> None:
    """What the clip decodes to here, per OpenCV reader: frames, sha256 over all pixels, and how far from the
    PNG frames (decoded on x86 by prepare): the gate's input, before any model."""
    import hashlib

    import cv2

    res = {}
    pngs = sorted((work / "frames").glob("*.png"))
    for name in ("CAP_FFMPEG", "CAP_OPENCV_MJPEG"):
        cap = cv2.VideoCapture(str(work / "door.avi"), getattr(cv2, name))
        h, n, differ, max_abs = hashlib.sha256(), 0, 0, 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            h.update(img.tobytes())
            d = np.abs(img.astype(np.int16) - cv2.imread(str(pngs[n])).astype(np.int16)) if n < len(pngs) else None
            differ += int(d is None or bool(d.any()))
            max_abs = max(max_abs, int(d.max()) if d is not None else 255)
            n += 1
        res[name] = {"backend": cap.getBackendName() if n else None, "frames": n, "sha256": h.hexdigest(),
                     "frames_differing_from_png": differ, "max_abs_difference_from_png": max_abs}
        cap.release()
    (out / "decoded.json").write_text(json.dumps(res, indent=2) + "\n")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("edgeface", "numpy", "onnxruntime", "opencv-python-headless", "ai-edge-litert", "simplejpeg"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    import numpy

    import edgeface

    out["numpy_file"] = numpy.__file__
    out["edgeface_file"] = edgeface.__file__
    return out


def embed(work: Path, bundle: Path, out: Path, fp32_crops: int = 40) -> None:
    """Embeddings of the prepared crops by every model of the bundle (the door's runtime, one thread) and by every
    recipe's int8 ONNX file (onnxruntime on the bundle's preprocessing), raw float32, in one .npz."""
    from edgeface.bundle import Bundle
    from edgeface.preprocess import to_model_input
    from edgeface.runtime import open_embedder

    dst = out / "embeddings.npz"
    if dst.exists():
        return
    crops = np.load(work / "crops.npy")
    b = Bundle.load(bundle)
    res = {}
    for key in b.meta.models:
        # the fp32 models on the first crops only: emulated, they take ~6 s a crop (the int8 ones under 1 s)
        some = crops if b.model(key).precision == "int8" else crops[:fp32_crops]
        res[key] = open_embedder(b, model=key, threads=1).embed(some)
        print(f"embedded {len(some)} crops with {key}", file=sys.stderr, flush=True)
    import onnxruntime as ort

    x = to_model_input(crops, b.meta.input)
    for path in sorted((work / "recipes").glob("*.onnx")):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        res[f"recipe:{path.stem}"] = np.concatenate([sess.run(None, {name: x[i:i + 16]})[0]
                                                     for i in range(0, len(x), 16)])
        print(f"embedded {len(crops)} crops with recipe {path.stem}", file=sys.stderr, flush=True)
    np.savez(dst, **res)


def checks(work: Path, out: Path) -> None:
    """validate-config on a door config (mock relay, the video as the camera) and install-service --dry-run, as
    the installed ``edgeface`` executable runs them; exit codes and output kept."""
    exe = Path(sys.executable).with_name("edgeface")
    cfg = out / "gate.toml"
    cfg.write_text(f"""[camera]
source = "{work / 'door.avi'}"

[model]
bundle = "{work / 'bundle'}"
key = "onnx_int8"
gallery = "{work / 'people-onnx_int8.gallery'}"

[relay]
backend = "mock"
""")
    res = {}
    keys = out / "keys"
    if keys.exists():
        import shutil

        shutil.rmtree(keys)
    extras = ("import argon2, edgeface.device.admin.app as a; h = argon2.PasswordHasher(); "
              "assert h.verify(h.hash('door'), 'door'); print('admin app imports, argon2 hashes')")
    for name, argv in (("validate-config", [str(exe), "validate-config", str(cfg)]),
                       ("install-service --dry-run", [str(exe), "install-service", "--dry-run"]),
                       ("install-service --admin --dry-run", [str(exe), "install-service", "--admin", "--dry-run"]),
                       ("keys generate (fleet: Ed25519)", [str(exe), "keys", "generate", "--out", str(keys)]),
                       ("admin extra", [sys.executable, "-c", extras])):
        # in the results folder: `python -c` imports from its working directory, which must not be a checkout
        p = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=out)
        res[name] = {"argv": argv, "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
        print(f"$ {shlex.join(argv)} -> exit {p.returncode}", file=sys.stderr, flush=True)
    (out / "checks.json").write_text(json.dumps(res, indent=2) + "\n")


# -- compare --------------------------------------------------------------------------------------------------

def decisions(events: list[dict], spans: list[dict]) -> list[dict]:
    """Per appearance: who the door opened for (sorted names; empty: nobody)."""
    rows = []
    for s in spans:
        mine = [e for e in events if s["t0"] - 0.01 <= e.get("t", -1) <= s["t1"] + 1.0]
        scores = [e["score"] for e in mine if e.get("score") is not None]
        rows.append({"who": s["label"], "opened_for": sorted({e.get("person") for e in mine if e["event"] == "unlock"}),
                     "events": len(mine), "best_score": max(scores) if scores else None})
    return rows


def compare(args) -> dict:
    work = args.work
    spans = json.loads((work / "spans.json").read_text())
    a, b = args.reference, args.other
    rep = {"reference": a, "other": b, "platform": {t: json.loads((work / t / "platform.json").read_text())
                                                      for t in (a, b)},
           "appearances": len(spans), "gate": {}, "embeddings": {}, "checks": {}}
    for key in MODELS:
        for source in SOURCES:
            runs = {}
            for t in (a, b):
                p = work / t / f"gate-{key}-{source}.jsonl"
                if p.exists():
                    ev = [json.loads(line) for line in p.read_text().splitlines() if line.startswith("{")]
                    runs[t] = (decisions([e for e in ev if e["event"] != "summary"], spans),
                               [e for e in ev if e["event"] != "summary"])
            if len(runs) < 2:
                continue
            ra, rb = runs[a][0], runs[b][0]
            threshold = json.loads((work / "bundle" / "edgeface.json").read_text())["thresholds"][key]["value"]
            differ = [{"who": x["who"], a: x["opened_for"], b: y["opened_for"], "threshold": round(threshold, 4),
                       "best_score": {a: x["best_score"], b: y["best_score"]}} for x, y in zip(ra, rb)
                      if x["opened_for"] != y["opened_for"]]
            # the relay's unlock record is written when its pulse ends, in wall time: where it falls among the
            # decisions depends on the machine's speed (1.3 s a frame emulated), so the sequence compares decisions
            # and the unlocks are compared as a list of (person, video time) on their own
            kinds = lambda evs: [(e["event"], e.get("person"), e.get("rule")) for e in evs  # noqa: E731
                                 if e["event"] != "unlock"]
            unlocks = lambda evs: [(e.get("person"), e.get("t")) for e in evs if e["event"] == "unlock"]  # noqa: E731
            ka, kb = runs[a][1], runs[b][1]
            # scores of the events both runs had (same kind, person and video time)
            keyed = {(e["event"], e.get("person"), e.get("t")): e.get("score") for e in kb}
            diffs = [abs(e["score"] - keyed[k]) for e in ka
                     if e.get("score") is not None and keyed.get(k := (e["event"], e.get("person"), e.get("t"))) is not None]
            score_diff = round(max(diffs), 4) if diffs else None
            rep["gate"][f"{key}/{source}"] = {
                "same_decisions": len(spans) - len(differ), "appearances": len(spans), "differ": differ,
                "unlocks": {t: sum(e["event"] == "unlock" for e in runs[t][1]) for t in (a, b)},
                "events": {t: len(runs[t][1]) for t in (a, b)},
                "same_event_sequence": kinds(ka) == kinds(kb),
                "same_unlocks": unlocks(ka) == unlocks(kb),
                "max_score_difference": score_diff,
                "employees_let_in": {t: sum(r["opened_for"] == [r["who"]] for r in runs[t][0]) for t in (a, b)},
                "strangers_let_in": {t: sum(bool(r["opened_for"]) for r in runs[t][0] if r["who"].startswith("stranger"))
                                     for t in (a, b)},
                "decisions": {t: [[r["who"], r["opened_for"]] for r in runs[t][0]] for t in (a, b)},
            }
    ea, eb = (np.load(work / t / "embeddings.npz") for t in (a, b))
    for key in sorted(set(ea.files) & set(eb.files)):
        x, y = ea[key].astype(np.float64), eb[key].astype(np.float64)
        cos = np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        rep["embeddings"][key] = {"crops": int(len(x)), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                                  "not_bit_identical": int(np.sum(np.any(ea[key] != eb[key], axis=1))),
                                  "max_abs_diff": float(np.max(np.abs(x - y)))}
    dec = {t: json.loads((work / t / "decoded.json").read_text()) for t in (a, b) if (work / t / "decoded.json").exists()}
    if len(dec) == 2:
        rep["decoded"] = {name: {"same_pixels": dec[a][name]["sha256"] == dec[b][name]["sha256"],
                                 **{t: {k: v for k, v in dec[t][name].items() if k != "sha256"} for t in (a, b)}}
                          for name in dec[a]}
    for t in (a, b):
        p = work / t / "checks.json"
        if p.exists():
            rep["checks"][t] = {k: {"rc": v["rc"], "stderr_lines": len(v["stderr"].splitlines())}
                                for k, v in json.loads(p.read_text()).items()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rep, indent=2) + "\n")
    for k, g in rep["gate"].items():
        print(f"{k}: {g['same_decisions']}/{g['appearances']} appearances decided the same; unlocks {g['unlocks']}; "
              f"same decision sequence: {g['same_event_sequence']}, same unlocks: {g['same_unlocks']} (scores differ by at most {g['max_score_difference']})")
    for k, d in rep.get("decoded", {}).items():
        print(f"decoded with {k}: same pixels on both: {d['same_pixels']}")
    for k, e in rep["embeddings"].items():
        print(f"{k}: min cosine {e['min_cosine']:.6f}, mean {e['mean_cosine']:.6f}, "
              f"{e['not_bit_identical']}/{e['crops']} not bit-identical")
    return rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seed", type=int, default=24)
    p.add_argument("--crops", type=int, default=200)
    p.add_argument("--recipes", action="store_true", help="also quantize every candidate int8 ONNX recipe")
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--tag", required=True, help="results folder name, e.g. x86_64 or aarch64")
    r.add_argument("--only", nargs="*", default=None, help="MODEL/SOURCE pairs to run (default: all)")
    r.add_argument("--no-embed", action="store_true")
    r.add_argument("--fp32-crops", type=int, default=40, help="crops embedded by the fp32 models (default 40)")
    r.add_argument("--no-checks", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("--work", type=Path, required=True)
    c.add_argument("--reference", default="x86_64")
    c.add_argument("--other", default="aarch64")
    c.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.monotonic()
    {"prepare": prepare, "run": run, "compare": compare}[args.step](args)
    print(f"{args.step} done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
