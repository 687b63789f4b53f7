"""The tiny detection sweep of the deployment tests (see conftest.py)."""

from __future__ import annotations

from typing import Any

POSITIONS = ("stage1", "stage2", "stage3", "stage4", "up1", "up2", "down1", "down2")
HIDDEN = {"stage1": 16, "stage2": 24, "stage3": 32, "stage4": 64,
          "up1": 24, "up2": 16, "down1": 24, "down2": 24}  # fmt: skip
FIXED = {
    **{f"{p}_hidden_t_n": HIDDEN[p] for p in POSITIONS},  # old names: read as <pos>_hidden_idx
    **{f"{p}_kind": "qsp" for p in POSITIONS},
    "head_width": 1.0,
}
AP_FLOOR = 0.08  # untrained weights score 0.000 on this set


def deploy_experiment(name: str = "deploy") -> dict[str, Any]:
    return {
        "name": name,
        "task": "detection",
        "space": {"name": "yolo_nas", "width_scale": 0.25, "num_classes": 4, "tiers": ["n"],
                  "max_depth": 1, "fixed": FIXED},
        "data": {"synthetic": {"images": 64, "image_size": 96, "seed": 0}},
        "fidelity": {"epochs": 12, "image_size": 96, "batch": 8, "seed": 0, "lr": 0.01},
        "latency": {"image_size": 96, "warmup": 1, "iters": 5},
        "sampler": {"type": "random", "seed": 0},
        "budget": {"trials": 1, "concurrency": 1},
        "ray": {"num_cpus": 1},
        "variants": {"budgets": {"m": 1000.0}},
    }  # fmt: skip
