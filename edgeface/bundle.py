"""The model bundle: a directory with model files and ``edgeface.json``.

``edgeface.json`` carries everything a runtime needs to reproduce preprocessing (input size, colour order,
layout, normalisation), the embedding size, a sha256 fingerprint per model file, where the model came from,
and calibrated thresholds. One loader validates it: missing or unknown fields, a missing file or a changed
file all give a clear :class:`~edgeface.errors.ModelError`.

A bare external ``.onnx`` or ``.tflite`` file is accepted with the documented defaults
(:data:`DEFAULT_INPUT`: 112x112, RGB, NCHW for ONNX / read from the file for TFLite, (x - 127.5) / 128).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ChecksumError, ModelError
from .fileutil import atomic_write_bytes, file_mismatch, sha256_file

BUNDLE_FILE = "edgeface.json"
FORMAT_VERSION = 1
#: the key of ``edgeface.json`` holding the sha256 of all its other fields (see :func:`metadata_digest`)
INTEGRITY_KEY = "integrity"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(Strict):
    size: tuple[int, int] = Field((112, 112), description="height, width of the aligned crop")
    color_order: Literal["RGB", "BGR"] = Field("RGB", description="channel order the model expects")
    layout: Literal["NCHW", "NHWC"] = Field("NCHW", description="tensor layout of the model input")
    mean: tuple[float, float, float] = Field((127.5, 127.5, 127.5), description="subtracted per channel")
    std: tuple[float, float, float] = Field((128.0, 128.0, 128.0), description="divided per channel")


DEFAULT_INPUT = InputSpec()


class AlignSpec(Strict):
    """How a face becomes the model's input crop: part of the model, so every path (prepare, eval, calibrate,
    enroll, gate) reads it from here and applies it with :class:`edgeface.alignment.Aligner`.

    ``arcface``: the detector's five points warped onto the ArcFace 112 template (scaled to ``crop_size``).
    ``dlib5``: dlib's 5-point shape predictor run on a box derived from the detector's (``box_map``), then dlib's
    ``get_face_chip`` (150x150, ``padding`` 0.25) from its template."""

    template: Literal["arcface", "dlib5"] = Field("arcface", description="reference points the crop is warped to")
    crop_size: int = Field(112, ge=16, le=1024, description="side of the square crop in pixels")
    landmarks: Literal["detector", "dlib-shape5"] = Field(
        "detector", description="where the points come from: the detector's own, or a 5-point regression stage")
    landmark_model: str | None = Field(None, description="key in `files` of the landmark stage's model")
    padding: float = Field(0.0, ge=0.0, le=2.0, description="chip padding around the template (dlib: 0.25)")
    box_map: tuple[float, float, float] | None = Field(
        None, description="detector box -> landmark-stage box: (dx, dy, side) in units of s = (w + h) / 2")

    @model_validator(mode="after")
    def _consistent(self):
        if self.landmarks == "dlib-shape5" and (not self.landmark_model or self.box_map is None):
            raise ValueError("a dlib-shape5 landmark stage needs landmark_model and box_map")
        if self.landmarks == "detector" and self.template == "dlib5":
            raise ValueError("the dlib5 template is defined on dlib's own 5 points: use landmarks = dlib-shape5")
        return self


class ScorerSpec(Strict):
    """How two embeddings are scored (:mod:`edgeface.scorer`): cosine, or the pair-trained logistic unit
    ``sigmoid(weight . phi(a, b) + bias)`` on L2-normalised embeddings, phi = |a - b| or the chi-square form."""

    kind: Literal["cosine", "logistic"] = "cosine"
    form: Literal["abs", "chi2"] = "abs"
    weight: list[float] | None = None
    bias: float | None = None

    @model_validator(mode="after")
    def _complete(self):
        if self.kind == "logistic":
            import math

            if self.weight is None or self.bias is None:
                raise ValueError("a logistic scorer needs weight and bias")
            if not all(math.isfinite(v) for v in [*self.weight, self.bias]):
                raise ValueError("the logistic scorer's weight and bias must be finite")
        return self


class AuxFile(Strict):
    """A file the bundle needs beside its embedders (e.g. the landmark model), verified like them."""

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, description="bytes")
    what: str = ""


class ModelFile(Strict):
    file: str = Field(description="file name inside the bundle")
    format: Literal["onnx", "tflite"]
    precision: Literal["fp32", "int8"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, description="bytes")


class Threshold(Strict):
    value: float = Field(ge=-1.0, le=1.0, allow_inf_nan=False,
                         description="cosine similarity at or above which a match is accepted")
    far: float = Field(gt=0, lt=1, allow_inf_nan=False, description="target false-accept rate it was calibrated for")
    tar: float | None = Field(None, description="expected true-accept rate at that threshold")
    fnir: float | None = Field(None, description="expected one-shot false-negative identification rate")
    data: str | None = Field(None, description="what it was calibrated on")
    calibrated_at: str | None = None
    points: list[tuple[float, float]] | None = Field(
        None, description="(threshold, measured FAR) pairs from the calibration, so the FAR of any threshold can be told")
    impostor_pairs: int | None = Field(None, ge=1, description="impostor pairs the calibration measured (its FAR floor is 1 / this)")
    top_impostor: float | None = Field(None, allow_inf_nan=False, description="the score only the 10 highest impostor pairs reached (a few mislabelled pairs in the data cannot move it to 1.0); above it the FAR is below 10 / impostor_pairs")
    tail: tuple[float, float, float, float] | None = Field(None, description="the impostor tail beyond its 1e-3 quantile as a generalised Pareto fit (u, p_u, sigma, xi): FAR(s) = p_u (1 + xi (s - u) / sigma) ** (-1 / xi), for FARs the pairs cannot resolve")
    mirror: bool | None = Field(None, description="whether its photos were embedded with their mirror images (as enrollment does)")


class BundleMeta(Strict):
    format_version: int = Field(FORMAT_VERSION)
    name: str = "edgeface"
    source: Literal["trained", "imported"]
    input: InputSpec = Field(default_factory=InputSpec)
    embedding_size: int = Field(ge=1)
    models: dict[str, ModelFile] = Field(description="key (e.g. onnx_fp32, onnx_int8, tflite_int8) -> file")
    thresholds: dict[str, Threshold] = Field(default_factory=dict, description="model key -> calibrated threshold")
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    notes: dict = Field(default_factory=dict, description="free-form provenance: training run, quantization choices")
    align: AlignSpec | None = Field(None, description="the alignment the model was made for (absent: ArcFace 112 "
                                                      "on the detector's points, scaled to the input size)")
    files: dict[str, AuxFile] = Field(default_factory=dict, description="auxiliary files: key -> file")
    licence: str | None = Field(None, description="the licence of the weights, as far as edgeface knows it")
    provenance: dict = Field(default_factory=dict,
                             description="source files with sha256, fine-tuning data, teacher: what may be shipped")
    scorer: ScorerSpec | None = Field(None, description="pair scorer (absent: cosine similarity)")

    @model_validator(mode="after")
    def _align_matches_input(self):
        if self.align is not None:
            h, w = self.input.size
            if h != w or h != self.align.crop_size:
                raise ValueError(f"align.crop_size {self.align.crop_size} does not match the input size {h}x{w}")
            if self.align.landmark_model and self.align.landmark_model not in self.files:
                raise ValueError(f"align.landmark_model {self.align.landmark_model!r} is not in files")
        if self.scorer is not None and self.scorer.kind == "logistic" and len(self.scorer.weight) != self.embedding_size:
            raise ValueError(f"the scorer has {len(self.scorer.weight)} weights for {self.embedding_size}-d embeddings")
        lo, hi = self.score_bounds
        for key, t in self.thresholds.items():
            if not lo <= t.value <= hi:
                raise ValueError(f"thresholds.{key}.value {t.value} is outside the score range [{lo:g}, {hi:g}]")
        return self

    @property
    def score_bounds(self) -> tuple[float, float]:
        """The range of a score (and so of a threshold): cosine [-1, 1], a logistic scorer's probability [0, 1]."""
        return (0.0, 1.0) if self.scorer is not None and self.scorer.kind == "logistic" else (-1.0, 1.0)

    @property
    def alignment(self) -> AlignSpec:
        """The alignment spec, with the documented default for bundles written before it was recorded."""
        if self.align is not None:
            return self.align
        return AlignSpec(crop_size=int(self.input.size[0]))


def model_key(fmt: str, precision: str) -> str:
    return f"{fmt}_{precision}"


class Bundle:
    """A validated bundle directory (or a bare model file wrapped with default metadata)."""

    def __init__(self, root: Path, meta: BundleMeta, bare: bool = False) -> None:
        self.root = root
        self.meta = meta
        self.bare = bare

    # -- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, verify: bool = True, check_integrity: bool = True) -> "Bundle":
        """Validate ``edgeface.json`` (its integrity sha256 first, unless ``check_integrity=False``, which only
        ``edgeface seal-bundle`` uses) and, with ``verify``, every model file's size and sha256."""
        path = Path(path)
        if path.is_file() and path.suffix in (".onnx", ".tflite"):
            return cls.from_bare_model(path)
        if path.is_file() and path.name == BUNDLE_FILE:
            path = path.parent
        meta_path = path / BUNDLE_FILE
        if not path.exists():
            raise ModelError(f"bundle not found: {path}")
        if not meta_path.is_file():
            raise ModelError(f"{path} is not a bundle: {BUNDLE_FILE} is missing")
        try:
            raw = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_path}: not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ModelError(f"{meta_path}: expected a JSON object")
        if check_integrity:
            verify_metadata(raw, meta_path)
        raw.pop(INTEGRITY_KEY, None)
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(f"{meta_path}: format_version {version!r} is not supported (expected {FORMAT_VERSION})")
        try:
            meta = BundleMeta.model_validate(raw)
        except ValidationError as exc:
            raise ModelError(f"{meta_path}: invalid bundle metadata:\n{_describe(exc)}") from None
        if not meta.models:
            raise ModelError(f"{meta_path}: lists no model files")
        bundle = cls(path, meta)
        entries = [(f"model {key} file", key, mf, bundle.verify_file) for key, mf in meta.models.items()] + \
                  [(f"file {key}", key, aux, bundle.verify_aux) for key, aux in meta.files.items()]
        for what, key, entry, check in entries:
            if not (path / entry.file).is_file():
                raise ModelError(f"{meta_path}: {what} {entry.file} is missing")
            if verify:
                check(key)
        return bundle

    @classmethod
    def from_bare_model(cls, path: Path) -> "Bundle":
        fmt = "onnx" if path.suffix == ".onnx" else "tflite"
        inp, emb, precision = _inspect_model(path, fmt)
        mf = ModelFile(file=path.name, format=fmt, precision=precision, sha256=sha256_file(path), size=path.stat().st_size)
        meta = BundleMeta(source="imported", name=path.stem, input=inp, embedding_size=emb, models={model_key(fmt, precision): mf})
        return cls(path.parent, meta, bare=True)

    # -- access --------------------------------------------------------------------------------------
    def path_of(self, key: str) -> Path:
        return self.root / self.model(key).file

    def model(self, key: str) -> ModelFile:
        try:
            return self.meta.models[key]
        except KeyError:
            raise ModelError(f"bundle {self.root} has no model {key!r}; it has {', '.join(self.meta.models)}") from None

    def default_key(self, prefer: tuple[str, ...] = ("onnx_int8", "onnx_fp32", "tflite_int8", "tflite_fp32")) -> str:
        """The model enroll, calibrate and the gate use without a key: the first of ``prefer`` that the bundle has
        and that its export did not flag DEGRADED (``notes.parity.degraded``); a degraded model is never the
        default (only when every model is degraded is the first one returned, and the gate then refuses it)."""
        from .bundle_status import degraded_flags

        keys = [k for k in prefer if k in self.meta.models] + [k for k in self.meta.models if k not in prefer]
        return next((k for k in keys if not degraded_flags(self, k)), keys[0])

    def fingerprint(self, key: str) -> str:
        return self.model(key).sha256

    def threshold(self, key: str) -> Threshold | None:
        return self.meta.thresholds.get(key)

    def verify_file(self, key: str) -> None:
        _verify_entry(self.root, self.model(key))

    def aux_path(self, key: str) -> Path:
        try:
            return self.root / self.meta.files[key].file
        except KeyError:
            raise ModelError(f"bundle {self.root} has no file {key!r}") from None

    def verify_aux(self, key: str) -> None:
        _verify_entry(self.root, self.meta.files[key])

    # -- writing -------------------------------------------------------------------------------------
    def save(self) -> Path:
        if self.bare:
            raise ModelError("a bare model file has no edgeface.json to save; export a bundle first")
        out = self.root / BUNDLE_FILE
        raw = seal_metadata(json.loads(self.meta.model_dump_json()))
        atomic_write_bytes(out, (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode(), mode=0o644)
        return out


def metadata_digest(raw: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every field but :data:`INTEGRITY_KEY`:
    generic over the fields, so a field added later is covered without a change here."""
    body = {k: v for k, v in raw.items() if k != INTEGRITY_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal_metadata(raw: dict) -> dict:
    """``raw`` with its integrity field (re)computed."""
    return {**{k: v for k, v in raw.items() if k != INTEGRITY_KEY}, INTEGRITY_KEY: {"sha256": metadata_digest(raw)}}


def verify_metadata(raw: dict, where: Path | str) -> None:
    """ChecksumError unless ``raw`` carries the sha256 of its own other fields."""
    seal = raw.get(INTEGRITY_KEY)
    if not isinstance(seal, dict) or not isinstance(seal.get("sha256"), str):
        raise ChecksumError(f"{where}: has no integrity sha256 ({INTEGRITY_KEY}.sha256): it was written by an older "
                            "edgeface or edited; re-export the bundle, or check its content and run "
                            "`edgeface seal-bundle BUNDLE` to accept it")
    if seal["sha256"] != metadata_digest(raw):
        raise ChecksumError(f"{where}: its content does not match its integrity sha256: edgeface.json was edited "
                            "or damaged (thresholds, preprocessing and file hashes can no longer be trusted); "
                            "restore it, re-export, or check it and run `edgeface seal-bundle BUNDLE`")


def check_threshold(value, what: str = "threshold", bounds: tuple[float, float] = (-1.0, 1.0)) -> float:
    """A threshold must be a finite number in what the model's score can mean: [-1, 1] for cosine, [0, 1] for a
    logistic scorer's probability (``bounds``, :meth:`BundleMeta.score_bounds`); anything else could open the
    door for anyone (below the range) or no one (above it), or compare as always-false (NaN)."""
    from .errors import ConfigError

    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r} is not a number") from None
    lo, hi = bounds
    kind = "a cosine similarity" if bounds == (-1.0, 1.0) else "a probability of the bundle's logistic scorer"
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ConfigError(f"{what} {value!r} is not {kind}: it must be a finite number in [{lo:g}, {hi:g}]")
    return v


def describe_model_file(root: Path, file: str, fmt: str, precision: str) -> ModelFile:
    p = Path(root) / file
    return ModelFile(file=file, format=fmt, precision=precision, sha256=sha256_file(p), size=p.stat().st_size)


def _verify_entry(root: Path, entry) -> None:
    f = root / entry.file
    problem = file_mismatch(f, entry.size, entry.sha256)
    if problem:
        raise ChecksumError(f"{f} {problem}: it is not the file edgeface.json describes")


def describe_aux_file(root: Path, file: str, what: str = "") -> AuxFile:
    p = Path(root) / file
    return AuxFile(file=file, sha256=sha256_file(p), size=p.stat().st_size, what=what)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def _inspect_model(path: Path, fmt: str) -> tuple[InputSpec, int, str]:
    """Input layout, embedding size and precision of a bare model file (documented defaults otherwise)."""
    if fmt == "onnx":
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: not a loadable ONNX model: {exc}") from exc
        shape = sess.get_inputs()[0].shape
        out = sess.get_outputs()[0].shape
        layout = "NHWC" if len(shape) == 4 and shape[-1] == 3 else "NCHW"
        hw = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
        emb = out[-1] if isinstance(out[-1], int) else 128
        ops = {n.op_type for n in _onnx_nodes(path)}
        precision = "int8" if ops & {"QuantizeLinear", "QLinearConv"} else "fp32"
    else:
        from .runtime.litert import load_interpreter

        interp = load_interpreter(path, threads=1)
        d_in = interp.get_input_details()[0]
        d_out = interp.get_output_details()[0]
        shape = list(d_in["shape"])
        layout = "NHWC" if shape[-1] == 3 else "NCHW"
        hw = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
        emb = int(d_out["shape"][-1])
        precision = "int8" if d_in["dtype"].__name__ in ("int8", "uint8") else "fp32"
        if precision == "fp32" and any(t["dtype"].__name__ == "int8" for t in interp.get_tensor_details()):
            precision = "int8"
    size = tuple(int(v) if isinstance(v, int) and v > 0 else 112 for v in hw)
    return InputSpec(size=size, layout=layout), int(emb), precision


def _onnx_nodes(path: Path):
    try:
        import onnx
    except ImportError:  # the device extra has no onnx package: precision then defaults to fp32
        return []
    return onnx.load(str(path), load_external_data=False).graph.node
