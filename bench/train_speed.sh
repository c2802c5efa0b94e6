#!/usr/bin/env bash
# Training throughput for issue 15: 1 vs 2 processes (gloo), and distillation with cached vs online teacher targets.
# Every run is STEPS steps of the width-0.5 MobileFaceNet, global batch P 8 x K 4, THREADS thread(s) per process;
# steps/s is the step count over the run's training clock (metrics.json elapsed_s, taken before the final
# validation). Needs the caches bench/distill_celeba.sh makes (OUT/cache-train191, OUT/base/teacher*).
#
#   OUT=/work/runs/d15 bash bench/train_speed.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EF=${EF:-$ROOT/.venv/bin/edgeface}
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${OUT:-/work/runs/d15}
STEPS=${STEPS:-60}
THREADS=${THREADS:-1}
cd "$OUT"
mkdir -p speed
COMMON=(--data cache-train191 --val-fraction 0.1 --width 0.5 --p 8 --k 4 --seed 0 --threads "$THREADS" --max-steps "$STEPS"
        --no-progress)
run() {  # name, then train options
    local name=$1; shift
    rm -rf speed/$name
    mkdir -p speed/$name
    case $name in distill-*) cp -a base/teacher base/teacher-cache speed/$name/ ;; esac
    "$EF" train "${COMMON[@]}" --out speed/$name "$@" > speed/$name.log 2>&1
}
run triplet-1proc --loss triplet --mining semi-hard
run triplet-2proc --loss triplet --mining semi-hard --nproc 2
run distill-cached --teacher dlib-resnet-v1 --distill-loss relational --teacher-targets cached
run distill-online --teacher dlib-resnet-v1 --distill-loss relational --teacher-targets online
"$PY" - "$STEPS" <<'PYEOF'
import json, sys
steps = int(sys.argv[1])
print("| run | steps | seconds | steps/s | samples/s |")
print("|---|---|---|---|---|")
for name in ("triplet-1proc", "triplet-2proc", "distill-cached", "distill-online"):
    m = json.load(open(f"speed/{name}/metrics.json"))[-1]
    s = m["elapsed_s"]
    print(f"| {name} | {m['step']} | {s:.1f} | {m['step'] / s:.2f} | {32 * m['step'] / s:.0f} |")
PYEOF
