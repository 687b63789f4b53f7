"""Two tiny real runs (nas.search.run_search on synthetic pose data), made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _tiny import tiny_experiment  # tests/_tiny.py (tests/ is on sys.path via tests/conftest.py)


def _tiny_run(name: str, seed: int) -> dict:
    """The shared tiny pose search (3 trials, released models first) with ``seed`` for its
    sampler, choosing variants against the released models."""
    return tiny_experiment(name, sampler={"type": "random", "seed": seed},
                           variants={"match_references": True})


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run A, run B): two finished run directories sharing one local Ray."""
    import ray

    from nas.search import run_search

    out = tmp_path_factory.mktemp("runs")
    started = False
    if not ray.is_initialized():
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        run_a = run_search(_tiny_run("tiny_a", 0), output=out, progress=False)
        run_b = run_search(_tiny_run("tiny_b", 1), output=out, progress=False)
    finally:
        if started:
            ray.shutdown()
    return Path(run_a), Path(run_b)
