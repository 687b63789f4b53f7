#!/usr/bin/env bash
# Create (or reuse) .venv with the pinned, tested torch/torchvision pair and OpenNAC installed.
# Idempotent: a second run only checks a stamp. pip's output goes to .venv/install.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.opennac-installed
want="$(cat setup.cfg pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
log=.venv/install.log
# torch 2.14.1 on x86_64 is a CUDA build: the venv takes about 6.5 GB, and pip unpacks beside it.
need_kb=$((8 * 1024 * 1024))
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ -n "$free_kb" ] && [ "$free_kb" -lt "$need_kb" ]; then
  echo "setup: $(pwd) has $((free_kb / 1024)) MB free; installing needs about 8 GB" \
       "(torch's CUDA build): if pip fails with 'No space left on device', free some space" \
       "and run it again." >&2
fi
echo "setup: installing torch==2.14.1, torchvision==0.29.1 and OpenNAC into .venv (log: $log)"
{
  "$VPY" -m pip install --no-cache-dir --upgrade pip setuptools wheel &&
  # The tested pair; users on GPUs may bring their own CUDA build within setup.cfg's ranges.
  "$VPY" -m pip install --no-cache-dir "torch==2.14.1" "torchvision==0.29.1" &&
  "$VPY" -m pip install --no-cache-dir -e ".[dev,cluster]"
} >"$log" 2>&1 || { tail -30 "$log"; echo "setup: pip failed (see $log)" >&2; exit 1; }
echo "$want" > "$stamp"
echo "setup: done"
