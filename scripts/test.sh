#!/usr/bin/env bash
# README command 2: install what the tests need (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
export RAY_USAGE_STATS_ENABLED=0
export RAY_TMPDIR="${RAY_TMPDIR:-$(mktemp -d /tmp/opennac-ray.XXXXXX)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest -q "$@"
