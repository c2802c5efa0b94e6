#!/usr/bin/env bash
# The benchmark-only environment: ageitgey/face_recognition on dlib-bin (prebuilt dlib, no compiler), beside
# edgeface's runtime dependencies. face_recognition itself is installed --no-deps because it asks for the
# source 'dlib' package, which would compile for many minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
.venv-bench/bin/pip install -q dlib-bin face_recognition_models Pillow Click numpy "opencv-python-headless<5" onnxruntime pydantic tqdm matplotlib
.venv-bench/bin/pip install -q --no-deps face_recognition
.venv-bench/bin/pip install -q --no-deps -e .
echo "bench env ready: .venv-bench"
