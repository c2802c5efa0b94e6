"""``edgeface export``: calibration faces, ONNX export / import, int8 quantization, TFLite, bundle and parity
report, on a tiny network and real aligned ORL faces. One module-scoped export builds the full bundle (four
files); the tests read it. The reference-model export is in test_export_reference.py (slow)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the train extra (torch)")
onnx = pytest.importorskip("onnx", reason="export needs the train extra (onnx)")

from edgeface.bundle import Bundle  # noqa: E402
from edgeface.errors import EdgefaceError  # noqa: E402
from edgeface.export import calib, report, to_onnx  # noqa: E402
from edgeface.export.quantize import FAST_CANDIDATES  # noqa: E402
from edgeface.runtime import open_embedder  # noqa: E402

from exportkit import orl_faces, tiny_embedder  # noqa: E402

torch.set_num_threads(1)


def _copy_ids(orl_dir, dst, names):
    for n in names:
        shutil.copytree(orl_dir / n, dst / n)
    return dst


@pytest.fixture(scope="module")
def faces(detector, orl_dir):
    crops, labels = orl_faces(detector, orl_dir, identities=12, per_identity=10)
    return calib.FaceSet(crops, labels, "orl")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    to_onnx.export_torch(tiny_embedder(), path)
    return path


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory, tiny_onnx, orl_dir, yunet_path):
    """The full export of the tiny network (imported from ONNX) with --int8, calibrated on 10 ORL people and
    validated on 20 others."""
    from edgeface.export.exporter import ExportOptions, export_bundle

    d = tmp_path_factory.mktemp("export")
    calib_dir = _copy_ids(orl_dir, d / "calib", [f"s{i}" for i in range(1, 11)])
    val_dir = _copy_ids(orl_dir, d / "val", [f"s{i}" for i in range(21, 41)])
    opts = ExportOptions(out=d / "bundle", onnx=tiny_onnx, int8=True, calib=calib_dir, val=val_dir,
                         detector_model=yunet_path, min_calib=40, n_calib=48, n_probe=24,
                         candidates=FAST_CANDIDATES, latency_runs=3, progress=False)
    bundle, rep = export_bundle(opts)
    return bundle, rep, opts


# -- calibration faces ---------------------------------------------------------------------------------------

def test_pick_calibration_is_disjoint_spread_and_refuses_too_few(faces):
    crops, probe = calib.pick_calibration(faces, n_calib=48, n_probe=24, min_crops=40)
    assert crops.shape == (48, 112, 112, 3) and probe.shape == (24, 112, 112, 3)
    seen = {c.tobytes() for c in crops}
    assert not any(p.tobytes() in seen for p in probe)
    # round robin: 48 crops of 12 people = 4 each
    idx = [int(np.flatnonzero((faces.crops == c).all(axis=(1, 2, 3)))[0]) for c in crops]
    _, counts = np.unique(faces.labels[idx], return_counts=True)
    assert counts.min() == counts.max() == 4
    with pytest.raises(EdgefaceError, match="at least 200"):
        calib.pick_calibration(faces)  # 120 faces < the CLI minimum


def test_split_holds_out_whole_identities(faces):
    from edgeface.cropcache import split_identities

    cal, val = calib.split_calib_val(faces)
    assert set(cal.identities).isdisjoint(val.identities)
    assert val.identities == split_identities(faces.identities, 0.2, 0)[1]
    cal2, val2 = calib.split_calib_val(faces, ["s1", "s2", "s3"])
    assert val2.identities == ["s1", "s2", "s3"] and len(cal2) + len(val2) == len(faces)


def test_flat_folder_is_calibration_only(tmp_path, detector, orl_dir):
    for i, p in enumerate(sorted((orl_dir / "s5").iterdir())[:4]):
        shutil.copy(p, tmp_path / f"face{i}{p.suffix}")
    fs = calib.load_faces(tmp_path, detector, progress=False)
    assert len(fs) == 4 and fs.flat
    assert calib.split_calib_val(fs) == (fs, None)


# -- ONNX -----------------------------------------------------------------------------------------------------

def test_torch_export_is_one_checked_file_with_dynamic_batch(tiny_onnx):
    model = onnx.load(str(tiny_onnx))
    assert to_onnx.default_opset(model) >= 17
    onnx.checker.check_model(model, full_check=True)
    assert sorted(p.name for p in tiny_onnx.parent.iterdir()) == ["tiny.onnx"]  # no external data file
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 3, 112, 112)).astype(np.float32)
    with torch.no_grad():
        want = tiny_embedder()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], want, atol=1e-4)


def _opset12_model(path):
    """An external-style model: opset 12, batch fixed at 1, a Shape->Gather->Concat->Reshape flatten."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    ax0 = numpy_helper.from_array(np.array(0, np.int64), "ax0")
    rest = numpy_helper.from_array(np.array([-1], np.int64), "rest")
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], strides=[4, 4], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c"], ["r"], min=0.0, max=6.0),  # opset-6 style Clip (attributes)
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Shape", ["g"], ["s"]),
        helper.make_node("Gather", ["s", "ax0"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
        helper.make_node("Concat", ["n1", "rest"], ["shape"], axis=0),
        helper.make_node("Reshape", ["g", "shape"], ["emb"]),
    ]
    graph = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("emb", TensorProto.FLOAT, [1, 8])], [w, ax0, rest])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def test_import_upgrades_opset_and_frees_the_batch(tmp_path):
    import onnxruntime as ort

    src = _opset12_model(tmp_path / "ext.onnx")
    info = to_onnx.import_onnx(src, tmp_path / "model.onnx")
    assert info.source_opset == 10 and info.opset >= 17 and info.dynamic_batch and info.embedding_size == 8
    x = np.random.default_rng(1).standard_normal((1, 3, 112, 112)).astype(np.float32)
    want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], want, atol=1e-5)
    assert sess.run(None, {"input": np.repeat(x, 3, axis=0)})[0].shape == (3, 8)


def test_import_rejects_a_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgefaceError, match="cannot read it as ONNX"):
        to_onnx.import_onnx(bad, tmp_path / "model.onnx")


def test_onnx_to_torch_reproduces_an_external_graph(tmp_path):
    from edgeface.export.to_tflite import onnx_to_torch

    src = to_onnx.import_onnx(_opset12_model(tmp_path / "ext.onnx"), tmp_path / "model.onnx").path
    module = onnx_to_torch(src)  # raises unless it matches onnxruntime
    exported = torch.export.export(module, (torch.zeros(1, 3, 112, 112),))  # what litert-torch needs
    assert exported is not None


# -- the full bundle ------------------------------------------------------------------------------------------

def test_bundle_has_four_verified_files_that_run_in_the_core_runtimes(tiny_bundle, faces):
    bundle, _, _ = tiny_bundle
    assert set(bundle.meta.models) == {"onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"}
    assert bundle.meta.source == "imported" and bundle.meta.embedding_size == 16
    Bundle.load(bundle.root)  # sha256 and size of every file
    ref = open_embedder(bundle, model="onnx_fp32").embed(faces.crops[:20])
    for key in bundle.meta.models:
        emb = open_embedder(bundle, model=key).embed(faces.crops[:20])
        assert emb.shape == (20, 16)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
        assert np.mean(np.sum(emb * ref, axis=1)) > 0.95, key


def test_tflite_layout_matches_the_bundle_input_spec(tiny_bundle):
    from ai_edge_litert.interpreter import Interpreter

    bundle, _, _ = tiny_bundle
    assert bundle.meta.input.layout == "NCHW"
    for key in ("tflite_fp32", "tflite_int8"):
        interp = Interpreter(model_path=str(bundle.path_of(key)))
        assert list(interp.get_input_details()[0]["shape"]) == [1, 3, 112, 112]
    d = Interpreter(model_path=str(bundle.path_of("tflite_int8"))).get_input_details()[0]
    assert d["dtype"] == np.int8 and d["quantization"][0] > 0


def test_int8_onnx_is_qdq_with_per_channel_weights_and_records_its_recipe(tiny_bundle):
    bundle, _, opts = tiny_bundle
    model = onnx.load(str(bundle.path_of("onnx_int8")))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    per_channel = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and inits.get(n.input[1]) is not None
                   and inits[n.input[1]].ndim == 1 and inits[n.input[1]].size > 1]
    assert per_channel, "no per-channel weight scales"
    notes = bundle.meta.notes["onnx_int8"]
    assert notes["chosen"] in {r.name for r in opts.candidates}
    assert len(notes["candidates"]) == len(opts.candidates)
    assert all(0 < c["mean_cosine"] <= 1.0001 for c in notes["candidates"])
    measured = notes["latency_measured_with"]  # which runtime and threads the latencies are from
    assert measured["runtime"].startswith("onnxruntime ") and measured["threads"] == 1
    assert bundle.meta.notes["calibration"]["crops"] == 48


def test_fp32_onnx_in_the_bundle_keeps_dynamic_batch(tiny_bundle):
    bundle, _, _ = tiny_bundle
    model = onnx.load(str(bundle.path_of("onnx_fp32")))
    assert to_onnx.default_opset(model) >= 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param


def test_report_measures_every_artefact(tiny_bundle):
    bundle, rep, _ = tiny_bundle
    on_disk = json.loads((bundle.root / "report.json").read_text())
    assert on_disk["artefacts"].keys() == rep["artefacts"].keys() == bundle.meta.models.keys()
    assert on_disk["identities"] == 20 and on_disk["reference"] == "source onnx"
    for key, row in on_disk["artefacts"].items():
        assert row["size_bytes"] == bundle.model(key).size
        assert -1 <= row["min_cosine"] <= row["mean_cosine"] <= 1.0001
        assert row["latency_ms"]["1"] > 0 and row["latency_ms"]["2"] > 0
        assert row["tar_1e-3"] is not None and "tar_drop_points" in row and 0 <= row["eer"] <= 1
    assert on_disk["artefacts"]["onnx_fp32"]["mean_cosine"] > 0.9999  # the imported file is the source graph
    assert "QLinearConv" in on_disk["artefacts"]["onnx_int8"]["ops"]["int"]
    assert "CONV_2D" in on_disk["artefacts"]["tflite_int8"]["ops"]["int"]
    assert "tar_drop_vs_fp32_points" in on_disk["artefacts"]["tflite_int8"]
    assert (bundle.root / "report.png").stat().st_size > 0


def test_parity_gate_flags_low_cosine_and_large_tar_drop(tiny_bundle):
    _, rep, _ = tiny_bundle
    assert report.problems(rep) == []
    bad = json.loads(json.dumps({k: v for k, v in rep.items() if k != "_scores"}))
    bad["artefacts"]["onnx_int8"]["mean_cosine"] = 0.97
    bad["artefacts"]["tflite_int8"]["tar_drop_points"] = 2.5
    msgs = report.problems(bad)
    assert len(msgs) == 2 and "onnx_int8" in msgs[0] and "tflite_int8" in msgs[1]
    assert "onnx_fp32" not in report.table(rep).splitlines()[0]


def test_degraded_export_fails_clearly_and_is_kept_aside(tmp_path, tiny_onnx, tiny_bundle, monkeypatch):
    """A gate the int8 model cannot meet: no bundle at --out, the rejected one kept with its report."""
    from edgeface.export.exporter import export_bundle

    _, _, opts = tiny_bundle
    monkeypatch.setattr(report, "MIN_MEAN_COSINE", 1.01)
    opts = type(opts)(**{**opts.__dict__, "out": tmp_path / "b", "tflite": False})
    with pytest.raises(EdgefaceError, match="degraded") as err:
        export_bundle(opts)
    assert "--allow-degraded" in str(err.value)
    assert not (tmp_path / "b").exists()
    assert (tmp_path / "b.rejected" / "report.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    opts.allow_degraded = True
    bundle, _ = export_bundle(opts)
    assert set(bundle.meta.models) == {"onnx_fp32", "onnx_int8"}
    assert bundle.meta.notes["parity"]["degraded"]


# -- command line ---------------------------------------------------------------------------------------------

def test_cli_refuses_int8_without_faces_and_too_few_faces(tmp_path, tiny_onnx, orl_dir, yunet_path, capsys):
    from edgeface.cli import main

    assert main(["export", "--onnx", str(tiny_onnx), "--out", str(tmp_path / "a"), "--int8"]) == 1
    assert "--int8 needs --calib" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tiny_onnx), "--out", str(tmp_path / "a"), "--int8", "--calib",
                 str(orl_dir), "--calib-crops", "50"]) == 1
    assert "at least 200" in capsys.readouterr().err
    few = _copy_ids(orl_dir, tmp_path / "few", [f"s{i}" for i in range(1, 16)])  # 150 photos
    assert main(["export", "--onnx", str(tiny_onnx), "--out", str(tmp_path / "b"), "--int8", "--no-tflite",
                 "--no-progress", "--calib", str(few), "--detector-model", str(yunet_path)]) == 1
    err = capsys.readouterr().err
    assert "at least 200 are needed" in err and "aligned face crops" in err
    assert not (tmp_path / "b").exists()


# -- tflite-runtime 2.14 (older devices) ----------------------------------------------------------------------

def test_tflite_runtime_2_14_agrees_with_ai_edge_litert(tiny_bundle, faces, tmp_path):
    """tflite-runtime needs numpy<2, so it runs in its own venv (tests/tflite_runtime_env.sh makes it, or the
    test skips) through the same edgeface.runtime code; embeddings must match LiteRT's."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = subprocess.run(["bash", str(root / "tests" / "tflite_runtime_env.sh")], capture_output=True, text=True,
                         cwd=root)
    if env.returncode != 0:
        pytest.skip(f"no tflite-runtime 2.14 environment here: {env.stderr.strip()[-300:]}")
    python = root / env.stdout.strip().splitlines()[-1]
    bundle, _, _ = tiny_bundle
    crops = faces.crops[:24]
    np.save(tmp_path / "crops.npy", crops)
    subprocess.run([str(python), str(root / "tests" / "tflrt_embed.py"), str(bundle.root), str(tmp_path / "crops.npy"),
                    str(tmp_path / "out.npz")], check=True, cwd=tmp_path, timeout=300)
    got = np.load(tmp_path / "out.npz")
    for key in ("tflite_fp32", "tflite_int8"):
        assert str(got[key + ".backend"]) == "tflite_runtime"
        want = open_embedder(bundle, model=key).embed(crops)
        cos = np.sum(got[key] * want, axis=1)
        assert cos.min() > (0.9999 if key == "tflite_fp32" else 0.995), (key, cos.min())


# -- from a training checkpoint -------------------------------------------------------------------------------

def test_checkpoint_export_holds_out_the_runs_val_identities(tmp_path, orl_dir, yunet_path):
    """A (small, untrained) MobileFaceNet checkpoint: dynamo ONNX export, int8 ONNX, and the report measured on
    exactly the identities the run held out (from the checkpoint's split), calibrated on the others."""
    from edgeface.export.checkpoint import save_checkpoint
    from edgeface.export.exporter import ExportOptions, export_bundle
    from edgeface.export.model import build_model

    cfg = {"width": 0.125, "embedding_size": 16}
    val_ids = [f"s{i}" for i in range(13, 19)]
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "run" / "checkpoint.pt", build_model(cfg).eval(), cfg,
                           split={"train": [f"s{i}" for i in range(1, 13)], "val": val_ids})
    data = _copy_ids(orl_dir, tmp_path / "faces", [f"s{i}" for i in range(1, 19)])
    # an untrained net on 60 validation faces: its TAR@1e-3 is noise, so the gate is not what is tested here
    opts = ExportOptions(out=tmp_path / "bundle", checkpoint=ckpt, int8=True, calib=data, tflite=False,
                         allow_degraded=True, detector_model=yunet_path, min_calib=40, n_calib=48, n_probe=16,
                         candidates=FAST_CANDIDATES[1:], latency_runs=2, progress=False)
    bundle, rep = export_bundle(opts)
    assert bundle.meta.source == "trained" and set(bundle.meta.models) == {"onnx_fp32", "onnx_int8"}
    from edgeface.fileutil import sha256_file

    assert bundle.meta.notes["source"]["checkpoint_sha256"] == sha256_file(ckpt)
    assert rep["identities"] == len(val_ids) and rep["reference"] == "pytorch checkpoint"
    assert bundle.meta.notes["validation"]["rule"] == "the source run's validation identities"
    assert bundle.meta.notes["calibration"]["identities"] == 12
    assert rep["artefacts"]["onnx_fp32"]["mean_cosine"] > 0.9999  # dynamo ONNX == PyTorch


# -- one int8 model fails the gate, the other passes ------------------------------------------------------------

def _fail(key: str, drop: float = 2.92):
    """report.problems as measured, with ``key``'s TAR drop set to ``drop`` (the issue's tflite_int8 case)."""
    real = report.problems

    def problems(rep):
        rep = json.loads(json.dumps({k: v for k, v in rep.items() if k != "_scores"}))
        rep["artefacts"][key]["tar_drop_points"] = drop
        return real(rep)

    return problems


@pytest.mark.slow
def test_a_failing_tflite_int8_is_flagged_degraded_beside_a_passing_onnx_int8(tmp_path, tiny_onnx, orl_dir,
                                                                           yunet_path, monkeypatch, capsys):
    """`export --int8` where tflite_int8 drops 2.92 TAR points and onnx_int8 passes: the bundle is written at
    --out (not rejected), tflite_int8 flagged DEGRADED, never the default; the output says so and names --no-tflite."""
    from edgeface.bundle_status import degraded_models
    from edgeface.cli import main
    from edgeface.export import exporter

    monkeypatch.setattr(exporter.report, "problems", _fail("tflite_int8"))
    calib_dir = _copy_ids(orl_dir, tmp_path / "calib", [f"s{i}" for i in range(1, 31)])
    val_dir = _copy_ids(orl_dir, tmp_path / "val", [f"s{i}" for i in range(31, 41)])
    out = tmp_path / "bundle"
    assert main(["export", "--onnx", str(tiny_onnx), "--out", str(out), "--int8", "--calib", str(calib_dir),
                 "--val", str(val_dir), "--calib-crops", "200", "--detector-model", str(yunet_path),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    bundle = Bundle.load(out)
    assert set(bundle.meta.models) == {"onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"}
    assert degraded_models(bundle) == {"tflite_int8": ["tflite_int8: TAR@1e-3 drops 2.92 points (> 2.0)"]}
    assert bundle.default_key() == "onnx_int8"
    tail = text[text.index("bundle written:"):]
    assert "default model: onnx_int8" in tail
    assert "DEGRADED: tflite_int8: TAR@1e-3 drops 2.92 points" in tail and "never the default" in tail
    assert "--no-tflite" in tail and "accept_degraded" in tail
    assert not (tmp_path / "bundle.rejected").exists()
    assert main(["info", str(out)]) == 0
    assert "DEGRADED: tflite_int8" in capsys.readouterr().out


def test_a_degraded_model_is_never_the_default(tiny_bundle, tmp_path):
    """onnx_int8 flagged, tflite_int8 passed: the default is onnx_fp32; every model flagged: the first one (and
    the gate refuses it, tests/test_preflight.py)."""
    bundle, _, _ = tiny_bundle
    copy = Bundle.load(shutil.copytree(bundle.root, tmp_path / "b"))
    assert copy.default_key() == "onnx_int8"
    copy.meta.notes["parity"]["degraded"] = ["onnx_int8: mean cosine to the reference 0.9700 < 0.98"]
    copy.save()
    assert Bundle.load(copy.root).default_key() == "onnx_fp32"
    copy.meta.notes["parity"]["degraded"] = [f"{k}: broken" for k in copy.meta.models]
    copy.save()
    assert Bundle.load(copy.root).default_key() == "onnx_int8"


def test_degraded_summary_names_what_to_do(tiny_bundle, tmp_path):
    from edgeface.export.exporter import summary

    bundle, _, _ = tiny_bundle
    assert summary(bundle) == ["default model: onnx_int8 (what enroll, calibrate and the gate use without a model key)"]
    copy = Bundle.load(shutil.copytree(bundle.root, tmp_path / "b"))
    copy.meta.notes["parity"]["degraded"] = ["onnx_int8: mean cosine to the reference 0.9700 < 0.98",
                                             "tflite_int8: TAR@1e-3 drops 2.50 points (> 2.0)"]
    copy.save()
    lines = summary(Bundle.load(copy.root))
    assert lines[0].startswith("default model: onnx_fp32")
    assert sum(line.startswith("DEGRADED: ") for line in lines) == 2
    assert "No int8 model passed" in lines[-1] and not any("--no-tflite" in line for line in lines)


def test_the_recipe_choice_is_deterministic_and_ignores_timing(tiny_bundle):
    """The recipe recorded in the bundle is what `choose` picks from the recorded measurements, and it stays the
    pick whatever the latencies (they are timing noise among near-equals, issue 24 (b))."""
    from edgeface.export.quantize import NEAR_EQUAL, PREFERENCE, Measurement, Recipe, choose

    bundle, _, opts = tiny_bundle
    notes = bundle.meta.notes["onnx_int8"]
    measured = [(Recipe(**c["recipe"]), Measurement(**c)) for c in notes["candidates"]]
    assert choose(measured).name == notes["chosen"] and "deterministic" in notes["rule"]
    for lat in ([1.0, 9.0], [9.0, 1.0]):
        for (_, m), v in zip(measured, lat):
            m.latency_ms = v
        assert choose(measured).name == notes["chosen"]
    # near-equals: the first in the order of preference wins, whichever is faster or listed first
    a, b = (Recipe(name, "QUInt8") for name in PREFERENCE[:2])
    near = [(b, Measurement({}, 0.990, 0.9, 1.0, 0.0)), (a, Measurement({}, 0.990 - NEAR_EQUAL / 2, 0.9, 9.0, 0.0))]
    assert choose(near) is a
    assert choose([(b, Measurement({}, 0.990, 0.9, 1.0, 0.0)),
                   (a, Measurement({}, 0.990 - 2 * NEAR_EQUAL, 0.9, 1.0, 0.0))]) is b
