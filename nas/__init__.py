"""OpenNAC engine: experiments, Ray Tune + Optuna orchestration, results, variants, CLI."""

from __future__ import annotations

import importlib
from typing import Any

# Public names, imported on first use so that `import nas` stays light (no pandas, Ray, ...).
# To add one: a line `"name": "nas.module",` here.
_LAZY = {
    "load_run": "nas.results",
    "load_runs": "nas.results",
    "pareto_front": "nas.pareto",
    "nondominated_ranks": "nas.pareto",
    "hypervolume": "nas.pareto",
    "plot_fronts": "nas.plots",
    "run_search": "nas.search",
    "resume_search": "nas.search",
    "load_experiment": "nas.experiment",
    "run_calibration": "nas.calibrate",
    "Objective": "nas.objectives",
    "register_objective": "nas.objectives",
    "list_objectives": "nas.objectives",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
