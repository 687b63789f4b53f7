"""Run `opennac search` / `opennac resume` as a separate driver process that may SIGKILL itself
at an ``OPENNAC_FAULT`` point (`nas.faults`); shared by tests and `benchmarks/faults.py`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def drive(args: list[str], address: str, fault: str | None = None,
          timeout: float = 300) -> tuple[int, str, float]:
    """``python -m nas ARGS --address ADDRESS --quiet`` with ``OPENNAC_FAULT=fault``; returns
    (exit code, output, wall seconds). A SIGKILLed driver returns -9."""
    env = dict(os.environ)
    env.pop("OPENNAC_FAULT", None)
    if fault:
        env["OPENNAC_FAULT"] = fault
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "nas", *args, "--address", address, "--quiet"],
                          capture_output=True, text=True, env=env, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def check_final(run_dir: Path, budget: int, epochs: int) -> Any:
    """The final trials table, after checking: the budget's number of trials, every number
    once, no architecture twice, every trial COMPLETE at honest full fidelity."""
    import pandas as pd

    df = pd.read_parquet(run_dir / "trials.parquet")
    assert sorted(df["number"]) == list(range(budget)), df[["number", "status"]]
    assert set(df["status"]) == {"COMPLETE"}, df[["number", "status", "error"]]
    assert df["arch_id"].is_unique
    assert (df["epochs_done"] == epochs).all() and df["full_fidelity"].astype(bool).all()
    assert df["ap"].notna().all() and df["latency_ms"].notna().all()
    return df
