"""``edgeface export`` as a function: source model -> bundle directory with fp32/int8 ONNX/TFLite + parity report.

The bundle is built in a staging directory next to ``out`` and renamed into place only when every artefact
exists, loads in the core runtimes and at least one int8 model (of an ``--int8`` export) passes the parity gate.
An int8 model that fails the gate while another passes stays in the bundle flagged DEGRADED
(``notes.parity.degraded``): never the default model, refused by the gate unless ``[model] accept_degraded``,
and :func:`summary` says so. When every int8 model fails, the bundle is kept as ``<out>.rejected`` (with its
report) for inspection, never at ``out``, unless ``--allow-degraded``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeface.bundle import AlignSpec, InputSpec
from edgeface.errors import EdgefaceError
from edgeface.fileutil import sha256_file
from edgeface.preprocess import to_model_input

from . import bundle_writer, report
from . import calib as calibset
from .quantize import CANDIDATES, Recipe

log = logging.getLogger(__name__)


@dataclass
class ExportOptions:
    out: Path
    checkpoint: Path | None = None
    onnx: Path | None = None
    pretrained: str | None = None
    #: auto: a pair-trained checkpoint's logistic unit scores pairs, else cosine; or force cosine / logistic
    scorer: str = "auto"
    int8: bool = False
    calib: Path | None = None
    val: Path | None = None
    tflite: bool = True
    allow_degraded: bool = False
    detector_model: Path | None = None
    min_calib: int = calibset.MIN_CALIB_CROPS
    n_calib: int = calibset.DEFAULT_CALIB_CROPS
    n_probe: int = calibset.DEFAULT_PROBE_CROPS
    candidates: tuple[Recipe, ...] = CANDIDATES
    latency_runs: int = 40
    progress: bool = True
    threads: int = 1
    force: bool = False
    notes: dict = field(default_factory=dict)


@dataclass
class _Source:
    kind: str  # "trained" | "imported"
    spec: InputSpec
    embedding_size: int
    torch_model: object  # callable returning the PyTorch module (lazy for imports)
    reference: object  # crops -> raw embeddings
    reference_name: str
    notes: dict
    dynamo: bool
    val_identities: list[str] | None = None
    align: AlignSpec | None = None
    #: auxiliary files written into the staging bundle: key -> AuxFile (e.g. the landmark model)
    files: dict = field(default_factory=dict)
    licence: str | None = None
    provenance: dict = field(default_factory=dict)
    scorer: object = None  # ScorerSpec | None

    def aligner(self, stage: Path):
        """The model's alignment, its landmark model read from the staging bundle."""
        from edgeface.alignment import Aligner

        if self.align is None:
            return Aligner.arcface(int(self.spec.size[0]))
        model = stage / self.files[self.align.landmark_model].file if self.align.landmark_model else None
        return Aligner(self.align, model)


NOISY_LOGGERS = ("onnx_ir", "onnxscript", "jax", "absl", "torch", "onnxruntime")


def _quiet_libraries() -> None:
    """The converters log every pass at INFO; keep our own INFO lines readable (``-v`` shows everything)."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def export_bundle(opts: ExportOptions):
    """Build the bundle; returns (Bundle, report dict). Raises EdgefaceError with a clear message on failure."""
    import torch

    _quiet_libraries()
    torch.set_num_threads(max(1, opts.threads))
    if sum(x is not None for x in (opts.checkpoint, opts.onnx, opts.pretrained)) != 1:
        raise EdgefaceError("give exactly one source: --checkpoint RUN_DIR/checkpoint.pt, --onnx MODEL.onnx or "
                            "--pretrained dlib-resnet-v1")
    if opts.int8 and opts.calib is None:
        raise EdgefaceError("--int8 needs --calib DIR: real face photos (or an `edgeface prepare` crop cache) "
                            f"to calibrate on, at least {opts.min_calib} faces")
    if opts.calib is None and opts.val is None:
        raise EdgefaceError("the parity report needs real faces: give --calib DIR or --val DIR")
    out = Path(opts.out)
    if out.exists() and any(out.iterdir()) and not opts.force:
        raise EdgefaceError(f"{out} exists and is not empty; choose another --out or pass --force")

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        bundle, rep, bad = _build(opts, stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if rejected_by_gate(rep, bad) and not opts.allow_degraded:
        rejected = out.with_name(out.name + ".rejected")
        shutil.rmtree(rejected, ignore_errors=True)
        os.replace(stage, rejected)
        raise EdgefaceError("int8 export is degraded: no int8 model passed the parity gate:\n  " + "\n  ".join(bad) +
                            f"\nthe bundle and its report are kept at {rejected} (not at {out}). Export without "
                            "--int8 for an fp32 bundle, or pass --allow-degraded to keep this one (its int8 models "
                            "flagged DEGRADED: never the default, refused by the gate unless "
                            "[model] accept_degraded = true)")
    if out.exists():
        shutil.rmtree(out)
    os.replace(stage, out)
    from edgeface.bundle import Bundle

    return Bundle.load(out), rep


def _failed_keys(bad: list[str]) -> set[str]:
    return {m.split(":", 1)[0].strip() for m in bad}


def rejected_by_gate(rep: dict, bad: list[str]) -> bool:
    """The bundle fails the parity gate when it has int8 models and none of them passed (an int8 model that
    fails beside one that passes is kept, flagged DEGRADED)."""
    int8 = {k for k, r in rep["artefacts"].items() if r["precision"] == "int8"}
    return bool(int8) and int8 <= _failed_keys(bad)


def summary(bundle) -> list[str]:
    """What the export left, in plain words: the default model and every DEGRADED one with what to do."""
    from edgeface.bundle_status import degraded_models

    degraded = degraded_models(bundle)
    default = bundle.default_key()
    lines = [f"default model: {default} (what enroll, calibrate and the gate use without a model key)"]
    for key, flags in degraded.items():
        lines.append(f"DEGRADED: {'; '.join(flags)}. {key} is kept in the bundle but is never the default, and the "
                     "gate refuses it unless [model] accept_degraded = true.")
    if not degraded:
        return lines
    fmts = {bundle.model(k).format for k in degraded}
    passed = [k for k, m in bundle.meta.models.items() if m.precision == "int8" and k not in degraded]
    if fmts == {"tflite"}:
        lines.append("To leave the int8 TFLite model out, export again with --no-tflite (ONNX files only).")
    if passed:
        lines.append(f"The int8 model that passed: {', '.join(passed)}.")
    else:
        lines.append(f"No int8 model passed the parity gate: the door runs {default} unless told otherwise.")
    return lines


def _detector(opts: ExportOptions):
    from edgeface.config import DetectorConfig
    from edgeface.recognizer import build_detector

    return build_detector(DetectorConfig(model_path=opts.detector_model), frames=False)


def _faces(opts: ExportOptions, val_identities: list[str] | None, aligner=None):
    det = None
    if (opts.calib and not _is_cache(opts.calib)) or (opts.val and not _is_cache(opts.val)):
        det = _detector(opts)
    calib_faces = val_faces = None
    split_rule = ""
    if opts.calib is not None:
        faces = calibset.load_faces(opts.calib, det, progress=opts.progress, aligner=aligner)
        if opts.val is not None:
            calib_faces = faces
        else:
            calib_faces, val_faces = calibset.split_calib_val(faces, val_identities)
            split_rule = ("the source run's validation identities" if val_identities else
                          f"split_identities(val_fraction={calibset.VAL_FRACTION}, seed={calibset.SPLIT_SEED}) of --calib")
    if opts.val is not None:
        val_faces = calibset.load_faces(opts.val, det, progress=opts.progress, aligner=aligner)
        split_rule = f"--val {opts.val}"
        if calib_faces is not None:
            overlap = set(calib_faces.identities) & set(val_faces.identities)
            if overlap and not calib_faces.flat:
                calib_faces = calib_faces.subset([i for i in calib_faces.identities if i not in overlap])
    if val_faces is None or val_faces.flat or len(val_faces.identities) < 2:
        raise EdgefaceError("no validation identities: a flat --calib folder has no identities to hold out; "
                            "give --val DIR with a folder per identity")
    return calib_faces, val_faces, split_rule


def _is_cache(path: Path) -> bool:
    from edgeface.cropcache import is_cache

    return is_cache(path)


def _source(opts: ExportOptions, stage: Path) -> _Source:
    import torch

    from . import to_onnx

    if opts.pretrained is not None:
        from .dlib.pretrained import load_pretrained

        pre = load_pretrained(opts.pretrained)
        model, spec = pre.model, pre.spec
        onnx_info = to_onnx.export_torch(model, stage / "model.onnx", tuple(spec.size))
        notes = {"kind": "imported", "pretrained": pre.name,
                 "onnx": {"exporter": f"torch.onnx dynamo (torch {torch.__version__})", "opset": onnx_info.opset,
                          "dynamic_batch": onnx_info.dynamic_batch}}
        return _Source("imported", spec, onnx_info.embedding_size, lambda: model, _torch_reference(model, spec),
                       "pytorch port of the dlib .dat", notes, True, None, pre.align, pre.write_landmarks(stage),
                       pre.licence, pre.provenance)

    if opts.checkpoint is not None:
        from .checkpoint import checkpoint_alignment, checkpoint_scorer, load_checkpoint

        model, info = load_checkpoint(opts.checkpoint)
        spec = InputSpec.model_validate(info.get("input", {}))
        onnx_info = to_onnx.export_torch(model, stage / "model.onnx", tuple(spec.size))
        reference = _torch_reference(model, spec)
        align, files, licence, provenance = checkpoint_alignment(opts.checkpoint, info, stage)

        val_ids = _run_val_identities(opts.checkpoint, info)
        notes = {"kind": "trained", "checkpoint": str(opts.checkpoint), "checkpoint_sha256": sha256_file(opts.checkpoint),
                 "model_config": info.get("model_config"), "epoch": info.get("epoch"),
                 "onnx": {"exporter": f"torch.onnx dynamo (torch {torch.__version__})", "opset": onnx_info.opset,
                          "dynamic_batch": onnx_info.dynamic_batch}}
        return _Source("trained", spec, onnx_info.embedding_size, lambda: model, reference,
                       "pytorch checkpoint", notes, True, val_ids, align, files, licence, provenance,
                       checkpoint_scorer(info, opts.scorer))

    import onnxruntime as ort

    onnx_info = to_onnx.import_onnx(opts.onnx, stage / "model.onnx")
    shape = onnx_info.input_shape
    layout = "NCHW" if shape[1] == 3 else "NHWC"
    hw = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    spec = InputSpec(size=tuple(int(v) for v in hw), layout=layout)
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, opts.threads)
    sess = ort.InferenceSession(str(opts.onnx), so, providers=["CPUExecutionProvider"])

    def reference(crops):
        from .quantize import run_batched

        return run_batched(sess, to_model_input(crops, spec))

    def torch_model():
        from .to_tflite import onnx_to_torch

        return onnx_to_torch(stage / "model.onnx", _sample_shape(spec))

    notes = {"kind": "imported", "onnx_source": str(opts.onnx), "onnx_source_sha256": sha256_file(opts.onnx),
             "onnx": {"source_opset": onnx_info.source_opset, "opset": onnx_info.opset,
                      "converter": "onnx.version_converter", "dynamic_batch": onnx_info.dynamic_batch},
             "input": "documented defaults (112x112 RGB, (x - 127.5) / 128); sizes read from the model"}
    return _Source("imported", spec, onnx_info.embedding_size, torch_model, reference, "source onnx", notes, False)


def _torch_reference(model, spec: InputSpec):
    import torch

    @torch.no_grad()
    def reference(crops):
        x = to_model_input(crops, spec)
        return np.concatenate([model(torch.from_numpy(x[i:i + 64])).numpy() for i in range(0, len(x), 64)])

    return reference


def _run_val_identities(checkpoint: Path, info: dict) -> list[str] | None:
    """The held-out identities of the training run (checkpoint info, else the run's split.json)."""
    split = info.get("split")
    if isinstance(split, dict) and split.get("val"):
        return list(split["val"])
    from edgeface.cropcache import read_split

    try:
        return list(read_split(Path(checkpoint).parent)["val"])
    except EdgefaceError:
        return None


def _sample_shape(spec: InputSpec) -> tuple[int, ...]:
    h, w = spec.size
    return (1, 3, h, w) if spec.layout == "NCHW" else (1, h, w, 3)


def _build(opts: ExportOptions, stage: Path):
    from tqdm import tqdm

    src = _source(opts, stage)
    calib_faces, val_faces, split_rule = _faces(opts, src.val_identities, src.aligner(stage))
    notes: dict = {"exporter": "edgeface export", "source": src.notes, **opts.notes}
    steps = ["int8 onnx"] * opts.int8 + ["tflite fp32"] * opts.tflite + ["tflite int8"] * (opts.tflite and opts.int8)
    x_calib = None
    if opts.int8:
        crops, probe = calibset.pick_calibration(calib_faces, opts.n_calib, opts.n_probe, opts.min_calib)
        x_calib, x_probe = to_model_input(crops, src.spec), to_model_input(probe, src.spec)
        notes["calibration"] = {"data": str(opts.calib), "crops": int(len(crops)), "probe_crops": int(len(probe)),
                                "identities": len(calib_faces.identities),
                                "crops_sha256": hashlib.sha256(np.ascontiguousarray(crops).tobytes()).hexdigest()}
    torch_model = None
    with tempfile.TemporaryDirectory(prefix="edgeface-quant-") as work:
        for step in tqdm(steps, desc="export", unit="file", disable=not opts.progress):
            if step == "int8 onnx":
                from .quantize import quantize_onnx

                q = quantize_onnx(stage / "model.onnx", bundle_writer.path_for(stage, "onnx_int8"), x_calib, x_probe,
                                  Path(work), dynamo=src.dynamo, candidates=opts.candidates, progress=opts.progress)
                notes["onnx_int8"] = q.notes()
            else:
                from . import to_tflite

                torch_model = torch_model or src.torch_model()
                if step == "tflite fp32":
                    to_tflite.export_fp32(torch_model, bundle_writer.path_for(stage, "tflite_fp32"), _sample_shape(src.spec))
                else:
                    to_tflite.export_int8(torch_model, bundle_writer.path_for(stage, "tflite_int8"), x_calib,
                                          _sample_shape(src.spec), progress=opts.progress)
    if opts.tflite:
        import litert_torch

        from . import to_tflite

        notes["tflite"] = {"converter": f"litert-torch {litert_torch.__version__}", "layout": src.spec.layout,
                           "batch": 1, "int8": "PT2E static: int8 activations (histogram observer), per-channel "
                                               "symmetric int8 weights, calibrated at batch 1 on the same crops as "
                                               "the ONNX int8 model",
                           "int8_float_tail": to_tflite.FLOAT_TAIL}
    notes["validation"] = {"data": str(opts.val or opts.calib), "rule": split_rule, "faces": len(val_faces),
                           "identities": len(val_faces.identities)}
    bundle = bundle_writer.write_bundle(stage, src.kind, src.spec, src.embedding_size, notes, align=src.align,
                                        files=src.files, licence=src.licence, provenance=src.provenance,
                                        scorer=src.scorer)
    rep = report.evaluate(stage, src.reference, val_faces.crops, val_faces.labels, src.reference_name,
                          latency_runs=opts.latency_runs, validation=split_rule)
    print(report.table(rep))
    report.write(rep, stage)
    bad = report.problems(rep)
    notes["parity"] = {k: {"mean_cosine": round(r["mean_cosine"], 5), "tar_drop_points": r.get("tar_drop_points")}
                       for k, r in rep["artefacts"].items()}
    notes["parity"]["degraded"] = bad
    bundle = bundle_writer.write_bundle(stage, src.kind, src.spec, src.embedding_size, notes, align=src.align,
                                        files=src.files, licence=src.licence, provenance=src.provenance,
                                        scorer=src.scorer)
    return bundle, rep, bad
