#!/usr/bin/env bash
# Build edgeface's wheel into dist/ (or the folder given): one pure-Python wheel for every door (x86, a Raspberry Pi,
# a Jetson), carrying the systemd units, the config example and the admin page's templates. Install it on the door
# as docs/deployment.md says ("Install on the door from a wheel"):
#
#   scripts/build-wheel.sh                 # -> dist/edgeface-<version>-py3-none-any.whl (prints its path)
#   pip install 'dist/edgeface-<version>-py3-none-any.whl[device,tflite,admin,fleet]'     # on the door
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3). Where it has setuptools>=77 the build runs
# offline in it; otherwise pip fetches the build requirements (pyproject.toml's build-system) into an isolated one.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-dist}"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
isolation=()
if "$PY" -c 'import sys, setuptools, wheel; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' 2>/dev/null; then
    isolation=(--no-build-isolation)
fi
rm -rf build                      # a stale build/lib would put deleted modules into the wheel
mkdir -p "$OUT"
"$PY" -m pip wheel -q --no-deps "${isolation[@]}" -w "$OUT" .
version="$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
whl="$OUT/edgeface-$version-py3-none-any.whl"
# the files the door needs besides the code; a wheel without them installs and then fails at install-service/admin
"$PY" - "$whl" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["edgeface/device/data/edgeface-gate.service", "edgeface/device/data/edgeface-admin.service",
        "edgeface/device/data/gate.example.toml", "edgeface/device/admin/templates/base.html",
        "edgeface/device/admin/static/style.css", "edgeface/cli.py", "edgeface/device/daemon.py"]
missing = [n for n in need if n not in names]
if missing:
    sys.exit(f"build-wheel: {sys.argv[1]} lacks {', '.join(missing)}")
EOF
rm -rf build
echo "$whl"
