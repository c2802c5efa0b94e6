"""``edgeface info BUNDLE_OR_MODEL``: what a bundle or model file is."""

from __future__ import annotations

import json
from pathlib import Path

from ..bundle import Bundle
from ..bundle_status import degraded_flags

NAME = "info"
HELP = "describe a model bundle or a bare .onnx/.tflite model: inputs, outputs, fingerprints"


def add_arguments(p) -> None:
    p.add_argument("path", type=Path, help="bundle directory, edgeface.json, or a .onnx/.tflite file")
    p.add_argument("--json", action="store_true")


def _io(bundle: Bundle, key: str) -> dict:
    mf = bundle.model(key)
    path = bundle.path_of(key)
    if mf.format == "onnx":
        import onnxruntime as ort

        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return {"inputs": [{"name": i.name, "shape": i.shape, "type": i.type} for i in s.get_inputs()],
                "outputs": [{"name": o.name, "shape": o.shape, "type": o.type} for o in s.get_outputs()]}
    from ..runtime.litert import load_interpreter

    it = load_interpreter(path)
    def d(x):
        return {"name": x["name"], "shape": [int(v) for v in x["shape"]], "type": x["dtype"].__name__,
                "quantization": [float(x["quantization"][0]), int(x["quantization"][1])]}
    return {"inputs": [d(x) for x in it.get_input_details()], "outputs": [d(x) for x in it.get_output_details()]}


def run(args) -> int:
    bundle = Bundle.load(args.path)
    meta = bundle.meta
    info = {
        "path": str(args.path),
        "kind": "bare model (documented defaults)" if bundle.bare else "bundle",
        "source": meta.source,
        "input": meta.input.model_dump(),
        "embedding_size": meta.embedding_size,
        "models": {k: {**mf.model_dump(), **_io(bundle, k)} for k, mf in meta.models.items()},
        "thresholds": {k: t.model_dump() for k, t in meta.thresholds.items()},
        "default_key": bundle.default_key(),
        "degraded": {k: degraded_flags(bundle, k) for k in meta.models if degraded_flags(bundle, k)},
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    i = meta.input
    print(f"{args.path}: {info['kind']}, source {meta.source}, {meta.embedding_size}-d embeddings")
    print(f"  input {i.size[0]}x{i.size[1]} {i.color_order} {i.layout}, (x - {i.mean[0]}) / {i.std[0]}")
    print(f"  default model: {info['default_key']} (what enroll, calibrate and the gate use without --model / key)")
    for k, m in info["models"].items():
        print(f"  {k}: {m['file']} ({m['format']}, {m['precision']}, {m['size']:,} bytes) sha256 {m['sha256']}")
        for x in m["inputs"]:
            print(f"    in  {x['name']} {x['shape']} {x['type']}")
        for x in m["outputs"]:
            print(f"    out {x['name']} {x['shape']} {x['type']}")
        for flag in info["degraded"].get(k, []):
            print(f"    DEGRADED: {flag} (the gate refuses it unless [model] accept_degraded = true)")
    for k, t in meta.thresholds.items():
        print(f"  threshold[{k}] = {t.value:.4f} at FAR {t.far:g}" + (f", TAR {t.tar:.3f}" if t.tar is not None else "")
              + (f"; {t.impostor_pairs:,} impostor pairs" if t.impostor_pairs else ""))
        if k in meta.models:
            try:  # what the door and enrollment derive from it (edgeface.thresholds)
                from ..thresholds import resolve

                print(f"    derived: {resolve(bundle, k).describe()}")
            except Exception as exc:  # an old calibration without points: say so, it still loads
                print(f"    derived thresholds unavailable: {exc}")
    for k in meta.models:
        if k not in meta.thresholds:
            print(f"  no calibrated threshold for {k} (edgeface calibrate)")
    return 0
