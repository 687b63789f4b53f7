"""CPU latency benchmark: repeatability, predictor calibration, cost of one measurement.

Prints a markdown report (the figures recorded in docs/latency.md):

1. repeatability: the same preset measured three times; spread of the medians;
2. cost: wall time of one `measure_latency` call (build, fuse, warm-up, timing) and of a
   cache hit;
3. predictor: a latency table built on random architectures of a space (by default the
   quickstart's: ``yolo_nas_pose``, width 0.25, 128 px), then checked on fresh ones (share
   within +-10 %, Kendall tau, MAPE, block coverage).

Timings describe the machine as it was: run it when nothing else does (the report prints the
load average at the start and the end).

Example:
    .venv/bin/python benchmarks/latency.py            # about one minute on 2 cores
    .venv/bin/python benchmarks/latency.py --space yolo_nas --width-scale 0.5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evaluators.latency import LatencyCache, LatencyTable, measure_latency  # noqa: E402
from evaluators.latency.report import (  # noqa: E402
    RESULT_HEADERS,
    format_table_summary,
    markdown_table,
    result_row,
)
from evaluators.latency.telemetry import cpu_name  # noqa: E402
from models.presets import get_preset  # noqa: E402
from nas.commands.latency import add_timing_arguments, timing_kwargs  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="yolo_nas_s")
    add_timing_arguments(p, image_size=320, warmup=3, iters=15)
    p.add_argument("--space", default="yolo_nas_pose")
    p.add_argument("--width-scale", type=float, default=0.25)
    p.add_argument("--table-size", type=int, default=128, help="image size of the table")
    p.add_argument("--table-samples", type=int, default=16)
    p.add_argument("--table-warmup", type=int, default=5)
    p.add_argument("--table-iters", type=int, default=20)
    p.add_argument("--calib-samples", type=int, default=20)
    return p.parse_args(argv)


def repeatability(args: argparse.Namespace, timing: dict[str, object]) -> None:
    print(
        f"## Repeatability: {args.preset}, {args.image_size}px, {args.precision}, torch, "
        f"{args.threads or 1} thread(s), warm-up {args.warmup}, {args.iters} runs\n"
    )
    results = [measure_latency(get_preset(args.preset), **timing) for _ in range(3)]
    rows = [result_row(f"{args.preset} #{i + 1}", r) for i, r in enumerate(results)]
    print(markdown_table(RESULT_HEADERS["cpu"], rows))
    medians, mins = [r.median_ms for r in results], [r.min_ms for r in results]
    mean = sum(medians) / 3
    print(
        f"\nspread of the medians: {100 * (max(medians) - min(medians)) / mean:.1f}% of their "
        f"mean ({mean:.2f} ms); spread of the minima: "
        f"{100 * (max(mins) - min(mins)) / (sum(mins) / 3):.1f}%\n"
    )
    walls = [r.wall_s for r in results]
    print("## Cost of one measurement\n")
    with tempfile.TemporaryDirectory() as tmp:
        cache = LatencyCache(tmp)
        t0 = time.perf_counter()
        cache.get_or_measure(get_preset(args.preset), **timing)
        miss = time.perf_counter() - t0
        t0 = time.perf_counter()
        cache.get_or_measure(get_preset(args.preset), **timing)
        hit = time.perf_counter() - t0
    print(
        f"- measure_latency wall time (build + fuse + warm-up + timing): "
        f"{min(walls):.2f}-{max(walls):.2f} s for {args.warmup}+{args.iters} runs of "
        f"~{mean:.0f} ms"
    )
    print(f"- through the cache: first request {miss:.2f} s, second request {1000 * hit:.1f} ms\n")


def predictor(args: argparse.Namespace, lock_dir: str) -> None:
    from search_spaces import get_space

    print(
        f"## Predictor: space {args.space} (width_scale {args.width_scale}), "
        f"{args.table_size}px, {args.table_samples} architectures in the table, "
        f"{args.calib_samples} fresh ones to check\n"
    )
    space = get_space(args.space, width_scale=args.width_scale)
    t0 = time.perf_counter()
    timing = timing_kwargs(
        args, image_size=args.table_size, warmup=args.table_warmup, iters=args.table_iters
    )
    table = LatencyTable.build(space, samples=args.table_samples, lock_dir=lock_dir, **timing)
    print(f"table: {format_table_summary(table, time.perf_counter() - t0)}\n")
    t0 = time.perf_counter()
    report = table.calibrate(samples=args.calib_samples, lock_dir=lock_dir)
    calib_s = time.perf_counter() - t0
    spec = get_preset(args.preset)
    t0 = time.perf_counter()
    table.predict(spec)
    first_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    for _ in range(20):
        table.predict(spec)
    predict_ms = (time.perf_counter() - t0) / 20 * 1000
    print(f"```\n{report.format()}\n```")
    print(
        f"\ncalibration took {calib_s:.0f} s; one prediction of a new architecture "
        f"{first_ms:.0f} ms (meta-device decomposition), of a known one {predict_ms:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or 1)
    lock_dir = tempfile.mkdtemp(prefix="opennac-bench-locks-")
    load = os.getloadavg()[0]
    print(f"# CPU latency benchmark on {cpu_name()} ({os.cpu_count()} cores, load {load:.2f})")
    print(f"\ncommand: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    repeatability(args, {**timing_kwargs(args), "lock_dir": lock_dir})
    predictor(args, lock_dir)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
