#!/usr/bin/env bash
# README command 1: install (idempotent) and run the quickstart search on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
export RAY_USAGE_STATS_ENABLED=0
# --resume: a second run continues runs/quickstart (or reprints its summary) instead of failing;
# an existing run directory is never overwritten.
exec .venv/bin/opennac search experiments/quickstart.yaml --resume "$@"
