"""dlib's ResNet as a first-class edgeface model: ``export --pretrained`` writes a bundle whose alignment (5-point
landmark stage on a YuNet-derived box, 150x150 chip), landmark model, licence and provenance are recorded, and
every path (prepare, eval, enroll, the gate) applies that alignment; its descriptors from YuNet input agree with
face_recognition's on the same photos; the int8 bundle passes the parity gate; ``train --init`` keeps the
unmodified model when fine-tuning does not validate better."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlibkit import dlib_model_or_skip  # noqa: E402

from edgeface.export.quantize import FAST_CANDIDATES  # noqa: E402

torch.set_num_threads(1)

pytestmark = pytest.mark.slow


def _ids(src, dst, names):
    for n in names:
        shutil.copytree(src / n, dst / n)
    return dst


@pytest.fixture(scope="module")
def dlib_files():
    return (dlib_model_or_skip("dlib_face_recognition_resnet_model_v1.dat"),
            dlib_model_or_skip("shape_predictor_5_face_landmarks.dat"))


@pytest.fixture(scope="module")
def orl_split(tmp_path_factory, orl_dir):
    d = tmp_path_factory.mktemp("orl")
    calib = _ids(orl_dir, d / "calib", [f"s{i}" for i in range(1, 26)])
    val = _ids(orl_dir, d / "val", [f"s{i}" for i in range(26, 41)])
    return calib, val


@pytest.fixture(scope="module")
def dlib_bundle(tmp_path_factory, dlib_files, orl_split, yunet_path):
    """export --pretrained dlib-resnet-v1 --int8 (ONNX only: the TFLite path is covered by the parity tests)."""
    from edgeface.export.exporter import ExportOptions, export_bundle

    calib, val = orl_split
    out = tmp_path_factory.mktemp("dlib") / "bundle"
    opts = ExportOptions(out=out, pretrained="dlib-resnet-v1", int8=True, calib=calib, val=val, tflite=False,
                         detector_model=yunet_path, candidates=FAST_CANDIDATES, latency_runs=3, progress=False)
    bundle, report = export_bundle(opts)
    return bundle, report


def test_bundle_records_alignment_landmark_model_licence_and_provenance(dlib_bundle, dlib_files):
    from edgeface.bundle import Bundle
    from edgeface.fileutil import sha256_file
    from edgeface.registry import get_spec

    bundle, _ = dlib_bundle
    meta = Bundle.load(bundle.root).meta  # verifies every file, the landmark model included
    a = meta.align
    assert (a.template, a.crop_size, a.landmarks, a.padding) == ("dlib5", 150, "dlib-shape5", 0.25)
    assert a.landmark_model in meta.files and (bundle.root / meta.files[a.landmark_model].file).is_file()
    assert meta.input.size == (150, 150) and meta.input.color_order == "RGB"
    assert meta.input.mean == (122.782, 117.001, 104.298) and meta.input.std == (256.0, 256.0, 256.0)
    assert "public domain" in meta.licence
    sources = {s["file"]: s["sha256"] for s in meta.provenance["source_files"]}
    for path, name in zip(dlib_files, ("dlib-resnet-v1", "dlib-shape5")):
        assert sources[path.name] == sha256_file(path) == get_spec(name).sha256
    assert meta.provenance["fine_tuning"] is None


def test_a_changed_landmark_model_is_refused(dlib_bundle, tmp_path):
    from edgeface.bundle import Bundle
    from edgeface.errors import ChecksumError

    bundle, _ = dlib_bundle
    copy = tmp_path / "b"
    shutil.copytree(bundle.root, copy)
    lm = copy / bundle.meta.files["landmarks"].file
    data = bytearray(lm.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lm.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        Bundle.load(copy)


def test_int8_bundle_passes_the_parity_gate(dlib_bundle):
    bundle, report = dlib_bundle
    int8 = report["artefacts"]["onnx_int8"]
    assert int8["mean_cosine"] > 0.99 and int8["mean_cosine_to_fp32"] > 0.99
    assert int8["tar_drop_points"] is not None and int8["tar_drop_points"] <= 2.0
    assert bundle.meta.notes["parity"]["degraded"] == []
    assert bundle.default_key() == "onnx_int8"


def test_every_path_applies_the_bundles_alignment(dlib_bundle, orl_split, detector, tmp_path, yunet_path):
    from edgeface.cli import main
    from edgeface.cropcache import load_cache
    from edgeface.errors import EdgefaceError
    from edgeface.evaluate import load_faces
    from edgeface.runtime import open_embedder

    bundle, _ = dlib_bundle
    _, val = orl_split
    emb = open_embedder(bundle)
    assert emb.aligner.size == 150 and emb.aligner.spec.template == "dlib5"
    # prepare --bundle: the cache holds the model's chips and records the alignment
    assert main(["prepare", "--data", str(val), "--out", str(tmp_path / "cache"), "--bundle", str(bundle.root),
                 "--detector-model", str(yunet_path), "--no-progress"]) == 0
    cache = load_cache(tmp_path / "cache")
    assert cache.crops.shape[1:] == (150, 150, 3) and cache.manifest["align"]["template"] == "dlib5"
    faces = load_faces(tmp_path / "cache", identities=["s26", "s27"], aligner=emb.aligner)
    direct = load_faces(val, detector, ["s26", "s27"], progress=False, aligner=emb.aligner)
    np.testing.assert_array_equal(faces.crops, direct.crops)
    # an ArcFace 112 cache is refused for this model: its crops are not what the model expects
    assert main(["prepare", "--data", str(val), "--out", str(tmp_path / "arc"), "--detector-model", str(yunet_path),
                 "--no-progress"]) == 0
    with pytest.raises(EdgefaceError, match="alignment"):
        load_faces(tmp_path / "arc", aligner=emb.aligner)
    # eval on the photos goes through the bundle's alignment and scores well on unseen people
    assert main(["eval", "--model", str(bundle.root), "--data", str(val), "--json", str(tmp_path / "e.json"),
                 "--plot", str(tmp_path / "e.png"), "--detector-model", str(yunet_path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["no_face"] == 0 and report["tar_at_far"]["1e-2"] > 0.9
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_gate_pipeline_crops_like_enrollment(dlib_bundle, orl_split, yunet_path):
    """The one model object: a photo enrolled and the same picture seen as a door frame give the same crop and,
    both with the mirror image, the same embedding."""
    from edgeface.config import DetectorConfig, QualityConfig
    from edgeface.gallery import Gallery
    from edgeface.recognizer import Recognizer

    bundle, _ = dlib_bundle
    _, val = orl_split
    rec = Recognizer.from_bundle(bundle, "onnx_fp32", detector=DetectorConfig(model_path=yunet_path),
                                 quality=QualityConfig(min_face_px=40), live_mirror=True)
    image = rec.read_photo(sorted((val / "s30").iterdir())[0])
    check, emb = rec.enroll_photo(image)
    assert check.ok and check.crop.shape == (150, 150, 3)
    g = Gallery.new(rec.fingerprint, rec.embedding_size)
    g.add("s30", emb[None])
    seen = rec.observe(image)
    assert seen.usable
    np.testing.assert_array_equal(seen.crop, check.crop)
    m = rec.matcher(g).match(seen.embedding)
    assert m.name == "s30" and m.score > 0.9999


def test_mirror_enrollment_is_the_mean_of_both_normalised_embeddings(dlib_bundle, orl_split, detector):
    from edgeface.evaluate import load_faces
    from edgeface.preprocess import l2_normalize
    from edgeface.runtime import open_embedder

    bundle, _ = dlib_bundle
    _, val = orl_split
    emb = open_embedder(bundle, model="onnx_fp32")
    crops = load_faces(val, detector, ["s31"], progress=False, aligner=emb.aligner).crops[:3]
    plain, flipped = emb.embed(crops), emb.embed(crops[:, :, ::-1])
    np.testing.assert_allclose(emb.embed(crops, mirror=True), l2_normalize(plain + flipped), atol=1e-6)
    assert np.all(np.sum(plain * flipped, axis=1) < 0.9999)  # the mirror image really is another view


def test_descriptors_from_yunet_input_agree_with_face_recognition(dlib_bundle, celeba_dir, detector):
    """The same photos through edgeface (YuNet -> mapped box -> our 5 points -> our chip -> ONNX fp32) and through
    face_recognition (dlib HOG -> dlib 5 points -> dlib chip -> dlib's ResNet): the boxes differ, so the chips may
    differ by a pixel here and there, and the descriptors must still say "the same face" by dlib's own rule."""
    face_recognition = pytest.importorskip("face_recognition", reason="face_recognition is the reference here")
    from edgeface.faces import largest_face
    from edgeface.faceset import read_image
    from edgeface.runtime import open_embedder

    bundle, _ = dlib_bundle
    emb = open_embedder(bundle, model="onnx_fp32")
    people = sorted(p for p in celeba_dir.iterdir() if p.is_dir())[::3][:60]
    cos, dist = [], []
    for person in people:
        path = sorted(person.glob("*.jpg"))[0]
        rgb = face_recognition.load_image_file(str(path))
        locs = face_recognition.face_locations(rgb)
        if not locs:
            continue
        theirs = face_recognition.face_encodings(rgb, [max(locs, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))])[0]
        bgr = read_image(path)
        face = largest_face(detector.detect(bgr))
        assert face is not None, path
        ours = emb.embed_raw(emb.aligner.crop(bgr, face)[None])[0]
        cos.append(float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs)))
        dist.append(float(np.linalg.norm(ours - theirs)))
    cos, dist = np.array(cos), np.array(dist)
    assert len(cos) >= 50
    assert np.median(cos) > 0.995 and np.percentile(cos, 10) > 0.98, (np.median(cos), cos.min())
    assert dist.max() < 0.6  # face_recognition's own same-person tolerance


def test_train_init_keeps_the_unmodified_model_when_fine_tuning_does_not_validate_better(dlib_files, orl_dir,
                                                                                         tmp_path, yunet_path):
    from edgeface.cli import main
    from edgeface.export.checkpoint import read_checkpoint
    from edgeface.export.dlib.pretrained import load_pretrained

    data = _ids(orl_dir, tmp_path / "faces", [f"s{i}" for i in range(1, 11)])
    assert main(["prepare", "--data", str(data), "--out", str(tmp_path / "cache"), "--pretrained", "dlib-resnet-v1",
                 "--detector-model", str(yunet_path), "--no-progress"]) == 0
    # lr 0: no step can change the weights, so no step validates better than the start, which must be kept
    assert main(["train", "--init", "dlib-resnet-v1", "--data", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
                 "--lr", "0", "--weight-decay", "0", "--max-steps", "2", "--val-every", "1", "--p", "4", "--k", "2",
                 "--distill", "0.5", "--val-fraction", "0.3", "--threads", "1", "--no-progress"]) == 0
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert history[0]["step"] == 0 and [h["step"] for h in history] == [0, 1, 2]
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    info = best["info"]
    assert info["best_step"] == 0 and info["step"] == 0
    assert info["align"]["template"] == "dlib5" and info["provenance"]["fine_tuning"] is None
    start = load_pretrained("dlib-resnet-v1").model.state_dict()
    for k, v in best["state_dict"].items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=0)
