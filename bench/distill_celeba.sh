#!/usr/bin/env bash
# Issue 15's measurement: a distilled student against the same student trained from scratch with triplet loss for
# the same wall time, run side by side (one thread each, so they share the CPU equally), every figure on celeba-loose
# identities that no run saw.
#
#   OUT=/work/runs/d15 BUDGET=75 bash bench/distill_celeba.sh
#
# 1. celeba-loose is split by identity (edgeface.cropcache.split_identities, 20 %, seed 0): 191 identities to train
#    on (each run holds 10 % of them out again to pick best.pt), 48 to test on. Both are prepared once.
# 2. The teacher's chips and cached targets are made once (a 2-step run) and copied into each distillation run, so
#    their budget is spent training (it is in docs/training.md what they cost).
# 3. Runs, all at width WIDTH (0.5), global batch P 8 x K 4:
#      distill-relational   --teacher dlib-resnet-v1 --distill-loss relational
#      distill-rel-triplet  the same plus --metric-weight 0.5 (the triplet semi-hard term on the labels)
#      scratch-triplet      --loss triplet --mining semi-hard
# 4. edgeface eval of each best.pt on the 48 test identities (JSON + PNG next to the run).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EF=${EF:-$ROOT/.venv/bin/edgeface}
PY=${PY:-$ROOT/.venv/bin/python}
SHARED=${EDGEFACE_SHARED:-$ROOT/../shared}
OUT=${OUT:-/work/runs/d15}
BUDGET=${BUDGET:-75}
WIDTH=${WIDTH:-0.5}
RUNS=${RUNS:-"distill-relational distill-rel-triplet scratch-triplet"}
Y=$SHARED/models/yunet/face_detection_yunet_2026may.onnx
mkdir -p "$OUT"
cd "$OUT"

"$PY" - "$SHARED/data/faces/celeba-loose" <<'EOF'
import os, sys
from pathlib import Path
from edgeface.cropcache import split_identities
src = Path(sys.argv[1])
train, test = split_identities(sorted(p.name for p in src.iterdir() if p.is_dir()), val_fraction=0.2, seed=0)
for part, ids in (("train191", train), ("test48", test)):
    Path(part).mkdir(exist_ok=True)
    for i in ids:
        if not (Path(part) / i).exists():
            os.symlink(src / i, Path(part) / i)
print(f"split: {len(train)} train identities, {len(test)} test identities")
EOF
for part in train191 test48; do
    [ -f cache-$part/manifest.json ] || "$EF" prepare --data $part --out cache-$part --detector-model "$Y" --no-progress
done
COMMON=(--data cache-train191 --val-fraction 0.1 --width "$WIDTH" --p 8 --k 4 --seed 0 --threads 1 --select-far 1e-3
        --no-progress)
[ -f base/teacher/targets.npy ] || "$EF" train "${COMMON[@]}" --out base --teacher dlib-resnet-v1 --max-steps 2

args_of() {
    case $1 in
        distill-relational) echo --teacher dlib-resnet-v1 --distill-loss relational ;;
        distill-rel-triplet) echo --teacher dlib-resnet-v1 --distill-loss relational --metric-weight 0.5 \
            --loss triplet --mining semi-hard ;;
        scratch-triplet) echo --loss triplet --mining semi-hard ;;
        *) echo "unknown run $1" >&2; exit 2 ;;
    esac
}
pids=()
for r in $RUNS; do
    if [ -f $r/best.pt ]; then continue; fi
    mkdir -p $r
    case $r in distill-*) cp -a base/teacher base/teacher-cache $r/ ;; esac
    # shellcheck disable=SC2046
    "$EF" train "${COMMON[@]}" --out $r --time-budget "$BUDGET" $(args_of $r) > $r.log 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for r in $RUNS; do
    "$EF" eval --model $r/best.pt --data cache-test48 --json $r/eval-test48.json --plot $r/eval-test48.png --threads 2
done
"$PY" - $RUNS <<'EOF'
import json, sys
print("| run | steps | TAR@1e-2 | TAR@1e-3 | TAR@1e-4 | EER | rank-1 |")
print("|---|---|---|---|---|---|---|")
for r in sys.argv[1:]:
    e = json.load(open(f"{r}/eval-test48.json"))
    m = json.load(open(f"{r}/metrics.json"))[-1]
    t = e["tar_at_far"]
    print(f"| {r} | {m['step']} | {t['1e-2']:.3f} | {t['1e-3']:.3f} | {t['1e-4']:.3f} | {e['eer']:.3f} | {e['rank1']:.3f} |")
EOF
