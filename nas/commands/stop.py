"""``opennac stop RUN_DIR``: ask the sweep running in a run directory to stop cleanly."""

from __future__ import annotations

import argparse

from nas.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stop",
        help="stop a running search cleanly",
        description=(
            "Ask the sweep running in RUN_DIR (on this machine or on a cluster's head, through "
            "the shared run directory) to stop as on Ctrl+C: it stops within a few seconds, "
            "its running trials keep their last per-epoch checkpoint and `opennac resume "
            "RUN_DIR` continues them. Exit 1 when no sweep runs there."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (runs/NAME)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for the sweep to end (default: do not wait)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from nas.runlock import RunLock, describe, request_stop

    path = Path(args.run_dir)
    if not (path / "run.json").is_file():
        raise CliError(f"{path}: not a run directory (no run.json)")
    holder = request_stop(path)
    if holder is None:
        print(f"{path}: no sweep is running")
        return 1
    print(f"{path}: stop requested from {describe(holder)}")
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        try:
            RunLock(path).acquire().release()
        except RuntimeError:
            time.sleep(0.5)
            continue
        print(f"{path}: stopped; continue with `opennac resume {path}`")
        return 0
    return 0 if args.wait <= 0 else 1
