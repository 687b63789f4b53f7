"""Sampler benchmark: simulated searches on the search-efficiency table (build_table.py).

For each sampler (random, nsga2, tpe, gp and ``default``: the experiment's own sampler section
with its reference points and pre-screen, `nas.replay`) it replays ``--seeds`` searches of
``--trials`` trials on the table (each proposal answered by the nearest row) and prints the
hypervolume (AP max, latency min; reference point AP 0 and 1.1 x the table's largest latency,
printed) after 12 / 25 / 50 / 75 trials with 95% Student-t intervals over the seeds, and the
trials each needs to reach random's hypervolume at the last trial count (mean curves). Each
trial is told one of its row's trainings' AP, drawn at random (``--observe seed``, default: a
search with ``fidelity.repeats: 1`` sees one seed), or the row's mean (``--observe mean``); the
hypervolume is on the rows' mean AP either way.

Then, per zero-cost proxy (the table's ``zc_*`` columns, `evaluators.zerocost`): its Kendall tau
against the table's AP, and the default sampler with that proxy's pre-screen (the pool drawn
from the table, ``--pool`` rows, the best ``--keep`` enqueued first) next to the default.

    .venv/bin/python benchmarks/sampler.py [--table benchmarks/data/sampler_table.csv]
        [--experiment experiments/sampler_bench.yaml] [--seeds 20] [--trials 75]
        [--samplers random,nsga2,tpe,gp,default] [--pool 32] [--keep 6] [--jobs 2] [--json]

``--json``: the last line is one JSON object: ``hv_at`` {sampler: {trials: {mean, lo, hi}}},
``trials_to_random75`` {sampler: trials or null}, ``kendall_tau`` {proxy: tau},
``reference_point``, ``seeds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the packages, not benchmarks/models.py, are `models`

CHECKPOINTS = (12, 25, 50, 75)


_WORLD: dict[str, Any] = {}  # what forked workers replay on (set before the pool starts)


def _replay_one(task: tuple[str, int]) -> tuple[str, int, np.ndarray, float]:
    from nas.replay import replay_curve

    name, seed = task
    w = _WORLD
    t0 = time.perf_counter()
    curve = replay_curve(w["table"], w["space"], w["plans"][name], seed, w["trials"],
                         w["reference"], observe=w["observe"])
    return name, seed, curve, time.perf_counter() - t0


def _one_thread() -> None:
    """A forked worker computes with one thread (the GP sampler's torch would take every core
    in every worker)."""
    import torch

    torch.set_num_threads(1)


def replay_all(table: Any, space: Any, plans: dict[str, Any], seeds: int, trials: int,
               reference: tuple[float, float], jobs: int = 1, observe: str = "seed"
               ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every sampler's ``seeds`` curves (stacked by seed) and its replay time summed over its
    searches; ``jobs`` > 1 runs the searches in that many forked processes (the GP sampler's
    proposals take seconds each, the others milliseconds)."""
    _WORLD.update(table=table, space=space, plans=plans, trials=trials, reference=reference,
                  observe=observe)
    tasks = [(name, s) for name in plans for s in range(seeds)]
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_one_thread) as pool:
            done = list(pool.map(_replay_one, tasks))
    else:
        done = [_replay_one(t) for t in tasks]
    curves = {name: np.stack([c for n, _, c, _ in sorted(done, key=lambda d: d[1]) if n == name])
              for name in plans}
    wall = {name: round(sum(t for n, _, _, t in done if n == name), 1) for name in plans}
    return curves, wall


def run(table_path: str, experiment: str, samplers: list[str], seeds: int, trials: int,
        pool: int, keep: int, prescreen: bool = True, jobs: int = 1,
        observe: str = "seed") -> dict[str, Any]:
    """All the numbers of the benchmark as one JSON-ready dict."""
    from nas.benchtable import read_table
    from nas.experiment import load_experiment
    from nas.replay import (
        SamplerPlan,
        kendall_tau,
        mean_ci,
        plan_of,
        trials_to_reach,
    )

    table = read_table(table_path)
    exp = load_experiment(experiment)
    space_doc = {"name": exp.space.name, **exp.space.overrides}
    if table.settings.get("space") != space_doc:
        raise ValueError(f"{table_path}: the table's space {table.settings.get('space')} is "
                         f"not the experiment's {space_doc}")
    space = exp.space_object()
    table.bind(space)
    lat = table.column("latency_ms")
    reference = (0.0, round(1.1 * float(np.nanmax(lat)), 4))
    plans: dict[str, SamplerPlan] = {s: plan_of(s, exp) for s in samplers}
    ap = table.column("ap_mean")
    taus = {}
    for col in sorted(k for k in table.rows[0] if k.startswith("zc_")):
        taus[col[3:]] = kendall_tau(table.column(col), ap)
    if prescreen:
        d = plan_of("default", exp)
        for proxy in taus:
            plans[f"default+{proxy}"] = SamplerPlan(d.kind, d.population, d.seed_references,
                                                    (proxy, pool, keep))
    curves, wall = replay_all(table, space, plans, seeds, trials, reference, jobs, observe)
    marks = [c for c in CHECKPOINTS if c <= trials] or [trials]
    hv_at = {name: {str(c): mean_ci(cv[:, c - 1]) for c in marks} for name, cv in curves.items()}
    target = float(curves["random"][:, trials - 1].mean()) if "random" in curves else None
    to_random = {name: (trials_to_reach(cv, target) if target is not None else None)
                 for name, cv in curves.items()}
    return {"table": table_path, "archs": len(table.rows), "seeds": seeds, "trials": trials,
            "reference_point": {"ap": reference[0], "latency_ms": reference[1]},
            "random_target_hv": target, "hv_at": hv_at, "trials_to_random75": to_random,
            "kendall_tau": taus, "prescreen": {"pool": pool, "keep": keep}, "observe": observe,
            "wall_s": wall}


def print_report(res: dict[str, Any]) -> None:
    ref = res["reference_point"]
    print(f"\nsampler benchmark on {res['table']} ({res['archs']} archs, {res['seeds']} seeds "
          f"x {res['trials']} trials; hypervolume of (AP max, latency_ms min) to the reference "
          f"point AP {ref['ap']}, latency {ref['latency_ms']} ms, on each row's mean AP; the "
          f"samplers were told {'one seed' if res['observe'] == 'seed' else 'the mean'} per "
          f"trial; mean [95% CI]):\n")
    marks = list(next(iter(res["hv_at"].values())))
    print("| sampler | " + " | ".join(f"HV@{m}" for m in marks)
          + f" | trials to random's HV@{res['trials']} | replay s |")
    print("|---|" + "---|" * (len(marks) + 2))
    for name, at in res["hv_at"].items():
        cells = [f"{v['mean']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}]" for v in at.values()]
        n = res["trials_to_random75"][name]
        print(f"| {name} | " + " | ".join(cells)
              + f" | {n if n is not None else '>' + str(res['trials'])} | {res['wall_s'][name]} |")
    if res["kendall_tau"]:
        print("\nzero-cost proxies, Kendall tau vs the table's AP: " + ", ".join(
            f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in res["kendall_tau"].items()))
        pre = res["prescreen"]
        print(f"(default+<proxy>: the default with that proxy's pre-screen, pool {pre['pool']}, "
              f"keep {pre['keep']})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(ROOT / "benchmarks" / "data" / "sampler_table.csv"))
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "sampler_bench.yaml"),
                    help="whose sampler section is 'default' (its space must be the table's)")
    ap.add_argument("--samplers", default="random,nsga2,tpe,gp,default",
                    help="comma-separated: random, nsga2, tpe, gp, default (+<proxy> for a "
                         "pre-screen variant)")
    ap.add_argument("--seeds", type=int, default=20, help="searches per sampler (default 20)")
    ap.add_argument("--trials", type=int, default=75, help="trials per search (default 75)")
    ap.add_argument("--pool", type=int, default=32, help="pre-screen pool (table rows)")
    ap.add_argument("--keep", type=int, default=6, help="pre-screened trials enqueued")
    ap.add_argument("--no-prescreen", action="store_true", help="skip the proxy comparison")
    ap.add_argument("--jobs", type=int, default=1,
                    help="simulated searches run at once, in forked processes (default 1)")
    ap.add_argument("--observe", choices=("seed", "mean"), default="seed",
                    help="AP told to the sampler: one training's, drawn per trial (default; what "
                         "a search with fidelity.repeats 1 sees), or the row's mean; the "
                         "hypervolume is always on the mean")
    ap.add_argument("--json", action="store_true", help="last line: the numbers as JSON")
    args = ap.parse_args(argv)
    from nas.benchtable import TableError
    from nas.experiment import ExperimentError

    for key, value, low in (("--seeds", args.seeds, 2), ("--trials", args.trials, 2),
                            ("--pool", args.pool, 1), ("--keep", args.keep, 1),
                            ("--jobs", args.jobs, 1)):
        if value < low:
            ap.error(f"{key}: expected an integer >= {low}, got {value}")
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    try:
        res = run(args.table, args.experiment, samplers, args.seeds, args.trials,
                  args.pool, args.keep, prescreen=not args.no_prescreen, jobs=args.jobs,
                  observe=args.observe)
    except (TableError, ExperimentError, ValueError) as exc:
        ap.exit(2, f"sampler: {exc}\n")
    print_report(res)
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
