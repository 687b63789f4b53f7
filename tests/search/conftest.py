"""Shared set-up of the search tests: one local Ray (2 CPUs) per session, tiny experiments."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest


def tiny_experiment(name: str, **changes: Any) -> dict[str, Any]:
    """A pose search over the width-scaled space: 1 epoch on 8 synthetic 64 px images, latency
    at 64 px on this CPU, random sampler, 3 trials, 2 at a time. ``changes`` replace sections."""
    exp: dict[str, Any] = {
        "name": name,
        "task": "pose",
        "space": {"name": "yolo_nas_pose", "width_scale": 0.25},
        "data": {"synthetic": {"images": 8, "image_size": 64, "seed": 0}},
        "fidelity": {"epochs": 1, "image_size": 64, "batch": 4, "seed": 0},
        "latency": {"image_size": 64, "warmup": 1, "iters": 5},
        "sampler": {"type": "random", "seed": 0},
        "budget": {"trials": 3, "concurrency": 2},
        "ray": {"num_cpus": 2},
    }
    exp.update(copy.deepcopy(changes))
    return exp


@pytest.fixture(scope="session")
def tiny() -> Any:
    """`tiny_experiment` as a fixture (test modules need not import conftest)."""
    return tiny_experiment


@pytest.fixture(scope="session")
def ray_local() -> Any:
    """A local Ray with 2 CPUs shared by every sweep of the session (saves its start-up)."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
        started = True
    yield ray
    if started:
        ray.shutdown()
