"""Gate latency and memory: frame -> decision at 640x480, per model key of a bundle, and the daemon's RSS.

A door video is composed from real faces (ORL and celeba-loose photos pasted on a wall at varied sizes and
positions, enrolled people and strangers, gaps of empty wall), then every frame goes through the gate's own
pipeline and policy (YuNet on the downscaled frame -> largest face -> landmarks -> crop + quality gate -> embed ->
match -> k-of-n decision), in this process on one thread. Reported per model key:

* p50 / p95 frame -> decision for face frames (the whole chain) and empty frames (detector only), and per-stage
  medians (``FrameResult.stages``);
* before / after: the same pipeline with full-frame detection, interleaved frame by frame (order alternating), its
  stage medians and how many faces it found that the downscaled detector did not;
* face_recognition (dlib HOG + ResNet, its defaults) on every ``--fr-every``-th face frame, interleaved;
* ``edgeface gate --simulate`` as its own process at each ``--threads`` (1, 2, 4): its closing summary event
  (p50 / p95, stage medians) and its peak RSS;
* a Raspberry Pi 4 ESTIMATE from the published OpenCV zoo Pi 4 timings (see :func:`pi4_estimate`).

Without ``--bundle`` the reference model is measured (with an int8 copy quantized here).

    .venv/bin/python bench/gate_latency.py --bundle /work/runs/dlib-bundle --keys onnx_int8 onnx_fp32 \
        --out bench/results/gate_latency_dlib.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from gatekit import Appearance, compose_video, enroll, make_bundle  # noqa: E402

from edgeface.bundle import Bundle, describe_model_file  # noqa: E402
from edgeface.config import GateConfig, load_config  # noqa: E402
from edgeface.detect import create_detector  # noqa: E402
from edgeface.device.camera import open_camera  # noqa: E402
from edgeface.device.pipeline import limit_threads, load_runtime  # noqa: E402
from edgeface.device.policy import Policy  # noqa: E402
from edgeface.faceset import read_image  # noqa: E402
from edgeface.preprocess import to_model_input  # noqa: E402

SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "data" / "faces"
YUNET = SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"
REFERENCE = SHARED / "models" / "reference" / "mobilefacenet_128d.onnx"
THRESHOLD = 0.40  # the e2e test's threshold for the reference model (impostors <= 0.35 on ORL/celeba samples)


def photo(ds: str, ident: str, i: int) -> Path:
    return sorted((FACES / ds / ident).iterdir())[i]


def scene(work: Path, detector, bundle: Path, keys: list[str], seed: int) -> tuple[Path, dict, list]:
    """A gallery per model key of 5 enrolled people (one photo each) and a ~40 s video with 12 appearances."""
    rng = np.random.default_rng(seed)
    celeb = sorted(p.name for p in (FACES / "celeba-loose").iterdir())
    enrolled = [("orl", f"s{i}") for i in (1, 2, 3)] + [("celeba-loose", c) for c in celeb[:2]]
    strangers = [("orl", f"s{i}") for i in (30, 31, 32)] + [("celeba-loose", c) for c in celeb[10:14]]
    galleries = {}
    for key in keys:  # a gallery is tied to the embedder that made it (fingerprint)
        galleries[key] = work / f"people_{key}.gallery"
        enroll(galleries[key], bundle, detector, {ident: photo(ds, ident, 0) for ds, ident in enrolled}, key=key)
    apps = []
    for k, (ds, ident) in enumerate(enrolled + strangers):
        label = ident if (ds, ident) in enrolled else f"stranger:{ident}"
        h = int(rng.integers(200, 320))
        apps.append(Appearance(label, photo(ds, ident, 1 + k % 3), float(rng.uniform(1.5, 2.5)), h,
                               tuple(rng.uniform(0.05, 0.95, 2)), tuple(rng.uniform(0.05, 0.95, 2))))
    order = rng.permutation(len(apps))
    video = work / "door.avi"
    spans = compose_video(video, [apps[i] for i in order], fps=10.0, gap_s=1.0, seed=seed)
    return video, galleries, spans


def make_int8(work: Path, detector) -> Path:
    """The reference model quantized with the export side's recipe (needs the desktop extra: onnx, torch-free)."""
    out = work / "reference_int8.onnx"
    if out.is_file():
        return out
    from edgeface.export.quantize import CANDIDATES, quantize_onnx
    from edgeface.bundle import DEFAULT_INPUT

    from edgeface.alignment import Aligner
    from edgeface.faceset import aligned_crop

    crops = []
    for ident in [f"s{i}" for i in range(4, 30)]:
        for p in sorted((FACES / "orl" / ident).iterdir())[:4]:
            c, _ = aligned_crop(detector, read_image(p), aligner=Aligner.arcface())
            if c is not None:
                crops.append(c)
    x = to_model_input(np.stack(crops), DEFAULT_INPUT)
    recipe = next(r for r in CANDIDATES if r.name == "u8s8-mixed-minmax-tail")
    # the reference file is opset 12, whose DequantizeLinear has no per-channel axis: convert to 13 first
    import onnx
    from onnx import version_converter

    fp32 = work / "reference_opset13.onnx"
    onnx.save(version_converter.convert_version(onnx.load(str(REFERENCE)), 13), str(fp32))
    quantize_onnx(fp32, out, x[: len(x) * 3 // 4], x[len(x) * 3 // 4:], work / "quant", candidates=(recipe,))
    return out


def add_model(bundle_dir: Path, key: str, onnx: Path) -> None:
    b = Bundle.load(bundle_dir)
    name = f"model_{key}.onnx"
    (bundle_dir / name).write_bytes(onnx.read_bytes())
    fmt, precision = key.split("_")
    b.meta.models[key] = describe_model_file(bundle_dir, name, fmt, precision)
    b.meta.thresholds[key] = b.meta.thresholds["onnx_fp32"]
    b.save()


def _pct(v) -> dict:
    return {"n": len(v), "p50_ms": round(float(np.percentile(v, 50)), 2),
            "p95_ms": round(float(np.percentile(v, 95)), 2)} if len(v) else {"n": 0}


def _median_stages(rows: list[dict]) -> dict:
    names = ("detect", "landmarks", "align", "embed", "match")
    return {n: round(float(np.median([r[n] for r in rows if n in r])), 2) if any(n in r for r in rows) else None
            for n in names}


def face_recognition_ms(image_bgr: np.ndarray) -> float:
    """face_recognition's per-frame time with its defaults (HOG, one upsampling, largest face encoded), from the
    BGR frame a camera gives (the RGB conversion included, as a face_recognition door loop does it)."""
    import face_recognition

    t0 = time.perf_counter()
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    locs = face_recognition.face_locations(rgb)
    if locs:
        largest = max(locs, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        face_recognition.face_encodings(rgb, [largest])
    return (time.perf_counter() - t0) * 1e3


def measure(cfg: GateConfig, video: Path, detector, fr_every: int = 0) -> dict:
    """Every frame through the gate's pipeline and policy, one thread; latency from decoded frame to decision.

    Interleaved on each frame (order alternating): the pipeline as configured (``after``: downscaled detection)
    and the same pipeline with full-frame detection (``before``); every ``fr_every``-th face frame also
    face_recognition, so the two are compared on the same frames in the same run."""
    limit_threads(1)
    from edgeface.device.gate import _sighting

    rt = load_runtime(cfg)
    rt.recognizer.warm_up()
    det_cfg = cfg.detector.model_copy(update={"detect_width": 4096})  # never downscale: the old behaviour
    before = load_runtime(cfg.model_copy(update={"detector": det_cfg})).recognizer
    before.warm_up()
    policy = Policy(rt.params, rt.matcher, rt.recognizer.scorer)
    cam = open_camera(str(video), cfg.camera, realtime=False)
    cam.open()
    face_ms, empty_ms, decisions, stages, stages_before, det_before = [], [], [], [], [], []
    fr_pairs, lost = [], 0
    i = 0
    with tqdm(desc=f"frames {rt.key}", unit="frame") as bar:
        while (frame := cam.read()) is not None:
            if i % 2:
                rb = before.observe(frame.image)
            t0 = time.perf_counter()
            r = rt.recognizer.observe(frame.image)
            t1 = time.perf_counter()
            out = policy.observe(frame.t, _sighting(r))
            r.stages["match"] = (time.perf_counter() - t1) * 1e3
            ms = (time.perf_counter() - t0) * 1e3
            if not i % 2:
                rb = before.observe(frame.image)
            (face_ms if r.usable else empty_ms).append(ms)
            stages.append(r.stages)
            stages_before.append(rb.stages)
            det_before.append(rb.stages["detect"])
            lost += int(rb.face is not None and r.face is None)
            if r.usable and fr_every and len(face_ms) % fr_every == 0:
                fr_pairs.append((ms, face_recognition_ms(frame.image)))
            decisions += [(d.kind, d.person_id, round(d.t, 2)) for d in out]
            i += 1
            bar.update()
    cam.close()
    doc = {"key": rt.key, "detect_size": list(rt.recognizer.detector.input_size(640, 480)),
           "face_frames": _pct(face_ms), "empty_frames": _pct(empty_ms), "all_frames": _pct(face_ms + empty_ms),
           "stages_median_ms": _median_stages(stages),
           "before_full_frame_detection": {"stages_median_ms": _median_stages(stages_before),
                                           "detect": _pct(det_before),
                                           "faces_found_there_but_not_downscaled": lost},
           "decisions": decisions, "_face": face_ms, "_empty": empty_ms}
    if fr_pairs:
        ours, theirs = np.array(fr_pairs).T
        doc["face_recognition_same_frames"] = {
            "frames": len(fr_pairs), "edgeface_p50_ms": round(float(np.median(ours)), 2),
            "face_recognition_p50_ms": round(float(np.median(theirs)), 2),
            "face_recognition_p95_ms": round(float(np.percentile(theirs, 95)), 2),
            "ratio_of_medians": round(float(np.median(ours) / np.median(theirs)), 4),
            "how": "face_recognition 1.3 defaults (HOG, 1 upsampling, largest face encoded) on the same face frames, "
                   "interleaved with edgeface in one process, one thread"}
    return doc


def combine(runs: list[dict]) -> dict:
    """Several rounds of :func:`measure` for one key -> one result: medians over the rounds of each round's
    p50 / p95 and stage medians; every round's figures kept under ``rounds``."""
    if len(runs) == 1:
        return runs[0]

    def med(values):
        values = [v for v in values if v is not None]
        return round(float(np.median(values)), 2) if values else None

    out = dict(runs[0])
    for part in ("face_frames", "empty_frames", "all_frames"):
        out[part] = {"n": runs[0][part]["n"], **{q: med(r[part].get(q) for r in runs) for q in ("p50_ms", "p95_ms")}}
    out["stages_median_ms"] = {k: med(r["stages_median_ms"][k] for r in runs) for k in runs[0]["stages_median_ms"]}
    before = runs[0]["before_full_frame_detection"]
    out["before_full_frame_detection"] = {
        "stages_median_ms": {k: med(r["before_full_frame_detection"]["stages_median_ms"][k] for r in runs)
                             for k in before["stages_median_ms"]},
        "detect": {q: med(r["before_full_frame_detection"]["detect"][q] for r in runs) for q in ("p50_ms", "p95_ms")},
        "faces_found_there_but_not_downscaled": sum(r["before_full_frame_detection"]["faces_found_there_but_not_downscaled"]
                                                    for r in runs)}
    if "face_recognition_same_frames" in runs[0]:
        fr = [r["face_recognition_same_frames"] for r in runs]
        out["face_recognition_same_frames"] = {**fr[0], "frames": sum(f["frames"] for f in fr),
                                               **{k: med(f[k] for f in fr) for k in ("edgeface_p50_ms",
                                                  "face_recognition_p50_ms", "face_recognition_p95_ms")},
                                               "ratio_of_medians": round(float(np.median([f["ratio_of_medians"] for f in fr])), 4)}
    out["_face"] = [v for r in runs for v in r["_face"]]
    out["_empty"] = [v for r in runs for v in r["_empty"]]
    out["rounds"] = [{"face_frames": r["face_frames"], "empty_frames": r["empty_frames"],
                      "stages_median_ms": r["stages_median_ms"],
                      "full_frame_detect_median_ms": r["before_full_frame_detection"]["stages_median_ms"]["detect"],
                      "face_recognition_ratio": r.get("face_recognition_same_frames", {}).get("ratio_of_medians")}
                     for r in runs]
    out["summary_of_rounds"] = "medians over the rounds of each round's p50 / p95 / stage medians"
    return out


#: run the CLI, then print the process's own peak RSS. VmHWM belongs to the new address space (reset at exec);
#: ru_maxrss is not usable here, Linux carries it over from the forking parent (this bench, with its models)
RUN_AND_REPORT_PEAK = (
    "import sys\nfrom edgeface.cli import main\nrc = main(sys.argv[1:])\n"
    "hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "print(f'VmHWM_kB={hwm}', file=sys.stderr)\nsys.exit(rc)")


def daemon_run(config: Path, video: Path, key: str) -> dict:
    """`edgeface gate --simulate` as its own process: its peak RSS (MiB; the whole daemon: Python, OpenCV,
    onnxruntime, detector and embedder sessions, gallery, decoder) and its closing summary event."""
    env = dict(os.environ, EDGEFACE_YUNET=str(YUNET))
    proc = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_PEAK, "gate", "--simulate", str(video),
                           "--config", str(config), "--model", key],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"gate --simulate --model {key} exited {proc.returncode}: {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["event"] == "summary", summary
    return {"max_rss_mib": round(int(proc.stderr.rsplit("VmHWM_kB=", 1)[1].split()[0]) / 1024.0, 1),
            "summary": summary}


#: published OpenCV zoo medians (benchmark/README.md of opencv/opencv_zoo, opencv-python 4.7.0.72, OpenCV DNN):
#: Intel i7-12700K and Raspberry Pi 4B (Cortex-A72, 1.5 GHz), ms
ZOO = {"source": "github.com/opencv/opencv_zoo benchmark/README.md (commit 00e0923e), medians, ms",
       "yunet_160x120": {"intel_12700k": 0.70, "rpi4": 5.41},
       "ppresnet50_224": {"intel_12700k": 35.41, "rpi4": 463.23},
       "sface_150": {"intel_12700k": 6.08, "rpi4": 78.83}}


def yunet_160_ms(runs: int = 200) -> float:
    """YuNet at the zoo's 160x120 input on this machine, one thread (the zoo's own benchmark setting)."""
    det = cv2.FaceDetectorYN.create(str(YUNET), "", (160, 120), 0.9, 0.3, 50)
    img = cv2.resize(cv2.imread(str(photo("orl", "s1", 0))), (160, 120))
    for _ in range(10):
        det.detect(img)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        det.detect(img)
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


def runtimes() -> dict:
    """Which runtimes (and versions) ran the models; threads are per run (``model.threads``)."""
    import onnxruntime

    out = {"detector": f"OpenCV {cv2.__version__} FaceDetectorYN", "onnx": f"onnxruntime {onnxruntime.__version__}",
           "in_process_threads": 1}
    try:
        from importlib.metadata import version

        out["tflite"] = f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # not installed: no tflite keys measured
        pass
    return out


def pi4_estimate(stages: dict, here_yunet_ms: float) -> dict:
    """An ESTIMATE of the per-stage medians on a Raspberry Pi 4 (one thread): detection scaled by the zoo's Pi 4
    YuNet time over YuNet's time here at the same input; the embedder by the zoo's Pi/Intel ratio for ResNet-50
    times Intel/here (from YuNet); the numpy stages (landmarks, crop, match) by the same ResNet factor (CPU-bound
    scalar code, a conservative guess). Not a measurement on a Pi."""
    here_to_intel = ZOO["yunet_160x120"]["intel_12700k"] / here_yunet_ms
    resnet = ZOO["ppresnet50_224"]["rpi4"] / ZOO["ppresnet50_224"]["intel_12700k"] * here_to_intel
    det = ZOO["yunet_160x120"]["rpi4"] / here_yunet_ms
    factors = {"detect": det, "landmarks": resnet, "align": resnet, "embed": resnet, "match": resnet}
    est = {k: (None if v is None else round(v * factors[k], 1)) for k, v in stages.items()}
    est["face_frame_sum"] = round(sum(v for v in est.values() if v is not None), 1)
    return {"ESTIMATE": True, "stages_median_ms": est, "factors": {k: round(v, 2) for k, v in factors.items()},
            "yunet_160x120_here_ms": round(here_yunet_ms, 3), "zoo": ZOO,
            "how": "derived from published OpenCV zoo Pi 4 timings, not measured on a Pi"}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        for kind, style in (("_face", "-"), ("_empty", ":")):
            v = np.sort(r[kind])
            if len(v):
                ax.plot(v, np.arange(1, len(v) + 1) / len(v), style,
                        label=f"{r['key']} {'face' if kind == '_face' else 'empty'} frames")
    ax.set_xlabel("frame -> decision latency (ms), 640x480, 1 thread")
    ax.set_ylabel("fraction of frames")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gate_latency.json")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeface-bench-gate"))
    ap.add_argument("--int8", type=Path, help="an int8 ONNX embedder (default: quantize the reference model here)")
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument("--bundle", type=Path,
                    help="an exported bundle (edgeface export) to measure instead; copied into --work first")
    ap.add_argument("--keys", nargs="+", help="model keys of --bundle to measure (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4],
                    help="model.threads values for the `gate --simulate` runs (latency summary and peak RSS)")
    ap.add_argument("--fr-every", type=int, default=5,
                    help="time face_recognition on every N-th face frame, interleaved (0: not at all)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="in-process measurements per key, the keys interleaved; medians over the rounds are reported")
    ap.add_argument("--threshold", type=float, help="cosine threshold for an uncalibrated bundle (default 0.40)")
    ap.add_argument("--mirror", choices=("on", "off", "both"), default="on",
                    help="[model] mirror at the door (both: each key twice, interleaved, as KEY and KEY/no-mirror)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    here_yunet = yunet_160_ms()
    detector = create_detector("yunet", YUNET)
    if args.bundle:
        bundle = args.work / f"bundle-{args.bundle.name}"
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.copytree(args.bundle, bundle)
        keys = args.keys or list(Bundle.load(bundle).meta.models)
    else:
        bundle = make_bundle(args.work / "bundle", REFERENCE, THRESHOLD)
        keys = ["onnx_fp32"]
        if not args.no_int8:
            add_model(bundle, "onnx_int8", args.int8 or make_int8(args.work, detector))
            keys.append("onnx_int8")
    calibrated = Bundle.load(bundle).meta.thresholds
    threshold = args.threshold if args.threshold is not None else THRESHOLD
    video, galleries, spans = scene(args.work, detector, bundle, keys, args.seed)
    keys = [k + suffix for k in keys for suffix in {"on": [""], "off": ["/no-mirror"],
                                                    "both": ["", "/no-mirror"]}[args.mirror]]

    def config_for(name: str, threads: int) -> Path:
        key, _, variant = name.partition("/")
        config = args.work / f"gate_{key}{'_' + variant if variant else ''}_t{threads}.toml"
        config.write_text(f'[model]\nbundle = "{bundle}"\ngallery = "{galleries[key]}"\nkey = "{key}"\n'
                          f'threads = {threads}\nmirror = {"false" if variant else "true"}\n\n'
                          f'[camera]\nsource = "{video}"\n\n[detector]\nmodel_path = "{YUNET}"\n\n'
                          '[relay]\nbackend = "mock"\npulse_s = 0.2\n'
                          + ("" if key in calibrated and args.threshold is None
                             else f"\n[policy]\nthreshold = {threshold}\n"))
        return config

    runs: dict[str, list[dict]] = {key: [] for key in keys}
    for rnd in range(args.rounds):  # the keys interleaved, order alternating: the machine's load hits all alike
        for key in (keys if rnd % 2 == 0 else keys[::-1]):
            runs[key].append(measure(load_config(config_for(key, 1)), video, detector, fr_every=args.fr_every))
    results = []
    for key in keys:
        r = combine(runs[key])
        grants = [(pid, t) for kind, pid, t in r["decisions"] if kind == "granted"]
        r["outcome"] = {
            "enrolled_appearances_granted": sum(any(p == sp.label and sp.t0 <= t <= sp.t1 for p, t in grants)
                                                for sp in spans if not sp.label.startswith("stranger")),
            "enrolled_appearances": sum(not sp.label.startswith("stranger") for sp in spans),
            "stranger_grants": sum(any(sp.t0 <= t <= sp.t1 for p, t in grants) for sp in spans
                                   if sp.label.startswith("stranger")),
            "grants_total": len(grants),
        }
        r["daemon"] = {}
        for threads in args.threads:
            run = daemon_run(config_for(key, threads), video, key.partition("/")[0])
            r["daemon"][f"threads_{threads}"] = run
            sm = run["summary"]
            print(f"{key} {threads} thread(s): face frames p50 {sm['face_latency_ms']['p50']} / p95 "
                  f"{sm['face_latency_ms']['p95']} ms; peak RSS {run['max_rss_mib']} MiB")
        r["daemon_max_rss_mib"] = r["daemon"][f"threads_{args.threads[0]}"]["max_rss_mib"]
        r["pi4_estimate"] = pi4_estimate(r["stages_median_ms"], here_yunet)
        results.append(r)
        fr = r.get("face_recognition_same_frames", {})
        print(f"{key}: face frames p50 {r['face_frames']['p50_ms']} ms p95 {r['face_frames']['p95_ms']} ms; "
              f"empty frames p50 {r['empty_frames'].get('p50_ms')} ms; stages {r['stages_median_ms']}; "
              f"full-frame detection {r['before_full_frame_detection']['stages_median_ms']['detect']} ms; "
              f"face_recognition ratio {fr.get('ratio_of_medians')}; daemon RSS {r['daemon_max_rss_mib']} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.out.with_suffix(".png"))
    doc = {
        "what": "frame -> decision latency (pipeline + policy) at 640x480, OpenCV and the embedder runtime on 1 "
                "thread; peak RSS of `edgeface gate --simulate` per model",
        "bundle": str(args.bundle or "reference ONNX (+ int8 quantized here)"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "opencv": cv2.__version__,
                    "load_avg_at_end": os.getloadavg()},
        "measured_with": runtimes(),
        "video": {"frames": sum(r["all_frames"]["n"] for r in results[:1]), "appearances": len(spans),
                  "enrolled_appearances": sum(not s.label.startswith("stranger") for s in spans)},
        "appearances": [[sp.label, sp.t0, sp.t1] for sp in spans],
        "results": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
