"""``opennac calibrate EXPERIMENT.yaml``: does the short training rank like a long one?"""

from __future__ import annotations

import argparse

from nas.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="check the search's short training against a long one (Kendall tau, seed sd)",
        description=(
            "Sample N architectures of the experiment's space (its reference points first), "
            "train each at the experiment's fidelity with K seeds and at --long-epochs (same "
            "data, same trainable as the search, as Ray tasks), and write calibration.json and "
            "calibration.png into --output. Prints Kendall tau and Spearman between short and "
            "long AP, the fraction of pairs the short run orders right and the seed sd of AP at "
            "both fidelities. Resumable: run it again with the same --output to continue. "
            "Point a search at the file with `calibration: PATH` and its report quotes it."
        ),
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML file or name")
    p.add_argument("--archs", type=int, default=12, metavar="N",
                   help="architectures to train (>= 3; default 12)")
    p.add_argument("--seeds", type=int, default=2, metavar="K",
                   help="seeds per architecture at the experiment's fidelity (default 2)")
    p.add_argument("--long-epochs", type=int, default=None, metavar="E",
                   help="epochs of the long run (default: 3x the experiment's)")
    p.add_argument("--long-seeds", type=int, default=1, metavar="M",
                   help="seeds per architecture at --long-epochs (default 1; 2 or more give "
                        "the seed sd at the long fidelity)")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="output folder (default: runs/<experiment name>-calibration)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="trainings at a time (default: the experiment's budget.concurrency)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (auto, ray://HOST:10001); default: local Ray")
    p.add_argument("--json", action="store_true",
                   help="end with one line of JSON (kendall_tau, spearman, seed_sd_short, "
                        "seed_sd_long, pairs_correct, archs, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.calibrate import CalibrationError, run_calibration, summary
    from nas.commands._common import check_output_dir, print_json
    from nas.experiment import ExperimentError, load_experiment

    try:
        exp = load_experiment(args.experiment)
        out = Path(args.output) if args.output else Path("runs") / f"{exp.name}-calibration"
        check_output_dir(out, "--output folder")
        cal = run_calibration(exp, out, archs=args.archs, seeds=args.seeds,
                              long_epochs=args.long_epochs, long_seeds=args.long_seeds,
                              concurrency=args.concurrency, address=args.address)
    except (ExperimentError, CalibrationError) as exc:
        raise CliError(str(exc)) from None
    print(table(cal))
    print(f"\nKendall tau {_f(cal['kendall_tau'])}, Spearman {_f(cal['spearman'])}, pairs ordered "
          f"right {_f(cal['pairs_correct'])} of {cal['pairs']} ({cal['archs']} archs, "
          f"{cal['short_epochs']} vs {cal['long_epochs']} epochs)")
    print(f"seed sd of AP: {_f(cal['seed_sd_short'])} at {cal['short_epochs']} epochs "
          f"({cal['seed_dof_short']} dof), {_f(cal['seed_sd_long'])} at {cal['long_epochs']} "
          f"({cal['seed_dof_long']} dof)")
    if cal.get("missing"):
        print(f"note: {cal['missing']} training(s) failed or are missing; run again to retry")
    print(f"wrote {cal['file']} and its .png")
    if args.json:
        print_json(summary(cal))
    return 0


def table(cal: dict) -> str:
    """Per architecture: label, params, short APs (mean), long APs (mean)."""
    lines = [f"  {'arch':<12}  {'label':<16}  {'params':>7}  {'short_ap':>8}  {'long_ap':>8}  "
             "seeds (short | long)"]
    for a in cal["per_arch"]:
        seeds = " ".join(f"{v:.3f}" for v in a["short_aps"]) + " | " + " ".join(
            f"{v:.3f}" for v in a["long_aps"])
        lines.append(f"  {a['arch_id'][:12]:<12}  {(a['label'] or '-'):<16}  "
                     f"{a['params'] / 1e6:>6.2f}M  {_f(a['short_mean']):>8}  "
                     f"{_f(a['long_mean']):>8}  {seeds}")
    return "\n".join(lines)


def _f(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"  # type: ignore[arg-type]
