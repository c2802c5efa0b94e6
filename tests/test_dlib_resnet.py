"""dlib's face-recognition ResNet read from its .dat file by edgeface's own reader and ported to torch / ONNX /
TFLite, against dlib itself (dlib-bin, a test reference only) on real faces; bad files refused; and dlib's
serialization primitives on hand-made bytes."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import pytest

from edgeface import registry
from edgeface.errors import ChecksumError, DlibFormatError, ModelError
from edgeface.export.dlib.serialize import DlibReader

# -- helpers ------------------------------------------------------------------------------------------------------


def dlib_int(value: int) -> bytes:
    """dlib's integer encoding (ser_helper::pack_int), written from its description, for hand-made inputs."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def dlib_string(text: str) -> bytes:
    return dlib_int(len(text)) + text.encode("latin-1")


def dlib_float(value: float, digits: int = 53) -> bytes:
    """float_details::convert_from_T for finite values: frexp mantissa scaled to ``digits`` bits, low zero bytes
    shifted off; then mantissa, exponent."""
    m, e = math.frexp(value)
    mantissa, exponent = int(m * (1 << digits)), e - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return dlib_int(mantissa) + dlib_int(exponent)


# -- serialization primitives -----------------------------------------------------------------------------------


def test_integers_control_byte_sign_and_little_endian():
    r = DlibReader(bytes.fromhex("0100" "8105" "023412" "88ffffffffffffff7f" "0101"), "ints")
    assert r.int() == 0
    assert r.int() == -5
    assert r.int() == 0x1234
    assert r.int() == -(2**63 - 1)
    assert r.uint() == 1
    r.expect_end()
    values = [0, 1, -1, 127, 128, -255, 256, 65535, -65536, 2**31 - 1, -(2**31), 2**62, -(2**63 - 1)]
    r = DlibReader(b"".join(dlib_int(v) for v in values), "round trip")
    assert [r.int() for _ in values] == values


@pytest.mark.parametrize("data, message", [
    (b"", "truncated"),
    (bytes.fromhex("00"), "says 0 bytes"),  # dlib: a size of 0 is an error
    (bytes.fromhex("09" + "00" * 9), "says 9 bytes"),
    (bytes.fromhex("0312"), "truncated"),
    (bytes.fromhex("2101"), "reserved bits"),
])
def test_bad_integers_name_the_offset(data, message):
    r = DlibReader(b"\x01\x07" + data, "bad.dat")
    r.int()
    with pytest.raises(DlibFormatError, match=rf"bad\.dat: .*{message}.* at byte offset 2"):
        r.int()


def test_unsigned_refuses_a_sign_and_int_respects_its_size():
    with pytest.raises(DlibFormatError, match="negative sign on an unsigned"):
        DlibReader(bytes.fromhex("8101")).uint()
    with pytest.raises(DlibFormatError, match=r"1\.\.2 allowed"):
        DlibReader(bytes.fromhex("03010203")).int(max_bytes=2)


def test_strings_bools_and_versions():
    r = DlibReader(dlib_string("con_4") + dlib_string("") + b"10" + dlib_string("relu_2"), "s")
    assert r.string() == "con_4"
    assert r.string() == ""
    assert r.bool() is True and r.bool() is False
    with pytest.raises(DlibFormatError, match=r"expected version tag 'affine_2', found 'relu_2' at byte offset 11"):
        r.expect_string("affine_2")
    with pytest.raises(DlibFormatError, match="neither '0' nor '1'"):
        DlibReader(b"x").bool()
    with pytest.raises(DlibFormatError, match="truncated: string needs 5 bytes, 2 left"):
        DlibReader(dlib_int(5) + b"ab").string()


def test_float_scalars_mantissa_then_exponent_and_special_exponents():
    r = DlibReader(dlib_int(3) + dlib_int(-1) + dlib_int(-5) + dlib_int(2) + dlib_int(0) + dlib_int(0), "f")
    assert r.float_scalar() == 1.5
    assert r.float_scalar() == -20.0
    assert r.float_scalar() == 0.0
    specials = b"".join(dlib_int(0) + dlib_int(e) for e in (32000, 32001, 32002))
    r = DlibReader(specials)
    assert r.float_scalar() == math.inf
    assert r.float_scalar() == -math.inf
    assert math.isnan(r.float_scalar())
    r.expect_end()
    for v in (0.04, 0.6, 122.782, -1e-300, 1e300, 2.0**-1074):
        assert DlibReader(dlib_float(v)).float_scalar() == v
    # read into a C++ float: (float) mantissa, then ldexp in float
    odd = dlib_int(2**24 + 1) + dlib_int(0)
    assert DlibReader(odd).float_scalar() == 2**24 + 1
    assert DlibReader(odd).float_scalar(float32=True) == 2**24
    assert DlibReader(dlib_int(1) + dlib_int(200)).float_scalar(float32=True) == math.inf
    with pytest.raises(DlibFormatError, match="old ASCII float format"):
        DlibReader(b"1.5 ").float_scalar()


def test_tensors_and_alias_tensors():
    values = np.array([1.5, -2.0, 0.25, 3.0, 7.0, -0.5], "<f4")
    data = dlib_int(2) + b"".join(dlib_int(d) for d in (1, 3, 2, 1)) + values.tobytes()
    data += dlib_int(1) + b"".join(dlib_int(d) for d in (4, 5, 6, 7))
    r = DlibReader(data, "t")
    t = r.tensor()
    assert t.dtype == np.float32 and t.shape == (1, 3, 2, 1)
    assert np.array_equal(t.reshape(-1), values)
    assert r.alias_tensor() == (4, 5, 6, 7)
    r.expect_end()
    with pytest.raises(DlibFormatError, match="version 1, expected 2"):
        DlibReader(data[-9:]).tensor()
    with pytest.raises(DlibFormatError, match=r"truncated: data of tensor \(1, 3, 2, 1\) needs 24 bytes, 23 left"):
        DlibReader(data[:-11]).tensor()
    with pytest.raises(DlibFormatError, match="negative shape"):
        DlibReader(dlib_int(2) + b"".join(dlib_int(d) for d in (1, -3, 2, 1))).tensor()
    with pytest.raises(DlibFormatError, match=r"2 unexpected bytes after the end of the data at byte offset 2"):
        r = DlibReader(dlib_int(9) + b"xy")
        r.int()
        r.expect_end()


# -- the real model files -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models_dir() -> Path:
    found = registry.dlib_package_models_dir()
    if found is None or not (found / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        pytest.skip("face_recognition_models is not installed (pip install face_recognition_models)")
    return found


@pytest.fixture(scope="module")
def resnet_file(models_dir) -> Path:
    return registry.resolve_dlib_model("dlib-resnet-v1", allow_download=False)


@pytest.fixture(scope="module")
def resnet_bytes(resnet_file) -> bytes:
    return resnet_file.read_bytes()


@pytest.fixture(scope="module")
def resnet_dat(resnet_file):
    from edgeface.export.dlib.resnet_dat import load_resnet_dat

    return load_resnet_dat(resnet_file)


@pytest.fixture(scope="module")
def resnet(resnet_dat):
    pytest.importorskip("torch")
    from edgeface.export.dlib.resnet import load_dlib_resnet

    return load_dlib_resnet(resnet_dat)


def _face_images(folder: Path, count: int, pattern: str) -> list[Path]:
    files = sorted(folder.glob(pattern))
    random.Random(11).shuffle(files)
    return files[:count]


@pytest.fixture(scope="module")
def dlib_faces(models_dir, request):
    """dlib's own chips and descriptors of real faces: HOG detector box -> 5-point predictor -> get_face_chip
    (150, padding 0.25) -> compute_face_descriptor. celeba-loose and ORL, at least 50 faces."""
    dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin, the parity reference) is not installed")
    import cv2

    orl = request.getfixturevalue("orl_dir")
    celeba = request.getfixturevalue("celeba_dir")
    detector = dlib.get_frontal_face_detector()
    shape5 = dlib.shape_predictor(str(models_dir / "shape_predictor_5_face_landmarks.dat"))
    facerec = dlib.face_recognition_model_v1(str(models_dir / "dlib_face_recognition_resnet_model_v1.dat"))
    chips, descriptors, sources = [], [], []
    for path in _face_images(celeba, 45, "*/*.jpg") + _face_images(orl, 20, "*/*.png"):
        rgb = np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        boxes = detector(rgb, 1)
        if not boxes:
            continue
        chip = dlib.get_face_chip(rgb, shape5(rgb, boxes[0]), size=150, padding=0.25)
        chips.append(chip)
        descriptors.append(np.asarray(facerec.compute_face_descriptor(chip), np.float32))
        sources.append(path.parent.parent.name)
    assert len(chips) >= 50 and {"orl", "celeba-loose"} <= set(sources), (len(chips), set(sources))
    from edgeface.export.dlib.resnet import preprocess_chips

    return preprocess_chips(np.stack(chips)), np.stack(descriptors)


def _max_diff(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max())


def test_the_file_is_read_to_its_end_with_anet_types_layers(resnet_dat, resnet_bytes):
    from collections import Counter

    from edgeface.export.dlib import resnet_dat as rd

    kinds = Counter(type(layer).__name__ + getattr(layer, "kind", "") for layer in resnet_dat.layers)
    assert kinds == {"Conv": 29, "Affine": 29, "Relu": 29, "Poolmax": 1, "Poolavg": 5, "AddPrev": 14, "Tag": 18,
                     "Skip": 4, "FcNoBias": 1}
    assert resnet_dat.parameter_count == rd.PARAMETER_COUNT == 5_614_592
    first, fc = resnet_dat.layers[0], resnet_dat.layers[-1]
    assert first.filters.shape == (32, 3, 7, 7) and (first.stride, first.padding) == (2, 0)
    assert fc.weights.shape == (256, 128)
    assert resnet_dat.mean == tuple(float(np.float32(v)) for v in (122.782, 117.001, 104.298))
    assert (resnet_dat.loss_margin, resnet_dat.loss_distance_threshold) == (float(np.float32(0.04)),
                                                                             float(np.float32(0.6)))
    assert resnet_dat.input_size == (150, 150)
    # the reader consumed every byte: one more byte is refused
    with pytest.raises(DlibFormatError, match=f"1 unexpected bytes .* at byte offset {len(resnet_bytes)}"):
        rd.read_resnet_dat(resnet_bytes + b"\x00", "longer.dat")


def test_the_port_has_dlibs_parameter_count_and_constants(resnet):
    from edgeface.export.dlib import resnet as port

    assert resnet.parameter_count() == port.DLIB_RESNET_PARAMETERS == 5_614_592
    assert (port.DLIB_RESNET_MEAN, port.DLIB_RESNET_STD, port.CHIP_SIZE) == (
        (122.782, 117.001, 104.298), (256.0, 256.0, 256.0), 150)
    assert not resnet.training


@pytest.mark.slow
def test_torch_forward_matches_dlib_on_real_faces(resnet, dlib_faces):
    import torch

    x, want = dlib_faces
    with torch.no_grad():
        got = resnet(torch.from_numpy(x)).numpy()
        folded = resnet.fold_affine()(torch.from_numpy(x)).numpy()
    assert _max_diff(got, want) <= 1e-4
    assert _max_diff(folded, want) <= 1e-4
    # the raw fc output, not normalised (dlib compares by L2 distance, threshold 0.6)
    assert 1.0 < np.linalg.norm(got, axis=1).min() and np.linalg.norm(got, axis=1).max() < 2.0


@pytest.mark.slow
def test_onnx_fp32_matches_dlib_on_real_faces(resnet, dlib_faces, tmp_path_factory):
    ort = pytest.importorskip("onnxruntime")
    from edgeface.export.to_onnx import export_torch

    path = tmp_path_factory.mktemp("dlib_onnx") / "dlib_resnet.onnx"
    info = export_torch(resnet, path, size=(150, 150))
    assert info.embedding_size == 128 and info.dynamic_batch
    x, want = dlib_faces
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {info.input_name: x})[0]
    assert _max_diff(got, want) <= 1e-4


@pytest.mark.slow
def test_tflite_fp32_matches_dlib_on_real_faces(resnet, dlib_faces, tmp_path_factory):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    pytest.importorskip("litert_torch", reason="litert-torch (the train extra) is not installed")
    from edgeface.export.to_tflite import export_fp32

    path = export_fp32(resnet, tmp_path_factory.mktemp("dlib_tflite") / "dlib_resnet.tflite", shape=(1, 3, 150, 150))
    interp = litert.Interpreter(str(path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x, want = dlib_faces
    got = []
    for face in x:
        interp.set_tensor(inp["index"], face[None])
        interp.invoke()
        got.append(interp.get_tensor(out["index"])[0].copy())
    assert _max_diff(np.stack(got), want) <= 1e-4


# -- bad files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 40, 290, 320, 10_000, 5_000_000, 11_233_033, 22_466_065])
def test_a_truncated_file_is_refused_naming_the_offset(resnet_bytes, cut):
    from edgeface.export.dlib.resnet_dat import read_resnet_dat

    with pytest.raises(DlibFormatError, match=r"cut\.dat: .*truncated.* at byte offset \d+"):
        read_resnet_dat(resnet_bytes[:cut], "cut.dat")


def test_a_corrupt_record_is_refused(resnet_bytes):
    from edgeface.export.dlib.resnet_dat import read_resnet_dat

    data = bytearray(resnet_bytes)
    at = data.index(b"\x01\x07affine_")  # the first affine record: its length, then the name
    data[at + 8] = ord("x")
    with pytest.raises(DlibFormatError, match=rf"record 'affinex', expected 'affine_' or 'affine_2' at byte offset {at}"):
        read_resnet_dat(bytes(data), "corrupt.dat")


def test_other_dlib_files_and_random_bytes_are_not_the_resnet(models_dir, tmp_path):
    from edgeface.export.dlib.resnet import load_dlib_resnet
    from edgeface.export.dlib.resnet_dat import load_resnet_dat

    for name in ("mmod_human_face_detector.dat", "shape_predictor_5_face_landmarks.dat"):
        if not (models_dir / name).is_file():
            continue
        with pytest.raises(DlibFormatError, match="not dlib.s face-recognition ResNet v1, or a damaged copy"):
            load_resnet_dat(models_dir / name)
    noise = tmp_path / "noise.dat"
    noise.write_bytes(np.random.default_rng(3).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes())
    with pytest.raises(DlibFormatError):
        load_resnet_dat(noise)
    pytest.importorskip("torch")
    with pytest.raises(ModelError):
        load_dlib_resnet(noise)


def test_the_registry_refuses_a_wrong_file_as_the_resnet(models_dir, resnet_bytes, tmp_path):
    tampered = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    data = bytearray(resnet_bytes)
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256 .* expected 55533b28"):
        registry.resolve_dlib_model("dlib-resnet-v1", local_path=tampered)
    with pytest.raises(ChecksumError, match="bytes, expected 22466066"):
        registry.resolve_dlib_model("dlib-resnet-v1", local_path=models_dir / "shape_predictor_5_face_landmarks.dat")


def test_the_68_point_model_is_refused_everywhere(models_dir, tmp_path):
    real = models_dir / "shape_predictor_68_face_landmarks.dat"
    if not real.is_file():
        pytest.skip("face_recognition_models ships no shape_predictor_68_face_landmarks.dat here")
    from edgeface.export.dlib.resnet_dat import load_resnet_dat

    renamed = tmp_path / "landmarks.dat"  # the same bytes under another name: refused by its sha256
    os.symlink(real, renamed)
    for path in (real, renamed):
        for refuse in (lambda p: registry.resolve_dlib_model("dlib-shape5", local_path=p),
                       lambda p: registry.resolve_dlib_model("dlib-resnet-v1", local_path=p),
                       lambda p: registry.resolve_model("yunet", p),
                       load_resnet_dat):
            with pytest.raises(ModelError, match=r"iBUG 300-W\) forbids commercial use"):
                refuse(path)
