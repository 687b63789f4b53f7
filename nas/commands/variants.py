"""``opennac variants RUN_DIR [--budget n=MS ...]``: choose the n/s/m/l variants again."""

from __future__ import annotations

import argparse

from nas.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "variants",
        help="select variants of a run under latency budgets",
        description=(
            "Write RUN_DIR/variants/NAME.yaml: for each budget, the complete, feasible, "
            "full-fidelity trial with the best AP within that latency. Without --budget the "
            "experiment's budgets are used (variants.budgets, or the measured latencies of "
            "the released models with variants.match_references)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (runs/NAME)")
    p.add_argument("--budget", action="append", default=[], metavar="NAME=MS",
                   help="a latency budget in ms, e.g. --budget n=2.5 --budget s=4 (repeatable)")
    p.add_argument("--no-measure", action="store_true",
                   help="never measure a reference's latency here (use the trials' only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.experiment import ExperimentError, load_experiment
    from nas.rundir import RunDir, RunDirError
    from nas.variants import parse_budget_args, update_variants

    try:
        budgets = parse_budget_args(args.budget) if args.budget else None
        rd = RunDir.open(args.run_dir)
        exp = load_experiment(rd.experiment_yaml)
    except (ValueError, RunDirError, ExperimentError) as exc:
        raise CliError(str(exc)) from None
    df = rd.live_trials(exp.storage)
    notes: list[str] = []
    lines = update_variants(rd, exp, df, budgets=budgets, measure_missing=not args.no_measure,
                            notes=notes)
    if not lines:
        raise CliError(f"{rd.path}: no variant budget could be set ({'; '.join(notes)})")
    for name, line in lines.items():
        print(f"variant {name}: {line}")
    for note in notes:
        print(f"note: {note}")
    return 0
