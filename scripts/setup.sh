#!/usr/bin/env bash
# Set up edgeface for development on a fresh machine: a virtual environment in .venv with the desktop (train),
# device, TFLite and test extras, plus systemd-analyze for the unit-file test. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned in the same command as litert-torch so pip takes the CPU wheel (torch==2.13.0) and nothing else.
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[train,device,tflite,dev]"
# onnx2torch without its declared torchvision dependency (see pyproject.toml)
.venv/bin/python -m pip install -q --no-deps "onnx2torch==1.5.15"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing systemd (for systemd-analyze verify)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
    else
        echo "setup: systemd-analyze not found; the unit-file test will skip"
    fi
fi
echo "setup: done (.venv)"
