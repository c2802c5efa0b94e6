"""The pair-trained logistic unit as the bundle's scorer: exported from a pair-loss checkpoint, then used by
evaluation, calibration and matching instead of cosine, and equal to the unit torch trained."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgeface.export.quantize import FAST_CANDIDATES  # noqa: E402


def _pair_checkpoint(tmp_path, form="abs"):
    from edgeface.export.checkpoint import save_checkpoint
    from edgeface.export.losses import PairLoss
    from edgeface.export.model import build_model

    cfg = {"width": 0.125, "embedding_size": 16}
    torch.manual_seed(0)
    loss = PairLoss(16, form)
    with torch.no_grad():
        loss.classifier.weight.copy_(-torch.rand(1, 16) * 8)
        loss.classifier.bias.fill_(2.5)
    ckpt = save_checkpoint(tmp_path / "run" / "checkpoint.pt", build_model(cfg).eval(), cfg,
                           train_config={"loss": "pair", "pair_form": form}, loss_state=loss.state_dict(),
                           split={"train": [f"s{i}" for i in range(1, 11)], "val": [f"s{i}" for i in range(11, 17)]})
    return ckpt, loss


@pytest.fixture(scope="module")
def pair_bundle(tmp_path_factory, orl_dir, yunet_path):
    import shutil

    from edgeface.export.exporter import ExportOptions, export_bundle

    d = tmp_path_factory.mktemp("pair")
    ckpt, loss = _pair_checkpoint(d)
    data = d / "faces"
    for i in range(1, 17):
        shutil.copytree(orl_dir / f"s{i}", data / f"s{i}")
    opts = ExportOptions(out=d / "bundle", checkpoint=ckpt, calib=data, tflite=False, detector_model=yunet_path,
                         candidates=FAST_CANDIDATES[1:], latency_runs=2, progress=False)
    bundle, _ = export_bundle(opts)
    cos_opts = ExportOptions(out=d / "bundle_cos", checkpoint=ckpt, calib=data, tflite=False, scorer="cosine",
                             detector_model=yunet_path, candidates=FAST_CANDIDATES[1:], latency_runs=2, progress=False)
    cos_bundle, _ = export_bundle(cos_opts)
    return bundle, cos_bundle, loss, data


def test_export_carries_the_trained_logistic_unit(pair_bundle):
    bundle, cos_bundle, loss, _ = pair_bundle
    s = bundle.meta.scorer
    assert s is not None and s.kind == "logistic" and s.form == "abs"
    np.testing.assert_allclose(s.weight, loss.classifier.weight.detach().numpy().ravel(), rtol=0, atol=1e-7)
    assert s.bias == pytest.approx(float(loss.classifier.bias))
    assert cos_bundle.meta.scorer is None


def test_numpy_unit_equals_the_torch_unit_on_real_embeddings(pair_bundle, detector, orl_dir):
    from edgeface.evaluate import load_faces
    from edgeface.runtime import open_embedder
    from edgeface.scorer import scorer_of

    bundle, _, loss, data = pair_bundle
    emb = open_embedder(bundle)
    faces = load_faces(data, detector, ["s1", "s2", "s3"], progress=False, aligner=emb.aligner)
    e = emb.embed(faces.crops)
    scorer = scorer_of(emb)
    assert scorer.kind == "logistic" and scorer.bounds == (0.0, 1.0)
    ours = scorer.matrix(e, e)
    i, j = np.triu_indices(len(e), 1)
    with torch.no_grad():
        theirs = torch.sigmoid(loss.logits(torch.from_numpy(e), torch.from_numpy(i), torch.from_numpy(j))).numpy()
    np.testing.assert_allclose(ours[i, j], theirs, atol=1e-5)
    np.testing.assert_allclose(scorer.pairs(e[i], e[j]), theirs, atol=1e-5)
    assert ours.min() >= 0 and ours.max() <= 1


def test_evaluate_calibrate_and_match_score_with_it(pair_bundle, detector):
    from edgeface.calibrate import calibrate
    from edgeface.evaluate import evaluate, load_faces
    from edgeface.gallery import Gallery
    from edgeface.match import Matcher
    from edgeface.runtime import open_embedder
    from edgeface.scorer import scorer_of

    bundle, _, _, data = pair_bundle
    emb = open_embedder(bundle)
    faces = load_faces(data, detector, progress=False, aligner=emb.aligner)
    report, genuine, impostor = evaluate(emb, faces, progress=False)
    assert report["scorer"] == "logistic"
    assert 0.0 <= genuine.min() and genuine.max() <= 1.0 and 0.0 <= impostor.min() and impostor.max() <= 1.0
    e = emb.embed(faces.crops)
    cal = calibrate(e, faces.labels, 1e-2, scorer=scorer_of(emb))
    assert 0.0 < cal.threshold <= 1.0
    # the same embeddings scored by cosine give other scores: the scorer really is in use
    emb.scorer = None
    report_cos, g_cos, _ = evaluate(emb, faces, progress=False)
    assert report_cos["scorer"] == "cosine" and not np.allclose(np.sort(g_cos), np.sort(genuine))
    # matching: the best person under the logistic unit is the argmax of its probabilities
    g = Gallery.new(emb.fingerprint, emb.embedding_size)
    first = {}
    for k, lab in enumerate(faces.labels):
        first.setdefault(lab, k)
    for lab, k in first.items():
        g.add(lab, e[k:k + 1])
    scorer = scorer_of(open_embedder(bundle))
    m = Matcher(g, scorer=scorer)
    probe = e[1]
    expect = scorer.matrix(probe[None], np.stack([e[k] for k in first.values()]))[0]
    got = m.match(probe)
    assert got.name == list(first)[int(np.argmax(expect))]
    assert got.score == pytest.approx(float(expect.max()), abs=1e-6)
