"""Two tiny real runs (nas.search.run_search on synthetic pose data), made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def tiny_experiment(name: str, seed: int) -> dict:
    """A pose search over the width-scaled space: 3 trials (released models first), 1 epoch on
    8 synthetic 64 px images, latency at 64 px on this CPU."""
    return {
        "name": name,
        "task": "pose",
        "space": {"name": "yolo_nas_pose", "width_scale": 0.25},
        "data": {"synthetic": {"images": 8, "image_size": 64, "seed": 0}},
        "fidelity": {"epochs": 1, "image_size": 64, "batch": 4, "seed": 0},
        "latency": {"image_size": 64, "warmup": 1, "iters": 5},
        "sampler": {"type": "random", "seed": seed},
        "budget": {"trials": 3, "concurrency": 2},
        "ray": {"num_cpus": 2},
        "variants": {"match_references": True},
    }


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
        run_a = run_search(tiny_experiment("tiny_a", 0), output=out, progress=False)
        run_b = run_search(tiny_experiment("tiny_b", 1), output=out, progress=False)
    finally:
        if started:
            ray.shutdown()
    return Path(run_a), Path(run_b)
