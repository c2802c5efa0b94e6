"""Training checkpoints: weights plus everything needed to rebuild, export and trace the model.

``info`` always holds ``model_config`` (for :func:`~edgeface.export.model.build_model`), ``input`` (the
InputSpec the network was trained with), and whatever the trainer adds: ``manifest_sha256`` of the data cache,
``metrics``, ``epoch``, ``optimizer`` / ``scheduler`` state for ``--resume``. Written atomically, so an
interrupted save never leaves a half checkpoint where the last good one was.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from edgeface.bundle import DEFAULT_INPUT
from edgeface.errors import ModelError
from edgeface.fileutil import atomic_write_bytes

from .model import build_model, full_config

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, model: torch.nn.Module, model_config: dict, **info) -> Path:
    path = Path(path)
    info.setdefault("input", DEFAULT_INPUT.model_dump(mode="json"))
    doc = {"checkpoint_version": CHECKPOINT_VERSION, "state_dict": model.state_dict(),
           "info": {**info, "model_config": full_config(model_config)}}
    buf = io.BytesIO()
    torch.save(doc, buf)
    atomic_write_bytes(path, buf.getvalue(), mode=0o644)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict (weights, info); raises ModelError on anything that is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        # weights_only=False: info holds plain dicts of optimizer state; checkpoints are our own files
        doc = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several unrelated types for a corrupt file
        raise ModelError(f"{path}: not a readable checkpoint: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("checkpoint_version") != CHECKPOINT_VERSION or "state_dict" not in doc:
        raise ModelError(f"{path}: not an edgeface checkpoint (version {CHECKPOINT_VERSION})")
    return doc


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on the CPU, info)."""
    doc = read_checkpoint(path)
    info = doc["info"]
    try:
        model = build_model(info["model_config"])
        model.load_state_dict(doc["state_dict"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: weights do not fit the recorded model config: {exc}") from exc
    model.eval()
    return model, info


def checkpoint_alignment(path: str | Path, info: dict, stage: Path):
    """(align spec or None, auxiliary files copied into ``stage``, licence, provenance) of a checkpoint.

    A checkpoint that records ``align`` (e.g. a fine-tuned dlib ResNet) keeps its landmark model beside it
    (``info["landmark_file"]``, relative to the checkpoint's folder); it is copied into the bundle."""
    import shutil

    from edgeface.bundle import AlignSpec, describe_aux_file

    align = AlignSpec.model_validate(info["align"]) if info.get("align") else None
    files = {}
    if align is not None and align.landmark_model:
        src = Path(path).parent / str(info.get("landmark_file", ""))
        if not info.get("landmark_file") or not src.is_file():
            raise ModelError(f"{path}: the checkpoint needs its landmark model {src}, which is missing")
        shutil.copyfile(src, Path(stage) / src.name)
        files[align.landmark_model] = describe_aux_file(Path(stage), src.name, "landmark model of the checkpoint")
    return align, files, info.get("licence"), dict(info.get("provenance") or {})


def checkpoint_scorer(info: dict, choice: str = "auto"):
    """The logistic unit of a pair-trained checkpoint as a bundle scorer (``choice`` auto/logistic), or None for
    cosine (``choice`` cosine, or a triplet-trained checkpoint with ``auto``)."""
    from edgeface.bundle import ScorerSpec

    tc = info.get("train_config") or {}
    if choice == "cosine" or (choice == "auto" and tc.get("loss") != "pair"):
        return None
    if tc.get("loss") != "pair":
        raise ModelError("--scorer logistic: this checkpoint was not trained with the pair loss; it has no logistic unit")
    state = info.get("loss_state") or {}
    try:
        w = state["classifier.weight"].reshape(-1).tolist()
        b = float(state["classifier.bias"].reshape(-1)[0])
    except (KeyError, AttributeError) as exc:
        raise ModelError(f"the checkpoint's pair loss state lacks its logistic unit ({exc})") from None
    return ScorerSpec(kind="logistic", form=tc.get("pair_form", "abs"), weight=w, bias=b)
