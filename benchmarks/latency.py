"""CPU latency benchmark: repeatability, predictor calibration, cost of one measurement.

Prints a markdown report (the figures recorded in docs/latency.md):

1. repeatability: the same preset measured three times; spread of the medians;
2. cost: wall time of one `measure_latency` call (build, fuse, warm-up, timing) and of a
   cache hit;
3. predictor: a latency table built on random architectures of a space, then checked on fresh
   ones (share within +-10 %, Kendall tau, MAPE, block coverage).

Example:
    .venv/bin/python benchmarks/latency.py            # about 2-4 minutes on 2 cores
    .venv/bin/python benchmarks/latency.py --preset yolo_nas_s --image-size 320
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
from evaluators.latency.telemetry import cpu_name  # noqa: E402
from models.presets import get_preset  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="yolo_nas_s")
    p.add_argument("--image-size", type=int, default=320)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--space", default="yolo_nas")
    p.add_argument("--width-scale", type=float, default=0.5)
    p.add_argument("--table-size", type=int, default=128, help="image size of the table")
    p.add_argument("--table-samples", type=int, default=6)
    p.add_argument("--calib-samples", type=int, default=10)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    lock_dir = tempfile.mkdtemp(prefix="opennac-bench-locks-")
    spec = get_preset(args.preset)
    load = os.getloadavg()[0]
    print(f"# CPU latency benchmark on {cpu_name()} ({os.cpu_count()} cores, load {load:.1f})")
    print(f"\ncommand: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")

    print(
        f"## Repeatability: {args.preset}, {args.image_size}px, fp32, torch, "
        f"{args.threads} thread(s), warm-up {args.warmup}, {args.iters} runs\n"
    )
    print("| run | median ms | min ms | p90 ms | cv | rounds | wall s |")
    print("|---|---|---|---|---|---|---|")
    medians, mins, walls = [], [], []
    for i in range(3):
        r = measure_latency(
            spec,
            image_size=args.image_size,
            warmup=args.warmup,
            iters=args.iters,
            num_threads=args.threads,
            lock_dir=lock_dir,
        )
        medians.append(r.median_ms)
        mins.append(r.min_ms)
        walls.append(r.wall_s)
        print(
            f"| {i + 1} | {r.median_ms:.2f} | {r.min_ms:.2f} | {r.p90_ms:.2f} | {r.cv:.3f} | "
            f"{r.repeats} | "
            f"{r.wall_s:.2f} |"
        )
    mean = sum(medians) / 3
    spread = 100 * (max(medians) - min(medians)) / mean
    min_spread = 100 * (max(mins) - min(mins)) / (sum(mins) / 3)
    print(
        f"\nspread of the medians: {spread:.1f}% of their mean ({mean:.2f} ms); "
        f"spread of the minima: {min_spread:.1f}%\n"
    )

    print("## Cost of one measurement\n")
    with tempfile.TemporaryDirectory() as tmp:
        cache = LatencyCache(tmp)
        kw = dict(
            image_size=args.image_size,
            warmup=args.warmup,
            iters=args.iters,
            num_threads=args.threads,
            lock_dir=lock_dir,
        )
        t0 = time.perf_counter()
        cache.get_or_measure(spec, **kw)
        miss = time.perf_counter() - t0
        t0 = time.perf_counter()
        cache.get_or_measure(spec, **kw)
        hit = time.perf_counter() - t0
    print(
        f"- measure_latency wall time (build + fuse + warm-up + timing): "
        f"{min(walls):.2f}-{max(walls):.2f} s for {args.warmup}+{args.iters} runs of "
        f"~{mean:.0f} ms"
    )
    print(f"- through the cache: first request {miss:.2f} s, second request {1000 * hit:.1f} ms\n")

    print(
        f"## Predictor: space {args.space} (width_scale {args.width_scale}), "
        f"{args.table_size}px, {args.table_samples} architectures in the table\n"
    )
    from search_spaces import get_space

    space = get_space(args.space, width_scale=args.width_scale)
    t0 = time.perf_counter()
    table = LatencyTable.build(
        space,
        image_size=args.table_size,
        samples=args.table_samples,
        warmup=args.warmup,
        iters=args.iters,
        num_threads=args.threads,
        lock_dir=lock_dir,
    )
    build_s = time.perf_counter() - t0
    o = table.overhead
    print(
        f"table: {len(table.entries)} blocks in {build_s:.0f} s; overhead "
        f"{o['intercept_ms']:.3f} ms + {o['scale']:.3f} x sum(blocks), "
        f"fit rmse {o['rmse_ms']:.3f} ms\n"
    )
    t0 = time.perf_counter()
    report = table.calibrate(samples=args.calib_samples, lock_dir=lock_dir)
    t1 = time.perf_counter()
    table.predict(get_preset(args.preset))
    first_ms = (time.perf_counter() - t1) * 1000
    t1 = time.perf_counter()
    for _ in range(20):
        table.predict(get_preset(args.preset))
    predict_ms = (time.perf_counter() - t1) / 20 * 1000
    print("```")
    print(report.format())
    print("```")
    print(
        f"\ncalibration took {time.perf_counter() - t0:.0f} s; one prediction of a new "
        f"architecture {first_ms:.0f} ms (meta-device decomposition), of a known one "
        f"{predict_ms:.2f} ms"
    )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
