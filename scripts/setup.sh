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
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[train,device,tflite,dlib-models,admin,fleet,dev]"
# onnx2torch without its declared torchvision dependency (see pyproject.toml)
.venv/bin/python -m pip install -q --no-deps "onnx2torch==1.5.15"
# face_recognition (the dlib reference in tests and benchmarks) without its declared dlib dependency (dlib-bin provides it)
.venv/bin/python -m pip install -q --no-deps "face_recognition==1.3.0"
# OS packages the tests use: systemd-analyze (unit-file test), mosquitto (fleet tests), chromium + chromedriver
# (the admin page's browser test). Tests that need one skip with the reason where it cannot be installed.
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing[*]} (apt)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
            echo "setup: could not install ${missing[*]}; the tests that need them will skip"
        fi
    else
        echo "setup: ${missing[*]} not found and not root; the tests that need them will skip"
    fi
fi
echo "setup: done (.venv)"
