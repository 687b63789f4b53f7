"""``opennac variants RUN_DIR [--budget n=MS ...] [--label L]``: choose variants again.

Example:
    $ opennac variants runs/quickstart --budget tiny=3 --budget big=6    # variants/tiny3ms_big6ms/
"""

from __future__ import annotations

import argparse
import sys

from nas.cli import CliError
from nas.commands._common import check_output_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "variants",
        help="select variants of a run under latency budgets",
        description=(
            "Write RUN_DIR/variants/NAME.yaml: for each budget, the complete, feasible, "
            "full-fidelity trial with the best AP within that latency, with its kept "
            "checkpoint and training recipe. Without --budget the experiment's budgets are "
            "used (variants.budgets, or the measured latencies of the released models with "
            "variants.match_references). Other budgets write a new set, "
            "RUN_DIR/variants/LABEL/NAME.yaml; no file is ever deleted, and a file of another "
            "budget is only replaced with --force. Exits 2 when no budget finds a trial."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (runs/NAME)")
    p.add_argument("--budget", action="append", default=[], metavar="NAME=MS",
                   help="a latency budget in ms, e.g. --budget n=2.5 --budget s=4 (repeatable)")
    p.add_argument("--label", default=None, metavar="LABEL",
                   help="folder of this set under RUN_DIR/variants (default: from the budgets, "
                        "e.g. n2.5ms_s4ms)")
    p.add_argument("--force", action="store_true",
                   help="replace variant files of the same name written with another budget")
    p.add_argument("--no-measure", action="store_true",
                   help="never measure a reference's latency here (use the trials' only)")
    p.add_argument("--target", default=None, metavar="NAME",
                   help="the latency target of an experiment with several (default: the "
                   "first); its set goes to variants/NAME/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.experiment import ExperimentError, load_experiment
    from nas.rundir import RunDir, RunDirError
    from nas.variants import VariantsError, parse_budget_args, update_variants, valid_trials

    try:
        budgets = parse_budget_args(args.budget) if args.budget else None
        rd = RunDir.open(args.run_dir)
        exp = load_experiment(rd.experiment_yaml)
    except (ValueError, RunDirError, ExperimentError) as exc:
        raise CliError(str(exc)) from None
    if args.target is not None and (len(exp.targets) < 2 or args.target not in exp.targets):
        known = ", ".join(exp.targets) if len(exp.targets) > 1 else "none: one latency target"
        raise CliError(f"--target {args.target!r}: not a latency target of {rd.path} "
                       f"(targets: {known})")
    column = f"latency_ms@{args.target}" if args.target else "latency_ms"
    check_output_dir(rd.path / "variants", "variants folder")
    if args.label is not None:
        from nas.safepath import UnsafeNameError, check_name

        try:
            check_name(args.label, "--label")  # a folder under RUN_DIR/variants
        except UnsafeNameError as exc:
            raise CliError(str(exc)) from None
    try:
        df = rd.live_trials(exp.storage_url())
    except ExperimentError as exc:  # its ${NAME} not set here, say: the files still answer
        print(f"note: {exc}; reading the run directory's trials table", file=sys.stderr)
        df = rd.read_trials()
    notes: list[str] = []
    warnings: list[str] = []
    try:
        lines = update_variants(rd, exp, df, budgets=budgets, measure_missing=not args.no_measure,
                                notes=notes, label=args.label, force=args.force,
                                warnings=warnings, target=args.target)
    except VariantsError as exc:
        raise CliError(str(exc)) from None
    if not lines:
        raise CliError(f"{rd.path}: no variant budget could be set ({'; '.join(notes)})")
    found = {n: line for n, line in lines.items() if not line.startswith("none within")}
    if not found:
        pool = valid_trials(df, column)
        if pool is None or not len(pool):
            fastest = "no complete, feasible, full-fidelity trial"
        else:
            ms = pool[column].astype(float).min()
            fastest = f"the fastest valid trial takes {ms:.3f} ms"
        empty = ", ".join(f"{n} ({line})" for n, line in lines.items())
        raise CliError(f"no trial within any budget: {empty}; {fastest}; nothing written")
    for warning in warnings:
        print(f"WARNING: {warning}")
    for name, line in lines.items():
        print(f"variant {name}: {line}")
    for note in notes:
        print(f"note: {note}")
    return 0

