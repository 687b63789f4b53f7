#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: the `cuda` latency tests, then the table of
# fused-preset latencies (7 released presets, 640x640, batch 1, fp16, torch and
# torch-cudagraph, with SM clock and temperature) and the predictor's calibration report, then
# the training data pipeline against the training step (benchmarks/train.py; needs
# pycocotools, skipped without it or without a GPU).
#
# Needs python3 with torch (CUDA build), numpy, pyyaml, pytest; nvidia-ml-py for telemetry;
# onnxruntime optional. No Ray, Optuna or pycocotools, no install, no network.
# Run from anywhere:  scripts/gpu_check.sh        (results also under $OUT when it is set)
# Budget: about 8 minutes on an H100 (tests <= 200 s, table + predictor <= 240 s, training
# throughput <= 150 s).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OPENNAC_LOCK_DIR="${OPENNAC_LOCK_DIR:-$(mktemp -d /tmp/opennac-locks.XXXXXX)}"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-}"
status=0

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,power.limit \
    --format=csv 2>/dev/null || echo "nvidia-smi not available"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'gpu', torch.cuda.is_available() and torch.cuda.get_device_name())"

echo "== cuda tests (-m cuda: latency, models, and training where pycocotools is importable)"
if [ -n "$OUT_DIR" ]; then mkdir -p "$OUT_DIR"; fi
cuda_dirs="tests/latency tests/models"
if "$PY" -c "import pycocotools" 2>/dev/null; then
  cuda_dirs="$cuda_dirs tests/training"
else
  echo "(pycocotools missing here: tests/training's CUDA test skipped)"
fi
# shellcheck disable=SC2086
timeout "${GPU_CHECK_TEST_TIMEOUT:-200}" "$PY" -m pytest -m cuda $cuda_dirs -q -p no:cacheprovider -rs \
    ${OUT_DIR:+--junitxml "$OUT_DIR/cuda_tests.xml"} || status=1

echo "== fused-preset latency table and predictor calibration"
timeout "${GPU_CHECK_BENCH_TIMEOUT:-240}" "$PY" benchmarks/gpu_latency.py --device cuda --precision fp16 \
    --backends torch,torch-cudagraph --image-size 640 --warmup 20 --iters 100 \
    --table-samples 12 --calib-samples 8 --table-iters 30 --budget-s "${GPU_CHECK_BUDGET_S:-150}" \
    ${OUT_DIR:+--out "$OUT_DIR"} || status=1

echo "== training data pipeline vs step on CUDA (benchmarks/train.py: data images/s next to step images/s)"
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
    && "$PY" -c "import pycocotools" 2>/dev/null; then
  timeout "${GPU_CHECK_TRAIN_TIMEOUT:-150}" "$PY" benchmarks/train.py --device cuda --batch 16 \
      --steps 10 --threads 4 --workers 4 --skip-loading --skip-eval \
      --json | tee ${OUT_DIR:+"$OUT_DIR/train_cuda.txt"} || status=1
else
  echo "(skipped: no CUDA GPU or no pycocotools here)"
fi

echo "== done (status $status)"
exit $status
