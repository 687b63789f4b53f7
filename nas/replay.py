"""Simulated searches on a search-efficiency table (`nas.benchtable`): samplers compared cheaply.

Each simulated search is a real Optuna study (in memory) with the sampler as the experiment
would make it (`nas.searcher.make_sampler`): a trial's parameters are proposed through the
space's own ``sample(trial)`` and the table row nearest to them answers (`BenchTable.nearest`).
The study is told the row's latency and, with ``observe="seed"`` (what a search with
``fidelity.repeats: 1`` sees), the AP of one of the row's trainings drawn at random, or with
``observe="mean"`` its ``ap_mean``. The score is the hypervolume of the rows found after n trials
(`nas.pareto.hypervolume_of_losses`; maximise AP, minimise latency) against a fixed reference
point, always on ``ap_mean`` (the table's best estimate of each row's AP): a sampler that chases
a lucky seed is not rewarded for it.

Samplers: ``random``, ``nsga2``, ``tpe``, ``gp`` (the registered ones, population and seed as
given) and ``default``: the experiment's own ``sampler`` section with its reference points
enqueued first (``seed_references``) and its ``sampler.prescreen`` when set. A pre-screen in a
replay draws its pool from the table's rows (the replay's whole world) and ranks it by the
table's ``zc_<proxy>`` column; ``<type>+<proxy>`` names such a variant.

Example:
    >>> curve = replay_curve(table, space, "random", seed=0, trials=25,
    ...                      reference=(0.0, 10.0))                         # doctest: +SKIP
    >>> curve.shape                                                        # doctest: +SKIP
    (25,)
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.benchtable import BenchTable
from nas.pareto import hypervolume_of_losses

BASE_SAMPLERS = ("random", "nsga2", "tpe", "gp")


@dataclass(frozen=True)
class SamplerPlan:
    """How one replayed search starts: sampler type, population, enqueued parameter sets
    (references, then a pre-screen's best) and the pre-screen (proxy, pool, keep) if any."""

    kind: str
    population: int
    seed_references: bool = False
    prescreen: tuple[str, int, int] | None = None


def plan_of(name: str, exp: Any, population: int = 8) -> SamplerPlan:
    """The plan of a sampler name: a base sampler, ``default`` (the experiment's section) or
    ``<base or default>+<proxy>`` (with a pre-screen of the experiment's or a default size)."""
    base, _, proxy = name.partition("+")
    pre = exp.sampler.prescreen if exp is not None else None
    if base == "default":
        plan = SamplerPlan(exp.sampler.type, exp.sampler.population, bool(exp.seed_references),
                           (pre.proxy, pre.pool, pre.keep) if pre is not None else None)
    elif base in BASE_SAMPLERS:
        plan = SamplerPlan(base, population)
    else:
        raise ValueError(f"sampler {name!r}: expected one of {', '.join(BASE_SAMPLERS)}, "
                         "default, or one of those +<proxy>")
    if proxy:
        pool, keep = (pre.pool, pre.keep) if pre is not None else (32, 6)
        plan = SamplerPlan(plan.kind, plan.population, plan.seed_references, (proxy, pool, keep))
    return plan


OBSERVE = ("seed", "mean")


def told_ap(table: BenchTable, row: int, observe: str, rng: random.Random) -> float:
    """The AP a replayed search is told for ``row``: one training's (``seed``) or the mean."""
    if observe == "seed":
        return rng.choice(table.seed_aps(row))
    if observe == "mean":
        return float(table.rows[row]["ap_mean"])
    raise ValueError(f"observe: expected one of {', '.join(OBSERVE)}, got {observe!r}")


def replay_curve(table: BenchTable, space: Any, plan: SamplerPlan | str, seed: int,
                 trials: int, reference: Sequence[float], exp: Any = None,
                 observe: str = "seed") -> np.ndarray:
    """Hypervolume (on ``ap_mean``) after 1..``trials`` trials of one simulated search
    (``reference`` = (AP, latency_ms)); ``observe``: what the study is told (module doc)."""
    import optuna

    from nas.searcher import make_sampler

    if isinstance(plan, str):
        plan = plan_of(plan, exp)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # GP: dynamic-space notes
    ap, lat = table.column("ap_mean"), table.column("latency_ms")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature and dynamic-space warnings
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=make_sampler(plan.kind, seed, plan.population))
        for params in _enqueued(table, space, plan, seed):
            study.enqueue_trial(params)
        losses = np.zeros((trials, 2))
        draws = random.Random(f"observe-{seed}")
        for n in range(trials):
            trial = study.ask()
            space.sample(trial)  # proposals through the space's public suggest API
            row = table.nearest(trial.params)
            study.tell(trial, [told_ap(table, row, observe, draws), float(lat[row])])
            losses[n] = (-ap[row], lat[row])
    ref = np.array([-float(reference[0]), float(reference[1])])
    return np.array([hypervolume_of_losses(losses[: n + 1], ref) for n in range(trials)])


def _enqueued(table: BenchTable, space: Any, plan: SamplerPlan,
              seed: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if plan.seed_references:
        out += list(space.reference_points().values())
    if plan.prescreen is not None:
        proxy, pool, keep = plan.prescreen
        scores = table.column(f"zc_{proxy}")
        if np.isnan(scores).all():
            raise ValueError(f"{table.path}: no zc_{proxy} column (rebuild the table or "
                             "let benchmarks/sampler.py score it)")
        rng = random.Random(seed)
        drawn = rng.sample(range(len(table.rows)), min(pool, len(table.rows)))
        drawn.sort(key=lambda i: -np.nan_to_num(scores[i], nan=-np.inf))
        out += [table.params[i] for i in drawn[:keep]]
    return out


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean and its ``level`` Student-t interval (``lo``, ``hi``)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "lo": mean, "hi": mean}
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def trials_to_reach(curves: np.ndarray, target: float) -> int | None:
    """The first trial count whose mean hypervolume (over seeds) reaches ``target``."""
    mean = curves.mean(axis=0)
    hit = np.nonzero(mean >= target - 1e-12)[0]
    return int(hit[0]) + 1 if hit.size else None


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall tau-b of two score lists (None when undefined)."""
    from nas.calibrate import rank_agreement

    return rank_agreement(list(x), list(y))["kendall_tau"]


__all__ = ["BASE_SAMPLERS", "SamplerPlan", "kendall_tau", "mean_ci", "plan_of", "replay_curve",
           "trials_to_reach"]
