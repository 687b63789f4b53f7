#!/usr/bin/env bash
# Create (or reuse) .venv with the pinned, tested torch/torchvision pair and OpenNAC installed.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.opennac-installed
want="$(cat setup.cfg scripts/setup_env.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
"$VPY" -m pip install -q --upgrade pip setuptools wheel
# The tested pair (CPU here; users on GPUs may bring their own CUDA build within setup.cfg's ranges).
"$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
"$VPY" -m pip install -q -e ".[dev]"
echo "$want" > "$stamp"
