"""``opennac latency-table build|check``: the per-block latency predictor of a search space.

Example:
    $ opennac latency-table build --space yolo_nas_pose --device cuda --samples 12 \
          --out tables/pose-h100.json
    $ opennac latency-table check tables/pose-h100.json --samples 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nas.cli import CliError
from nas.commands._common import check_output_file, print_help_without_action
from nas.commands.latency import add_timing_arguments, timing_kwargs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "latency-table",
        help="per-block latency predictor of a search space: build, check",
        description=(
            "A latency lookup table for a search space on one device: every distinct block "
            "(stem, backbone stages, SPP, neck stages, head levels) of random architectures, "
            "timed where it runs inside the whole model, plus an overhead line fitted on the "
            "whole models; unseen blocks are estimated from measured blocks of the same kind "
            "and position. 'build' makes the table, 'check' reports how well it predicts fresh "
            "random architectures (share within +-10%, Kendall tau)."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="time the blocks of random architectures of a space and save the table",
        description="Build a latency table on this machine's device and save it as JSON.",
    )
    build.add_argument("--space", required=True, help="search space name (e.g. yolo_nas_pose)")
    build.add_argument(
        "--space-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="space override, repeatable (e.g. width_scale=0.25); VALUE is read as YAML",
    )
    add_timing_arguments(build, warmup=5, iters=20)
    build.add_argument(
        "--backend", default="torch", help="torch or torch-cudagraph (default torch)"
    )
    build.add_argument("--samples", type=int, default=16, help="random architectures (default 16)")
    build.add_argument("--seed", type=int, default=0, help="first sampling seed (default 0)")
    build.add_argument(
        "--references", action="store_true", help="also time the space's released models"
    )
    build.add_argument("--lock-dir", default=None, help="directory of the device lock files")
    build.add_argument(
        "--out", default=None, help="output file (default latency-table-SPACE-DEVICE-SIZE.json)"
    )
    build.set_defaults(func=run_build)

    check = actions.add_parser(
        "check",
        help="calibration report of a table on fresh random architectures",
        description=(
            "Measure N random architectures of the table's space on this machine's device "
            "(which must be the table's) and compare with the table's predictions."
        ),
    )
    check.add_argument("table", metavar="FILE", help="latency table JSON file")
    check.add_argument("--samples", type=int, default=10, help="architectures (default 10)")
    check.add_argument(
        "--seed", type=int, default=10_000, help="first sampling seed (default 10000)"
    )
    check.add_argument(
        "--allow-device-mismatch", action="store_true", help="check on another device (warns)"
    )
    check.add_argument("--lock-dir", default=None, help="directory of the device lock files")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(func=run_check)
    print_help_without_action(parser)


def space_overrides(items: list[str]) -> dict[str, Any]:
    """Repeated ``--space-arg KEY=VALUE`` as a dict of space overrides (VALUE read as YAML);
    CliError quotes a bad item.

    Example:
        >>> space_overrides(["width_scale=0.25", "tiers=[n]"])
        {'width_scale': 0.25, 'tiers': ['n']}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--space-arg {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CliError(f"--space-arg {item!r}: VALUE is not valid YAML") from None
    return out


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise CliError(f"{name}: expected a positive integer, got {value}")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_build(args: argparse.Namespace) -> int:
    from evaluators.latency import LatencyError, LatencyTable
    from evaluators.latency.backends import check_support, parse_device
    from evaluators.latency.report import format_table_summary

    _positive("--samples", args.samples)
    _positive("--iters", args.iters)
    _positive("--batch", args.batch)
    if args.image_size < 32 or args.image_size % 32:
        raise CliError(f"--image-size: expected a multiple of 32, got {args.image_size}")
    if args.backend not in ("torch", "torch-cudagraph"):
        raise CliError(f"--backend: tables use torch or torch-cudagraph, got {args.backend!r}")
    try:
        dev = parse_device(args.device)
        check_support(args.backend, dev.type, args.precision)
    except LatencyError as exc:
        raise CliError(str(exc)) from None
    overrides = space_overrides(args.space_arg)
    try:
        from search_spaces import get_space

        space = get_space(args.space, **overrides)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out = check_output_file(
        Path(args.out or f"latency-table-{args.space}-{dev.type}-{args.image_size}.json"),
        "--out file")  # fmt: skip
    try:
        table = LatencyTable.build(
            space,
            samples=args.samples,
            seed=args.seed,
            backend=args.backend,
            lock_dir=args.lock_dir,
            references=args.references,
            progress=_progress,
            **timing_kwargs(args),
        )
    except LatencyError as exc:
        raise CliError(str(exc)) from None
    table.save(out)
    print(f"{out}: {format_table_summary(table)}")
    return 0


def _space_of(table: Any) -> Any:
    """The search space a saved table was built on (name and overrides from its context)."""
    from search_spaces import get_space

    name = table.context.get("space")
    try:
        return get_space(name, **(table.context.get("space_overrides") or {}))
    except (KeyError, ValueError) as exc:
        raise CliError(f"{name!r}: cannot rebuild the table's search space ({exc})") from None


def run_check(args: argparse.Namespace) -> int:
    from evaluators.latency import LatencyError, LatencyTable
    from nas.commands._common import print_json

    _positive("--samples", args.samples)
    try:
        table = LatencyTable.load(args.table)
        report = table.calibrate(
            space=_space_of(table),
            samples=args.samples,
            seed=args.seed,
            lock_dir=args.lock_dir,
            allow_mismatch=args.allow_device_mismatch,
            progress=None if args.json else _progress,
        )
    except LatencyError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.format())
    return 0
