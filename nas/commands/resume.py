"""``opennac resume RUN_DIR``: continue an interrupted sweep to its budget."""

from __future__ import annotations

import argparse

from nas.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resume",
        help="continue an interrupted search",
        description=(
            "Continue the sweep of RUN_DIR with the experiment it was started with: trials "
            "left running are run again under the same numbers, then new trials are asked "
            "until the budget is reached. Finished trials are kept, never repeated."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (runs/NAME)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (auto, HOST:6379, ray://HOST:10001); default: "
                        "the experiment's ray.address, else the cluster of the Ray job this "
                        "runs in (RAY_ADDRESS), else a local Ray (docs/cluster.md)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.commands._common import check_output_dir
    from nas.commands.search import exit_code
    from nas.experiment import ExperimentError
    from nas.search import SearchError, resume_search

    if Path(args.run_dir).exists():  # a missing one is resume_search's own error
        check_output_dir(args.run_dir, "run directory")
    try:
        path = resume_search(args.run_dir, address=args.address, progress=not args.quiet)
    except (ExperimentError, SearchError) as exc:
        raise CliError(str(exc)) from None
    return exit_code(path)
