"""One tiny detection sweep that trains a real model, shared by the deployment tests.

The space is narrowed (``fixed``) to one small architecture so the sweep's single trial is
known: 64 synthetic 96 px images (48 train, 16 val), 12 epochs at lr 0.01 reach box AP ~0.2
in ~15 s on one thread, far above untrained weights (AP 0.000).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _deploy import deploy_experiment  # tests/deploy/_deploy.py


@pytest.fixture(scope="session")
def deploy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-trial sweep: ``weights/trial_0000.pt`` and ``variants/m.yaml``."""
    import ray

    from nas.search import run_search

    out = tmp_path_factory.mktemp("deploy_runs")
    started = False
    if not ray.is_initialized():
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")  # fmt: skip
        started = True
    try:
        return Path(run_search(deploy_experiment(), output=out, progress=False))
    finally:
        if started:
            ray.shutdown()


@pytest.fixture(scope="session")
def deploy_data(deploy_run: Path) -> Path:
    """The sweep's synthetic data set (data.yaml)."""
    return deploy_run / "data" / "synthetic" / "data.yaml"
