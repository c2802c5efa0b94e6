"""dlib's public-domain face-recognition ResNet as an edgeface model source: weights, preprocessing, alignment,
landmark stage, licence and provenance in one place, shared by ``export --pretrained`` and ``train --init``.

The ResNet expects dlib's 150x150 chip (``get_face_chip``, padding 0.25) cut around the points of dlib's 5-point
shape predictor, RGB, (pixel - (122.782, 117.001, 104.298)) / 256. The bundle carries the shape predictor,
converted to a numpy ``.npz`` (:mod:`.shape_predictor_dat`), so the door needs neither dlib nor the ``.dat``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeface.alignment import DLIB_BOX_MAP
from edgeface.bundle import AlignSpec, AuxFile, InputSpec, describe_aux_file
from edgeface.fileutil import sha256_file

#: names accepted by ``--pretrained`` / ``--init``
PRETRAINED = ("dlib-resnet-v1",)
LANDMARK_KEY = "landmarks"
LANDMARK_FILE = "landmarks_dlib5.npz"
LICENCE = ("public domain: dlib_face_recognition_resnet_model_v1.dat and shape_predictor_5_face_landmarks.dat "
           "(Davis King, dlib-models README: 'anyone can do whatever they want with these model files')")


def input_spec() -> InputSpec:
    from .resnet import CHIP_SIZE, DLIB_RESNET_MEAN, DLIB_RESNET_STD

    return InputSpec(size=(CHIP_SIZE, CHIP_SIZE), color_order="RGB", layout="NCHW", mean=DLIB_RESNET_MEAN,
                     std=DLIB_RESNET_STD)


def align_spec() -> AlignSpec:
    from .resnet import CHIP_SIZE

    return AlignSpec(template="dlib5", crop_size=CHIP_SIZE, landmarks="dlib-shape5", landmark_model=LANDMARK_KEY,
                     padding=0.25, box_map=DLIB_BOX_MAP)


@dataclass
class Pretrained:
    name: str
    model: object  # DlibResNet (torch.nn.Module), eval mode
    resnet_dat: Path
    shape_dat: Path
    spec: InputSpec = field(default_factory=input_spec)
    align: AlignSpec = field(default_factory=align_spec)
    licence: str = LICENCE

    @property
    def provenance(self) -> dict:
        return {"pretrained": self.name,
                "source_files": [{"file": self.resnet_dat.name, "sha256": sha256_file(self.resnet_dat),
                                  "size": self.resnet_dat.stat().st_size, "licence": "public domain"},
                                 {"file": self.shape_dat.name, "sha256": sha256_file(self.shape_dat),
                                  "size": self.shape_dat.stat().st_size, "licence": "public domain"}],
                "converted_by": "edgeface.export.dlib (own .dat reader; dlib is not run)",
                "fine_tuning": None}

    def write_landmarks(self, root: str | Path) -> dict[str, AuxFile]:
        """Convert the shape predictor into ``root/landmarks_dlib5.npz``; the bundle's ``files`` entry for it."""
        from .shape_predictor_dat import convert_shape_predictor

        convert_shape_predictor(self.shape_dat, Path(root) / LANDMARK_FILE)
        return {LANDMARK_KEY: describe_aux_file(Path(root), LANDMARK_FILE,
                                                "dlib 5-point shape predictor (numpy arrays converted from "
                                                f"{self.shape_dat.name})")}


def load_pretrained(name: str, resnet_path: str | Path | None = None, shape_path: str | Path | None = None,
                    allow_download: bool = True) -> Pretrained:
    """The named pretrained model, its ``.dat`` files found (and verified) through the model registry."""
    from edgeface.errors import ModelError
    from edgeface.registry import resolve_dlib_model

    from .resnet import load_dlib_resnet

    if name not in PRETRAINED:
        raise ModelError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    resnet_dat = resolve_dlib_model("dlib-resnet-v1", resnet_path, allow_download=allow_download)
    shape_dat = resolve_dlib_model("dlib-shape5", shape_path, allow_download=allow_download)
    return Pretrained(name, load_dlib_resnet(resnet_dat), Path(resnet_dat), Path(shape_dat))
