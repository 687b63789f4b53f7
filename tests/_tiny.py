"""The tiny experiment shared by the search and results tests (imported by their conftests)."""

from __future__ import annotations

import copy
from typing import Any


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
