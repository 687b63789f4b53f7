"""``opennac latency NAME_OR_FILE``: latency of the fused model on a device and backend.

Also the device and timing flags that ``opennac latency-table build`` and the latency
benchmark scripts share: `add_timing_arguments` declares them, `timing_kwargs` turns them into
the keyword arguments of `measure_latency` and `LatencyTable.build`. (They live here, not in
``evaluators.latency``, so that declaring them imports no PyTorch.)

Example:
    $ opennac latency yolo_nas_s --device cuda --backend torch-cudagraph --precision fp16
    $ opennac latency runs/demo/variants/s.yaml --image-size 320 --json
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import CliError

# Backends and precisions are the registry's (`evaluators.latency.backends`), checked when the
# command runs: building the parser does not import torch.


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
    parser.add_argument(
        "--backend",
        default="torch",
        help="a registered latency backend: torch, torch-cudagraph, onnxruntime, tensorrt or one "
        "a plug-in registered (default torch; an unknown name lists them)",
    )
    add_timing_arguments(parser)
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


def add_timing_arguments(
    parser: argparse.ArgumentParser,
    device: str = "cpu",
    precision: str = "fp32",
    image_size: int = 640,
    warmup: int = 10,
    iters: int = 50,
) -> None:
    """Declare ``--device``, ``--precision``, ``--batch``, ``--image-size``, ``--warmup``,
    ``--iters`` and ``--threads`` (defaults as given).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_timing_arguments(p, image_size=320)
        >>> timing_kwargs(p.parse_args(["--iters", "5"]), warmup=2)["iters"]
        5
    """
    parser.add_argument("--device", default=device, help=f"cpu, cuda or cuda:N (default {device})")
    parser.add_argument(
        "--precision",
        default=precision,
        help=f"fp32, fp16, bf16 or int8 (ONNX Runtime on CPU), as the backend supports "
        f"(default {precision})",
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument(
        "--image-size",
        type=int,
        default=image_size,
        help=f"square input, a multiple of 32 (default {image_size})",
    )
    parser.add_argument(
        "--warmup", type=int, default=warmup, help=f"warm-up runs (default {warmup})"
    )
    parser.add_argument(
        "--iters", type=int, default=iters, help=f"timed runs per round (default {iters})"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default 1 on CPU; GPU: as is)"
    )


def timing_kwargs(args: argparse.Namespace, **changes: Any) -> dict[str, Any]:
    """``device``, ``precision``, ``batch_size``, ``image_size``, ``warmup``, ``iters`` and
    ``num_threads`` from the flags of `add_timing_arguments`, with ``changes`` applied."""
    kwargs = {
        "device": args.device,
        "precision": args.precision,
        "batch_size": args.batch,
        "image_size": args.image_size,
        "warmup": args.warmup,
        "iters": args.iters,
        "num_threads": args.threads,
    }
    unknown = sorted(set(changes) - set(kwargs))
    if unknown:
        raise TypeError(f"timing_kwargs: unknown keys {unknown}")
    return {**kwargs, **changes}


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
            spec, backend=args.backend, lock_dir=args.lock_dir, **timing_kwargs(args)
        )
    except LatencyError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json({"name": name, **result.to_dict()})
    else:
        print(format_result(name, result))
    return 0
