#!/usr/bin/env bash
# Make (or reuse) .venv-tflrt: tflite-runtime 2.14.0 with numpy<2 (its wheels are built against numpy 1.x),
# plus edgeface itself without dependencies, so edgeface.runtime can be checked against the old runtime that
# older devices (Debian bullseye / Python 3.11 images) still ship. Safe to run again.
# Exit 0 and print the venv's python when it is usable; exit 3 (a "skip") when it cannot be made here
# (no network, no cp311 x86_64 wheel for this platform...).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${EDGEFACE_TFLRT_VENV:-.venv-tflrt}
PY=${PYTHON:-python3}
ok() { "$VENV/bin/python" -c "import tflite_runtime.interpreter, numpy, cv2, pydantic, edgeface.runtime.litert; assert numpy.__version__ < '2'" 2>/dev/null; }
if ! ok; then
    { [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"; } >&2 || exit 3
    "$VENV/bin/python" -m pip install -q "tflite-runtime==2.14.0" "numpy<2" "opencv-python-headless<5" "pydantic>=2.5" >&2 || exit 3
    "$VENV/bin/python" -m pip install -q --no-deps -e . >&2 || exit 3
    ok || exit 3
fi
echo "$VENV/bin/python"
