"""``opennac status RUN_DIR``: where a sweep stands (works while it runs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nas.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status",
        help="show the state of a search",
        description=(
            "Show a run directory's state: trials done / running / failed against the budget, "
            "the Pareto front so far and the variant files. Reads the study, so it is current "
            "while the sweep runs."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (runs/NAME)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--front", type=int, default=10, metavar="N",
                   help="show at most N front members (default 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.commands._common import print_json
    from nas.experiment import ExperimentError, load_experiment
    from nas.noise import mark_ties, run_noise
    from nas.progress import fmt_duration, front_table
    from nas.rundir import RunDir, RunDirError
    from nas.search import pareto

    try:
        rd = RunDir.open(args.run_dir)
        exp = load_experiment(rd.experiment_yaml)
    except (RunDirError, ExperimentError) as exc:
        raise CliError(str(exc)) from None
    meta = rd.meta()
    if meta.get("status") == "running" and not _held(rd.lock_file):
        meta["status"] = "stopped (no sweep holds the run directory; resume it)"
    try:
        df = rd.live_trials(exp.storage_url())
    except ExperimentError as exc:  # its ${NAME} not set here, say: the files still answer
        print(f"note: {exc}; reading the run directory's trials table", file=sys.stderr)
        df = rd.read_trials()
    counts = {str(k): int(v) for k, v in df["status"].value_counts().items()}
    running = [int(n) for n in df.loc[df["status"] == "RUNNING", "number"]]
    band = run_noise(df, exp)
    front = mark_ties(pareto(df, exp.objectives), band)
    elapsed = sum(float(s.get("elapsed_s") or 0) for s in meta.get("sessions") or [])
    finished = len(df) - len(running)
    info: dict[str, Any] = {
        "run_dir": str(rd.path),
        "name": rd.name,
        "status": meta.get("status"),
        "sessions": len(meta.get("sessions") or []),
        "elapsed_s": round(elapsed, 3),
        "budget_trials": exp.budget.trials,
        "budget_wall_time_s": exp.budget.wall_time_s,
        "finished": finished,
        "running": running,
        "counts": counts,
        "front": [
            {k: _plain(r.get(k)) for k in ("number", "ap", "ap_ci", "tied_with", "latency_ms",
                                           "lat_cv", "params", "arch_file")}
            for _, r in front.iterrows()
        ],
        "noise": band.to_dict(),
        "variants": meta.get("variants") or {},
        "variant_budgets_ms": meta.get("variant_budgets_ms") or {},
    }
    if args.json:
        print_json(info)
        return 0
    budget = f"/{exp.budget.trials}" if exp.budget.trials else ""
    tally = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items()) if k != "RUNNING")
    print(f"run {rd.name}: {meta.get('status')} ({info['sessions']} session(s), "
          f"{fmt_duration(elapsed)} recorded)  {rd.path}")
    print(f"experiment: {exp.task}, space {exp.space.name}, sampler {exp.sampler.type}, "
          f"scheduler {exp.scheduler.type}, concurrency {exp.budget.concurrency}")
    print(f"trials: {finished}{budget} finished ({tally or 'none'}); running {len(running)}"
          + (f" {running}" if running else ""))
    print(f"noise: {band.describe()}")
    if len(front):
        print(f"Pareto front ({len(front)}):")
        print(front_table(front, limit=args.front))
    else:
        print("Pareto front: empty so far")
    for name, path in info["variants"].items():
        ms = info["variant_budgets_ms"].get(name)
        print(f"variant {name}: {rd.path / path}" + (f" (budget {ms:.2f} ms)" if ms else ""))
    return 0


def _held(lock_file: Any) -> bool:
    """Whether a sweep holds the run directory's lock now."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _plain(value: Any) -> Any:
    if value is None or str(value) in ("<NA>", "nan"):
        return None
    return value.item() if hasattr(value, "item") else value
