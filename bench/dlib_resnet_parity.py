"""edgeface's port of dlib's face-recognition ResNet against dlib itself: parity and one-thread speed.

    OMP_NUM_THREADS=1 .venv/bin/python bench/dlib_resnet_parity.py --data ../shared/data/faces --faces 80

dlib (dlib-bin, a reference only) makes the chips: HOG detector box -> 5-point predictor -> get_face_chip (150,
padding 0.25), and the reference descriptors with compute_face_descriptor. The port reads the same .dat file with
edgeface's own reader; its torch forward, fp32 ONNX (onnxruntime) and fp32 TFLite (ai-edge-litert) are compared by
max abs difference. Speed: per-face embedding time, batch 1, one thread, median over ``--runs`` runs after a warm-up.
Writes JSON to ``--out`` (default bench/results/dlib_resnet_parity.json) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def median_ms(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def reference_chips(data: Path, faces: int, models: Path):
    import dlib

    detector = dlib.get_frontal_face_detector()
    shape5 = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    facerec = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    photos = sorted((data / "celeba-loose").glob("*/*.jpg"))[: faces * 3 // 4 + 10]
    photos += sorted((data / "orl").glob("*/1.png"))[: faces // 4 + 5]
    chips, descriptors = [], []
    for photo in photos:
        rgb = np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB))
        found = detector(rgb, 1)
        if found and len(chips) < faces:
            chips.append(dlib.get_face_chip(rgb, shape5(rgb, found[0]), size=150, padding=0.25))
            descriptors.append(np.asarray(facerec.compute_face_descriptor(chips[-1]), np.float32))
    return chips, np.stack(descriptors), facerec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/faces"))
    ap.add_argument("--faces", type=int, default=80)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("bench/results/dlib_resnet_parity.json"))
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from edgeface.export.dlib.resnet import load_dlib_resnet, preprocess_chips
    from edgeface.export.to_onnx import export_torch
    from edgeface.export.to_tflite import export_fp32
    from edgeface.registry import resolve_dlib_model

    torch.set_num_threads(1)
    path = resolve_dlib_model("dlib-resnet-v1", allow_download=False)
    chips, want, facerec = reference_chips(args.data, args.faces, path.parent)
    x = preprocess_chips(np.stack(chips))
    net = load_dlib_resnet(path)
    result: dict = {"faces": len(chips)}
    with torch.no_grad():
        result["torch_max_abs"] = float(np.abs(net(torch.from_numpy(x)).numpy() - want).max())
        result["torch_folded_max_abs"] = float(np.abs(net.fold_affine()(torch.from_numpy(x)).numpy() - want).max())

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_torch(net, Path(tmp) / "dlib_resnet.onnx", size=(150, 150)).path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        result["onnx_fp32_max_abs"] = float(np.abs(sess.run(None, {"input": x})[0] - want).max())
        result["onnx_fp32_ms"] = median_ms(lambda: sess.run(None, {"input": x[:1]}), args.runs)

        tfl = Interpreter(str(export_fp32(net, Path(tmp) / "dlib_resnet.tflite", shape=(1, 3, 150, 150))),
                          num_threads=1)
        tfl.allocate_tensors()
        inp, out = tfl.get_input_details()[0]["index"], tfl.get_output_details()[0]["index"]

        def tflite_one(face: np.ndarray) -> np.ndarray:
            tfl.set_tensor(inp, face[None])
            tfl.invoke()
            return tfl.get_tensor(out)[0].copy()

        got = np.stack([tflite_one(face) for face in x])
        result["tflite_fp32_max_abs"] = float(np.abs(got - want).max())
        result["tflite_fp32_ms"] = median_ms(lambda: tflite_one(x[0]), args.runs)

    with torch.no_grad():
        result["torch_ms"] = median_ms(lambda: net(torch.from_numpy(x[:1])), args.runs)
    result["dlib_compute_face_descriptor_ms"] = median_ms(lambda: facerec.compute_face_descriptor(chips[0]),
                                                          min(args.runs, 20))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['faces']} faces (dlib HOG box -> 5-point -> get_face_chip), max abs difference from dlib's "
          "compute_face_descriptor; per-face time, batch 1, one thread, median")
    print("| forward | max abs diff | ms / face |\n|---|---|---|")
    print(f"| dlib compute_face_descriptor | 0 | {result['dlib_compute_face_descriptor_ms']:.1f} |")
    print(f"| torch | {result['torch_max_abs']:.2g} | {result['torch_ms']:.1f} |")
    print(f"| torch, affine folded into conv | {result['torch_folded_max_abs']:.2g} | |")
    print(f"| ONNX fp32 (onnxruntime) | {result['onnx_fp32_max_abs']:.2g} | {result['onnx_fp32_ms']:.1f} |")
    print(f"| TFLite fp32 (ai-edge-litert) | {result['tflite_fp32_max_abs']:.2g} | {result['tflite_fp32_ms']:.1f} |")


if __name__ == "__main__":
    main()
