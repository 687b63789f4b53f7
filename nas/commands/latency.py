"""``opennac latency NAME_OR_FILE``: latency of the fused model on a device and backend.

Example:
    $ opennac latency yolo_nas_s --device cuda --backend torch-cudagraph --precision fp16
    $ opennac latency runs/demo/variants/s.yaml --image-size 320 --json
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import CliError

BACKENDS = ("torch", "torch-cudagraph", "onnxruntime", "tensorrt")
PRECISIONS = ("fp32", "fp16", "bf16")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "latency",
        help="latency of the fused model on a device and backend",
        description=(
            "Measure the latency of a preset or architecture file: the fused model, a synthetic "
            "batch, warm-up then timed runs (CUDA events on a GPU, perf_counter on a CPU), "
            "under a per-device lock so that concurrent measurements take turns. Prints the "
            "median, p90 and coefficient of variation with the device, clocks and temperature "
            "(NVML, on NVIDIA GPUs) and library versions."
        ),
    )
    parser.add_argument("arch", metavar="NAME_OR_FILE", help="preset name or architecture file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument(
        "--backend",
        default="torch",
        help=f"one of {', '.join(BACKENDS)} (default torch)",
    )
    parser.add_argument(
        "--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)} (default fp32)"
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument(
        "--image-size", type=int, default=640, help="square input, a multiple of 32 (default 640)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="warm-up runs (default 10)")
    parser.add_argument("--iters", type=int, default=50, help="timed runs per round (default 50)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default 1 on CPU; GPU: as is)"
    )
    parser.add_argument(
        "--target",
        default=None,
        metavar="DEVICE_NAME",
        help='refuse to measure unless this device is the target (e.g. "NVIDIA T4", "cpu")',
    )
    parser.add_argument(
        "--allow-device-mismatch",
        action="store_true",
        help="measure even when the device is not --target (warns)",
    )
    parser.add_argument("--lock-dir", default=None, help="directory of the per-device lock files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from evaluators.latency import (
        LatencyError,
        check_support,
        check_target,
        device_name,
        format_result,
        measure_latency,
    )
    from evaluators.latency.backends import parse_device
    from nas.commands._common import print_json, resolve_arch

    try:
        dev = parse_device(args.device)
        check_support(args.backend, dev.type, args.precision)
    except LatencyError as exc:
        raise CliError(str(exc)) from None
    spec, name = resolve_arch(args.arch)
    try:
        check_target(
            args.target, device_name(args.device), args.allow_device_mismatch, device=dev.type
        )
        result = measure_latency(
            spec,
            device=args.device,
            precision=args.precision,
            batch_size=args.batch,
            image_size=args.image_size,
            backend=args.backend,
            warmup=args.warmup,
            iters=args.iters,
            num_threads=args.threads,
            lock_dir=args.lock_dir,
        )
    except LatencyError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json({"name": name, **result.to_dict()})
    else:
        print(format_result(name, result))
    return 0
