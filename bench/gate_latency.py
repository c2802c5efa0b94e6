"""Gate latency and memory: frame -> decision at 640x480 on one thread, fp32 and int8, and the daemon's RSS.

A door video is composed from real faces (ORL and celeba-loose photos pasted on a wall at varied sizes and
positions, enrolled people and strangers, gaps of empty wall), then every frame goes through the gate's own
pipeline and policy (YuNet -> largest face -> quality gate -> align -> embed -> match -> k-of-n decision),
with OpenCV and onnxruntime limited to one thread. Latency is per frame, from the decoded frame to the policy's
answer, reported separately for frames with a usable face (the full chain) and empty frames (detector only).

Memory: ``edgeface gate --simulate`` runs as a child process per model and its peak resident set size
(``VmHWM`` of that process) is recorded: the whole daemon (Python, OpenCV, onnxruntime, models, gallery).

int8: ``--int8 FILE.onnx`` (e.g. from ``edgeface export``), or, by default, the reference model quantized here
with the export side's recipe ``u8s8-mixed-minmax-tail`` on aligned ORL crops (cached under --work).

    .venv/bin/python bench/gate_latency.py --out bench/results/gate_latency.json
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
from edgeface.faceset import aligned_crop, read_image  # noqa: E402
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

    crops = []
    for ident in [f"s{i}" for i in range(4, 30)]:
        for p in sorted((FACES / "orl" / ident).iterdir())[:4]:
            c, _ = aligned_crop(detector, read_image(p))
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


def measure(cfg: GateConfig, video: Path, detector) -> dict:
    """Every frame through the gate's pipeline and policy; latency from decoded frame to decision."""
    limit_threads(1)
    rt = load_runtime(cfg, detector=detector)
    rt.pipeline.warm_up()
    policy = Policy(rt.params)
    stages = {"detect": [], "embed": []}

    def timed(fn, name):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            out = fn(*a, **kw)
            stages[name].append((time.perf_counter() - t) * 1e3)
            return out
        return wrapper

    rt.pipeline.detector = type("TimedDetector", (), {"detect": staticmethod(timed(rt.pipeline.detector.detect, "detect"))})()
    rt.pipeline.embedder.embed = timed(rt.pipeline.embedder.embed, "embed")
    cam = open_camera(str(video), cfg.camera, realtime=False)
    cam.open()
    face_ms, empty_ms, decisions = [], [], []
    with tqdm(desc=f"frames {rt.key}", unit="frame") as bar:
        while (frame := cam.read()) is not None:
            t0 = time.perf_counter()
            r = rt.pipeline.process(frame.image)
            m = r.match if r.usable else None
            rejected = None if r.usable or r.face is None else ",".join(r.reasons)
            out = policy.observe(frame.t, r.face is not None, m and m.person_id, m and m.name, m and m.score,
                                 m and m.margin, rejected=rejected, embedding=r.embedding)
            ms = (time.perf_counter() - t0) * 1e3
            (face_ms if r.usable else empty_ms).append(ms)
            decisions += [(d.kind, d.person_id, round(d.t, 2)) for d in out]
            bar.update()
    cam.close()

    def pct(v):
        return {"n": len(v), "p50_ms": round(float(np.percentile(v, 50)), 2),
                "p95_ms": round(float(np.percentile(v, 95)), 2)} if v else {"n": 0}

    return {"key": rt.key, "face_frames": pct(face_ms), "empty_frames": pct(empty_ms),
            "all_frames": pct(face_ms + empty_ms), "detect": pct(stages["detect"]), "embed": pct(stages["embed"]),
            "decisions": decisions, "_face": face_ms, "_empty": empty_ms}


#: run the CLI, then print the process's own peak RSS. VmHWM belongs to the new address space (reset at exec);
#: ru_maxrss is not usable here, Linux carries it over from the forking parent (this bench, with its models)
RUN_AND_REPORT_PEAK = (
    "import sys\nfrom edgeface.cli import main\nrc = main(sys.argv[1:])\n"
    "hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "print(f'VmHWM_kB={hwm}', file=sys.stderr)\nsys.exit(rc)")


def daemon_rss(config: Path, video: Path, key: str) -> float:
    """Peak RSS (MiB) of `edgeface gate --simulate` as its own process: the whole daemon (Python, OpenCV,
    onnxruntime, detector and embedder sessions, gallery, decoder)."""
    env = dict(os.environ, EDGEFACE_YUNET=str(YUNET))
    proc = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_PEAK, "gate", "--simulate", str(video),
                           "--config", str(config), "--model", key],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"gate --simulate --model {key} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return int(proc.stderr.rsplit("VmHWM_kB=", 1)[1].split()[0]) / 1024.0


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
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
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
    video, galleries, spans = scene(args.work, detector, bundle, keys, args.seed)
    results = []
    for key in keys:
        config = args.work / f"gate_{key}.toml"
        config.write_text(f'[model]\nbundle = "{bundle}"\ngallery = "{galleries[key]}"\nkey = "{key}"\nthreads = 1\n\n'
                          f'[camera]\nsource = "{video}"\n\n[detector]\nmodel_path = "{YUNET}"\n\n'
                          '[relay]\nbackend = "mock"\npulse_s = 0.2\n'
                          + ("" if key in calibrated else f"\n[policy]\nthreshold = {THRESHOLD}\n"))
        cfg = load_config(config)
        r = measure(cfg, video, detector)
        grants = [(pid, t) for kind, pid, t in r["decisions"] if kind == "granted"]
        r["outcome"] = {
            "enrolled_appearances_granted": sum(any(p == sp.label and sp.t0 <= t <= sp.t1 for p, t in grants)
                                                for sp in spans if not sp.label.startswith("stranger")),
            "enrolled_appearances": sum(not sp.label.startswith("stranger") for sp in spans),
            "stranger_grants": sum(any(sp.t0 <= t <= sp.t1 for p, t in grants) for sp in spans
                                   if sp.label.startswith("stranger")),
            "grants_total": len(grants),
        }
        r["daemon_max_rss_mib"] = round(daemon_rss(config, video, key), 1)
        results.append(r)
        print(f"{key}: face frames p50 {r['face_frames']['p50_ms']} ms p95 {r['face_frames']['p95_ms']} ms; "
              f"empty frames p50 {r['empty_frames']['p50_ms']} ms; daemon RSS {r['daemon_max_rss_mib']} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.out.with_suffix(".png"))
    doc = {
        "what": "frame -> decision latency (pipeline + policy) at 640x480, OpenCV and the embedder runtime on 1 "
                "thread; peak RSS of `edgeface gate --simulate` per model",
        "bundle": str(args.bundle or "reference ONNX (+ int8 quantized here)"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "opencv": cv2.__version__,
                    "load_avg_at_end": os.getloadavg()},
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
