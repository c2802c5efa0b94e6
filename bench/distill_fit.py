"""Usage: python bench/distill_fit.py OUT RUN[,RUN...] [THREADS]  (OUT as in bench/distill_celeba.sh, after it and after
``edgeface prepare --data OUT/test48 --out OUT/tcache-test48 --pretrained dlib-resnet-v1``)

How well each student reproduces the teacher: centred cosine and similarity-matrix gap on the photos it trained
on vs photos of unseen people (test48). Also its own TAR on a train subset (fit) vs test."""
import json, sys
import numpy as np, torch
from pathlib import Path
from edgeface.cropcache import load_cache
from edgeface.export.checkpoint import load_checkpoint
from edgeface.export.train import embed
from edgeface.preprocess import l2_normalize
from edgeface.evaluate import verification
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
D = Path(sys.argv[1])
def pairs(cache, tcache):
    from edgeface.export.distill import chip_rows

    return [(i, j) for i, j in enumerate(chip_rows(cache, tcache)) if j >= 0]
tr_c, tr_t = load_cache(D/"cache-train191"), load_cache(D/"base/teacher-cache")
te_c, te_t = load_cache(D/"cache-test48"), load_cache(D/"tcache-test48")
t_train = l2_normalize(np.load(D/"base/teacher/targets.npy")[:, 0])
if not (D/"teacher-test48.npy").is_file():  # the teacher (dlib's ResNet port) on its own chips of the test photos
    from edgeface.export.distill import embed_chips, open_teacher

    np.save(D/"teacher-test48.npy", embed_chips(open_teacher("dlib-resnet-v1", D/"teacher-test48"), te_t.crops,
                                                torch.device("cpu")))
t_test = l2_normalize(np.load(D/"teacher-test48.npy"))
mu = l2_normalize(np.load(D/"base/teacher/targets.npy").reshape(-1, 128)).mean(0)
out = {}
for run in sys.argv[2].split(","):
    model, info = load_checkpoint(D/run/"best.pt")
    split = json.loads((D/run/"split.json").read_text())
    seen = set(split["train"])
    res = {}
    for part, c, tc, T in (("train", tr_c, tr_t, t_train), ("test48", te_c, te_t, t_test)):
        pr = pairs(c, tc)
        if part == "train":
            pr = [(i, j) for i, j in pr if c.identities[i] in seen]
            pr = [pr[k] for k in np.random.default_rng(0).choice(len(pr), 1000, replace=False)]
        crops = np.asarray(c.crops[[i for i, _ in pr]])
        ids = np.array([c.identities[i] for i, _ in pr])
        s = embed(model, crops, torch.device("cpu"))
        t = T[[j for _, j in pr]]
        ct = l2_normalize(t - mu)
        off = ~np.eye(len(s), dtype=bool)
        v = verification(s, ids)[0]
        vt = verification(t, ids)[0]  # the teacher on the very same photos
        res[part] = {"photos": len(s), "teacher_tar_1e-3": vt.tar_at_far["1e-3"], "cos_plain": float(np.mean(np.sum(s * t, 1))), "cos_centred": float(np.mean(np.sum(s * ct, 1))),
                     "sim_gap_centred": float(np.mean(((s @ s.T - ct @ ct.T)[off]) ** 2)),
                     "tar_1e-3": v.tar_at_far["1e-3"], "eer": v.eer}
    out[run] = res
    print(run, json.dumps(res, indent=1))
json.dump(out, open(D/"fit.json", "w"), indent=1)
print(f"wrote {D / 'fit.json'}")
