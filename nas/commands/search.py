"""``opennac search EXPERIMENT.yaml``: run a hardware-aware search (see docs/search.md)."""

from __future__ import annotations

import argparse

from nas.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="run a search from an experiment file",
        description=(
            "Run a hardware-aware architecture search described by an experiment file and "
            "leave a run directory (trials table, frozen files, Pareto front, n/s/m/l variants). "
            "EXPERIMENT is a YAML file or the name of a shipped experiment (quickstart, "
            "coco_pose, coco_detection)."
        ),
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML file or name")
    p.add_argument("--output", default="runs", metavar="DIR",
                   help="parent folder of run directories (default: runs)")
    p.add_argument("--name", default=None,
                   help="run name, a plain folder name under --output (default: the "
                   "experiment's name)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run directory if it exists (never overwritten)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (auto, HOST:6379, ray://HOST:10001); default: "
                        "the experiment's ray.address, else the cluster of the Ray job this "
                        "runs in (RAY_ADDRESS), else a local Ray (docs/cluster.md)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.commands._common import check_output_dir
    from nas.experiment import ExperimentError
    from nas.search import SearchError, run_search

    check_output_dir(args.output, "--output folder")
    try:
        path = run_search(args.experiment, output=args.output, name=args.name,
                          resume=args.resume, address=args.address, progress=not args.quiet)
    except (ExperimentError, SearchError) as exc:
        raise CliError(str(exc)) from None
    return exit_code(path)


def exit_code(run_dir: object) -> int:
    """0 when the sweep finished, 130 when it was interrupted (resume it)."""
    from nas.rundir import RunDir

    return 0 if RunDir(str(run_dir)).meta().get("status") == "finished" else 130
