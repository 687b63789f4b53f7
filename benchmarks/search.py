"""Search benchmark: the quickstart's wall time, where the time goes, and 1 vs 2 concurrent trials.

Runs real sweeps (local Ray, real training and latency) in a temporary folder:

1. the quickstart experiment as shipped: wall time (Ray start-up included), and the share of
   the trial slots (wall x concurrency) not spent in training or latency measurement, i.e. the
   framework's overhead (Ray, Optuna, files, model build, data loading set-up), per trial;
2. the same experiment cut to ``--trials`` trials, run with concurrency 1 and then 2:
   throughput in trials per minute;
3. the driver's own time (`nas.drivertime`, run.json ``sessions[].timing``): start-up (setup,
   Ray, until Tune asks for the first trial), per trial (ask: sampling and parameter writes;
   tell: study writes; files: table, frozen file, progress; results: per-epoch heartbeat) and
   the finish (Tune/Ray shut-down, table, variants with any reference latency still to
   measure, plots).

``--epochs N`` shortens every training (the driver's figures do not depend on it, the wall
time does).

``--driver-only N`` measures the driver alone, without Ray or training: a real session of the
quickstart experiment (its set-up, study, searcher, after-trial files, finish with variants and
plots) is fed N made-up trial results (AP and latency from the parameter count, so the
references' latencies are in order and nothing is measured), once with the study in SQLite
(the storage before ``opennac-run/3``) and once in the journal file, back to back.

    .venv/bin/python benchmarks/search.py [--trials 6] [--epochs N] [--skip-quickstart]
                                          [--skip-concurrency] [--json OUT]
    .venv/bin/python benchmarks/search.py --driver-only 24
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/models.py would shadow the `models` package: the checkout first
sys.path[:] = [str(ROOT)] + [p for p in sys.path
                             if Path(p or ".").resolve() != ROOT / "benchmarks"]


def run(exp: dict[str, Any], out: Path) -> dict[str, Any]:
    """One sweep; its wall time and where the trial slots' time went."""
    import pandas as pd

    from nas.search import run_search

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_dir = run_search(exp, output=out, progress=False)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    timing = json.loads((run_dir / "run.json").read_text())["sessions"][-1].get("timing") or {}
    df = pd.read_parquet(run_dir / "trials.parquet")
    conc = exp["budget"]["concurrency"]
    train = float(df["train_s"].fillna(0).sum())
    lat = float(df["latency_s"].fillna(0).sum())
    trial_wall = float(df["wall_s"].fillna(0).sum())
    n = len(df)
    capacity = wall * conc
    return {
        "trials": n,
        "concurrency": conc,
        "wall_s": round(wall, 1),
        "train_s": round(train, 1),
        "latency_s": round(lat, 1),
        "outside_share": round(1 - (train + lat) / capacity, 3),
        "overhead_per_trial_s": round((capacity - train - lat) / n, 2),
        "in_trial_overhead_s": round((trial_wall - train - lat) / n, 2),
        "trials_per_min": round(60 * n / wall, 2),
        "loadavg_1m": f"{load0:.1f}->{load1:.1f}",  # other work on the machine skews timings
        "statuses": df["status"].value_counts().to_dict(),
        "startup_s": timing.get("startup_s"),
        "finish_s": timing.get("finish_s"),
        "driver_per_trial_s": (timing.get("per_trial") or {}).get("driver_s"),
        "timing": timing,
    }


def driver_only(base: dict[str, Any], out: Path, trials: int, storage: str) -> dict[str, Any]:
    """The driver's own time for ``trials`` made-up trials (see the module docstring)."""
    from ray.tune.search import Searcher

    from nas.experiment import dump_experiment, load_experiment
    from nas.rundir import RunDir
    from nas.search import _Session

    name = f"driver-{storage}"
    doc = dict(base, name=name, budget={"trials": trials, "concurrency": 1})
    if storage == "sqlite":
        doc["storage"] = f"sqlite:///{(out / name / 'study.db').resolve()}"
    exp = load_experiment(doc)
    rd = RunDir.create(out / name, name)
    dump_experiment(exp, rd.experiment_yaml)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    session = _Session(rd, exp, None, progress=False)
    session.sessions, session.session = [{"session": 1}], 1
    with session.clock.phase("startup", "setup"):
        session._setup(elapsed_before=0.0)
    searcher = session.searcher
    for i in range(trials + 1):
        config = searcher.suggest(f"t{i}")
        if config is None or config == Searcher.FINISHED:
            break
        params = float(config["arch"].get("params") or 0) or _params(config)
        rec = {"number": config["number"], "status": "COMPLETE", "arch_id": config["arch_id"],
               "ap": round(0.05 + 0.01 * (params / 1e6) ** 0.5, 6),
               "latency_ms": round(1.0 + params / 2e5, 4), "params": params, "lat_cv": 0.01,
               "latency_stable": True, "epochs": 30, "epochs_done": 30, "full_fidelity": True,
               "reference": config["reference"], "train_s": 1.0, "latency_s": 0.1,
               "wall_s": 1.2, "final": True,
               **{f"param_{k}": v for k, v in config["params"].items()}}
        for epoch in (1, 2, 3):  # per-epoch results (the heartbeat)
            searcher.on_trial_result(f"t{i}", {**rec, "final": False, "epoch": epoch})
        searcher.on_trial_complete(f"t{i}", rec)
    session._last_told = time.monotonic()
    session._finish("finished")
    wall = time.perf_counter() - t0
    timing = session.clock.summary()
    return {"trials": timing["trials"], "wall_s": round(wall, 1), "storage": storage,
            "startup_s": timing["startup_s"], "finish_s": timing["finish_s"],
            "driver_per_trial_s": timing["per_trial"]["driver_s"], "timing": timing,
            "loadavg_1m": f"{load0:.1f}->{os.getloadavg()[0]:.1f}"}


def _params(config: dict[str, Any]) -> float:
    from models.build import build_model
    from models.spec import ArchSpec

    model = build_model(ArchSpec.from_dict(config["arch"]))
    return float(sum(p.numel() for p in model.parameters()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=6, help="trials of the 1-vs-2 comparison")
    p.add_argument("--epochs", type=int, default=None, help="epochs per training")
    p.add_argument("--skip-quickstart", action="store_true")
    p.add_argument("--skip-concurrency", action="store_true", help="no 1-vs-2 comparison")
    p.add_argument("--driver-only", type=int, default=None, metavar="N",
                   help="the driver alone on N made-up trials, SQLite vs journal (no Ray)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the runs")
    base = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    if args.epochs is not None:
        base["fidelity"] = dict(base["fidelity"], epochs=args.epochs)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="opennac-bench-") as tmp:
        if args.driver_only is not None:
            driver_only(base, Path(tmp) / "warm-up", 2, "journal")  # imports, caches: not timed
            for storage in ("sqlite", "journal"):
                results[f"driver_{storage}"] = driver_only(base, Path(tmp), args.driver_only,
                                                           storage)
            args.skip_quickstart = args.skip_concurrency = True
        if not args.skip_quickstart:
            results["quickstart"] = run(dict(base, name="bench-quickstart"), Path(tmp))
        for conc in () if args.skip_concurrency else (1, 2):
            exp = dict(
                base,
                name=f"bench-c{conc}",
                seed_references=False,
                budget={"trials": args.trials, "concurrency": conc},
            )
            results[f"concurrency_{conc}"] = run(exp, Path(tmp))
    cols = (
        "trials",
        "concurrency",
        "wall_s",
        "train_s",
        "latency_s",
        "outside_share",
        "overhead_per_trial_s",
        "in_trial_overhead_s",
        "trials_per_min",
        "startup_s",
        "finish_s",
        "driver_per_trial_s",
        "loadavg_1m",
    )
    sweeps = {k: r for k, r in results.items() if not k.startswith("driver_")}
    if sweeps:
        print("| run | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
    for name, r in sweeps.items():
        print(f"| {name} | " + " | ".join(str(r[c]) for c in cols) + " |")
    print("\n### The driver's own time (seconds; per trial: means)\n")
    print("| run | startup | per trial | finish | load average |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        t = r["timing"]

        def parts(d: dict[str, Any]) -> str:
            return ", ".join(f"{k} {v:.2f}" for k, v in d.items())

        print(f"| {name} | {t.get('startup_s', 0):.1f} ({parts(t.get('startup', {}))}) | "
              f"{parts(t.get('per_trial', {}))} | "
              f"{t.get('finish_s', 0):.1f} ({parts(t.get('finish', {}))}) | "
              f"{r['loadavg_1m']} |")
    if "concurrency_1" in results:
        speedup = (
            results["concurrency_2"]["trials_per_min"] / results["concurrency_1"]["trials_per_min"]
        )
        print(f"\nthroughput 2 vs 1 concurrent trials: x{speedup:.2f}")
        results["speedup_2_vs_1"] = round(speedup, 2)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
