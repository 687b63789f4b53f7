"""``opennac report RUN_DIR [RUN_DIR ...] [--out DIR]``: fronts, variants, figures, report.md.

Example:
    $ opennac report runs/quickstart
    $ opennac report runs/a runs/b --out reports/a-vs-b
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.cli import CliError
from nas.commands._common import check_output_dir


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise runs: front table, variants, pareto.png/.html, report.md",
        description=(
            "Print the Pareto front(s) and variants of one or more run directories and write "
            "front.csv, pareto.png, pareto.html and report.md (settings, fidelity, device, "
            "hypervolume, best trial per variant against its reference model). Works on a "
            "sweep that is still running."
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default: RUN_DIR/report for one run, ./report for several)",
    )
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="NAME=MS,AP",
        help="an extra labelled point on the figures, e.g. yolo_nas_s=3.21,0.475 (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.report import build_report
    from nas.results import ResultsError

    for path in args.runs:
        if not path.is_dir():
            raise CliError(f"{path}: no such run directory")
        if not (path / "run.json").is_file() and not (path / "trials.csv").is_file():
            raise CliError(f"{path}: not a run directory (no run.json or trials.csv)")
    out = check_output_dir(
        args.out or (args.runs[0] / "report" if len(args.runs) == 1 else Path("report")),
        "report folder")  # fmt: skip
    references = _references(args.reference)
    try:
        report = build_report(args.runs, out, references)
    except ResultsError as exc:
        raise CliError(str(exc)) from None
    print(report.text, end="")
    print(f"wrote {', '.join(str(p) for p in report.files.values())}")
    return 0


def _references(items: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        parts = values.split(",")
        try:
            ms, ap = (float(p) for p in parts)
        except ValueError:
            ms = ap = None
        if not sep or not name or ms is None:
            raise CliError(f"--reference {item!r}: expected NAME=MS,AP (e.g. yolo_nas_s=3.2,0.47)")
        out[name] = (ms, ap)
    return out
