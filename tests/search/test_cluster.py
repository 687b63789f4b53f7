"""A tiny sweep on a real Ray cluster (skipped unless OPENNAC_RAY_ADDRESS is set, e.g.
``OPENNAC_RAY_ADDRESS=auto`` on a node of a running cluster)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest


@pytest.mark.cluster
@pytest.mark.slow
def test_tiny_sweep_on_the_cluster(tmp_path: Path, tiny: Any) -> None:
    import ray

    from nas.search import run_search

    if ray.is_initialized():
        ray.shutdown()  # join the cluster, not a local Ray of another test
    address = os.environ["OPENNAC_RAY_ADDRESS"]
    # the run directory must be visible to the workers: use OPENNAC_SHARED_DIR when given
    out = Path(os.environ.get("OPENNAC_SHARED_DIR", tmp_path))
    exp = tiny(f"cluster-{os.getpid()}", ray={})
    run = run_search(exp, output=out, address=address, progress=False)
    df = pd.read_parquet(run / "trials.parquet")
    assert len(df) == 3 and set(df["status"]) == {"COMPLETE"}
    assert (run / "pareto.csv").is_file()
