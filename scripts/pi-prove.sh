#!/usr/bin/env bash
# pi-prove.sh (run as `scripts/pibox.sh prove`): the door installed from the wheel in the emulated Pi decides as on
# x86. Results: docs/benchmarks.md, "Raspberry Pi, emulated".
#
#  1. scripts/build-wheel.sh                  -> dist/edgeface-*.whl
#  2. scripts/pibox.sh root, install          -> the wheel with [device,tflite,admin,fleet] in the Pi root's venv
#                                                (/opt/edgeface/venv, -c scripts/pi-constraints.txt)
#  3. the same wheel and constraints in an x86 venv of the host's /usr/bin/python3, numpy pinned to the root's
#  4. bench/pi_parity.py prepare (x86, the dev venv: torch) -> export --pretrained dlib-resnet-v1 --int8, calibrate,
#                                                enroll 5 people, a clip of 5 employees and 5 strangers (video + PNG
#                                                frames), 200 face crops, every int8 ONNX recipe
#  5. bench/pi_parity.py run --tag x86_64     -> gate --simulate (onnx_int8, tflite_int8) x (video, frames),
#                                                embeddings, validate-config, install-service --dry-run
#  6. the same in the Pi root (--tag aarch64), with the wheel's edgeface and no torch
#  7. scripts/pibox.sh numpy-check            -> the venv's numpy against a helper built on numpy 1.x (picamera2's)
#  8. bench/pi_parity.py compare              -> bench/results/pi_parity.json
#
# PIBOX_RUNS holds every artefact (never the repository). Steps already done are skipped: delete a result folder
# ($PIBOX_RUNS/x86_64, $PIBOX_RUNS/aarch64, or $PIBOX_RUNS/spans.json for prepare) to redo it. PIBOX_PREPARE_ARGS
# adds options to prepare (default --recipes).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PIBOX="${PIBOX:-/work/pibox/root}"
export PIBOX_RUNS="${PIBOX_RUNS:-/work/runs/pi}"
PY="${PIBOX_PY:-$HERE/.venv/bin/python}"
X86="${PIBOX_X86_VENV:-$(dirname "$PIBOX")/x86-venv}"
EXTRAS="device,tflite,admin,fleet"
mkdir -p "$PIBOX_RUNS"
RUNS="$(cd "$PIBOX_RUNS" && pwd)"
cd "$HERE"
say() { printf 'pi-prove: %s\n' "$*" >&2; }

whl="$(scripts/build-wheel.sh)"
say "wheel $whl"
scripts/pibox.sh root
scripts/pibox.sh install "$whl"
numpy_pi="$(scripts/pibox.sh run python -c 'import numpy; print(numpy.__version__)')"
[ -x "$X86/bin/python" ] || /usr/bin/python3 -m venv "$X86"
"$X86/bin/python" -m pip install -q -c scripts/pi-constraints.txt "numpy==$numpy_pi" "$whl[$EXTRAS]"
"$X86/bin/python" -m pip install -q --force-reinstall --no-deps "$whl"
"$X86/bin/python" -m pip list --format=freeze > "$RUNS/pip-freeze-x86_64.txt"
say "x86 venv $X86 (numpy $numpy_pi, as in the root)"

cp bench/pi_parity.py "$RUNS/pi_parity.py"    # the runs folder is mounted at the same path inside the root
[ -e "$RUNS/spans.json" ] || nice -n 10 "$PY" bench/pi_parity.py prepare --work "$RUNS" ${PIBOX_PREPARE_ARGS:---recipes}
nice -n 10 "$X86/bin/python" "$RUNS/pi_parity.py" run --work "$RUNS" --tag x86_64
scripts/pibox.sh run python "$RUNS/pi_parity.py" run --work "$RUNS" --tag aarch64
scripts/pibox.sh numpy-check
"$PY" bench/pi_parity.py compare --work "$RUNS" --out bench/results/pi_parity.json
