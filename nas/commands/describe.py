"""``opennac describe NAME_OR_FILE``: size, cost and layout of an architecture.

Example:
    $ opennac describe yolo_nas_s --image-size 640
    $ opennac describe runs/demo/variants/s.yaml --json
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="parameters, GFLOPs and per-stage layout of a preset or architecture file",
        description=(
            "Describe a preset (e.g. yolo_nas_s) or a frozen architecture file (.yaml/.json): "
            "arch_id, task, parameters in training form and fused, GFLOPs of the fused model "
            "(GFLOPs = 2 x GMACs, multiply-adds of conv/linear layers counted once), and a "
            "per-stage summary."
        ),
    )
    parser.add_argument("arch", metavar="NAME_OR_FILE", help="preset name or architecture file")
    parser.add_argument(
        "--image-size",
        type=int,
        default=640,
        metavar="PIXELS",
        help="square input size for GFLOPs, a multiple of 32 (default 640)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def describe_dict(spec: Any, name: str, image_size: int) -> dict[str, Any]:
    """The JSON form printed by ``--json``."""
    from models.complexity import breakdown, complexity

    try:
        cost = complexity(spec, image_size)
        parts = breakdown(spec, image_size)
    except ValueError as exc:
        raise CliError(f"--image-size: {exc}") from None
    out: dict[str, Any] = {
        "name": name,
        "arch_id": spec.arch_id,
        "task": spec.task,
        "num_classes": spec.num_classes,
        "num_keypoints": spec.num_keypoints,
        "image_size": image_size,
        "params": cost.params,
        "fused_params": cost.fused_params,
        "released_form_params": cost.released_form_params,
        "gmacs": cost.gmacs,
        "gflops": cost.gflops,
        "stages": [],
    }
    kinds = {f"stage{i + 1}": s for i, s in enumerate(spec.backbone.stages)}
    kinds.update({n: getattr(spec.neck, n) for n in ("up1", "up2", "down1", "down2")})
    for p in parts:
        stage = kinds.get(p.name)
        out["stages"].append(
            {
                "name": p.name,
                "kind": stage.kind if stage else None,
                "depth": stage.depth if stage else None,
                "hidden": stage.hidden if stage else None,
                "out_channels": p.out_channels,
                "stride": p.stride,
                "params": p.params,
                "fused_params": p.fused_params,
                "gflops": 2 * p.gmacs,
            }
        )
    return out


def _table(info: dict[str, Any]) -> str:
    lines = [
        f"{info['name']}  ({info['task']}, {info['num_classes']} "
        + ("class" if info["num_classes"] == 1 else "classes")
        + (f", {info['num_keypoints']} keypoints)" if info["task"] == "pose" else ")"),
        f"arch_id       {info['arch_id']}",
        f"params        {info['params']:,} (training form)",
        f"              {info['released_form_params']:,} as super-gradients counts it "
        "(its QARepVGG blocks also hold an unused fused conv)",
        f"fused params  {info['fused_params']:,}",
        f"GFLOPs        {info['gflops']:.2f} at {info['image_size']}x{info['image_size']} "
        f"(= 2 x {info['gmacs']:.2f} GMACs, fused model, batch 1)",
        "",
        f"{'part':<7} {'kind':<4} {'depth':>5} {'hidden':>6} {'out':>5} {'stride':>6} "
        f"{'params':>11} {'GFLOPs':>7}",
    ]
    for s in info["stages"]:
        lines.append(
            f"{s['name']:<7} {s['kind'] or '-':<4} {s['depth'] or '-':>5} {s['hidden'] or '-':>6} "
            f"{s['out_channels']:>5} {s['stride']:>6} {s['params']:>11,} {s['gflops']:>7.2f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from nas.commands._common import print_json, resolve_arch

    spec, name = resolve_arch(args.arch)
    info = describe_dict(spec, name, args.image_size)
    if args.json:
        print_json(info)
    else:
        print(_table(info))
    return 0
