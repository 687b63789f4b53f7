"""Latency table of the released presets and the predictor's calibration, on one device.

Run by ``scripts/gpu_check.sh`` on a machine with an NVIDIA GPU. It needs only PyTorch and
PyYAML (and nvidia-ml-py for clocks and temperature): no Ray, Optuna or pycocotools. Prints
markdown; with ``--out DIR`` (default ``$OUT``) also writes ``gpu_latency.md`` and
``gpu_latency.json`` after every section, so a run cut short still leaves its table.

Examples:
    python3 benchmarks/gpu_latency.py                       # GPU: 7 presets, 640, fp16
    python3 benchmarks/gpu_latency.py --device cpu --presets yolo_nas_tiny --image-size 64 \
        --precision fp32 --backends torch --space-arg width_scale=0.25 --table-samples 2 \
        --calib-samples 2 --iters 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evaluators.latency import LatencyTable, measure_latency  # noqa: E402
from evaluators.latency.report import (  # noqa: E402
    RESULT_HEADERS,
    format_table_summary,
    markdown_row,
    markdown_table,
    result_row,
)
from evaluators.latency.telemetry import Nvml, library_versions  # noqa: E402
from models.build import build_model, fuse  # noqa: E402
from models.presets import RELEASED, get_preset  # noqa: E402
from nas.cli import CliError  # noqa: E402
from nas.commands.latency import add_timing_arguments, timing_kwargs  # noqa: E402
from nas.commands.latency_table import space_overrides  # noqa: E402

SPACE_PRESETS = {"yolo_nas": ("yolo_nas_s", "yolo_nas_m", "yolo_nas_l")}
SPACE_PRESETS["yolo_nas_pose"] = tuple(n for n in RELEASED if n.startswith("yolo_nas_pose"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(p, device="cuda", precision="fp16", warmup=20, iters=100)
    p.add_argument("--presets", default=",".join(RELEASED), help="comma-separated names")
    p.add_argument("--backends", default="torch,torch-cudagraph")
    p.add_argument("--spaces", default="yolo_nas_pose,yolo_nas", help="'' to skip the predictor")
    p.add_argument("--space-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--table-backend",
        default=None,
        help="backend of the predictor's table: torch (blocks timed in context) or "
        "torch-cudagraph (blocks timed alone, each in its own graph); default "
        "torch-cudagraph on a GPU, torch on a CPU",
    )
    p.add_argument("--table-samples", type=int, default=10)
    p.add_argument("--calib-samples", type=int, default=8)
    p.add_argument("--table-iters", type=int, default=30)
    p.add_argument("--budget-s", type=float, default=300.0, help="skip sections after this")
    p.add_argument("--out", default=os.environ.get("OUT") or None)
    return p.parse_args(argv)


class Report:
    """Markdown lines and a JSON document, flushed to ``out`` after each section."""

    def __init__(self, out: str | None) -> None:
        self.lines: list[str] = []
        self.doc: dict[str, Any] = {"presets": [], "calibration": []}
        self.out = Path(out) if out else None

    def add(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def flush(self) -> None:
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_latency.md").write_text("\n".join(self.lines) + "\n")
        (self.out / "gpu_latency.json").write_text(json.dumps(self.doc, indent=1, default=str))


def header(args: argparse.Namespace, rep: Report) -> None:
    dev = args.device
    if dev.startswith("cuda"):
        name = torch.cuda.get_device_name(dev)
        nvml = Nvml(torch.device(dev).index or 0)
        static = nvml.static()
        nvml.close()
    else:
        from evaluators.latency import cpu_name

        name, static = cpu_name(), {}
    versions = library_versions()
    rep.doc["device_name"], rep.doc["static"], rep.doc["versions"] = name, static, versions
    rep.add(f"# Latency on {name}")
    rep.add()
    rep.add(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; driver "
        f"{static.get('driver', '-')}; max SM clock {static.get('sm_clock_max_mhz', '-')} MHz; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    rep.add()


def preset_table(args: argparse.Namespace, rep: Report) -> dict[tuple[str, str], float]:
    rep.add(
        f"## Fused presets: {args.image_size}x{args.image_size}, batch {args.batch}, "
        f"{args.precision}, warm-up {args.warmup}, {args.iters} timed runs (median of runs)"
    )
    rep.add()
    headers = RESULT_HEADERS["gpu"]
    rep.add(markdown_table(headers, []))
    measured: dict[tuple[str, str], float] = {}
    for name in [n for n in args.presets.split(",") if n]:
        try:
            model = fuse(build_model(get_preset(name)))
        except Exception as exc:
            rep.add(markdown_row([name, "-", f"error: {exc}"] + [""] * (len(headers) - 3)))
            continue
        for backend in [b for b in args.backends.split(",") if b]:
            try:
                r = measure_latency(model, backend=backend, **timing_kwargs(args))
            except Exception as exc:
                error = f"error: {str(exc).splitlines()[0]}"
                rep.add(markdown_row([name, backend, error] + [""] * (len(headers) - 3)))
                continue
            measured[(name, backend)] = r.median_ms
            rep.doc["presets"].append({"name": name, **r.to_dict()})
            rep.add(markdown_row(result_row(name, r, gpu=True)))
            rep.flush()
        del model
    rep.add()
    return measured


def calibration(
    args: argparse.Namespace, rep: Report, measured: dict[tuple[str, str], float], t0: float
) -> None:
    try:
        from search_spaces import get_space
    except Exception as exc:  # pragma: no cover - depends on the machine
        rep.add(f"predictor skipped: search_spaces does not import ({exc})")
        return
    try:
        overrides = space_overrides(args.space_arg)
    except CliError as exc:
        rep.add(f"predictor skipped: {exc}")
        return
    backend = args.table_backend or (
        "torch-cudagraph" if args.device.startswith("cuda") else "torch"
    )
    for name in [s for s in args.spaces.split(",") if s]:
        if time.monotonic() - t0 > args.budget_s:
            rep.add(f"predictor for {name} skipped: time budget of {args.budget_s:.0f} s spent")
            continue
        rep.add(
            f"## Predictor: space {name}, {args.table_samples} architectures in the table, "
            f"{args.calib_samples} fresh ones to check ({backend}, {args.precision}, "
            f"{args.image_size}x{args.image_size})"
        )
        rep.add()
        try:
            space = get_space(name, **overrides)
            t1 = time.monotonic()
            timing = timing_kwargs(args, warmup=max(3, args.warmup // 2), iters=args.table_iters)
            table = LatencyTable.build(
                space, samples=args.table_samples, backend=backend, **timing
            )
            build_s = time.monotonic() - t1
            report = table.calibrate(samples=args.calib_samples)
        except Exception as exc:
            rep.add(f"error: {exc}")
            traceback.print_exc()
            continue
        rep.add(f"table: {format_table_summary(table, build_s)}")
        rep.add()
        rep.add("```")
        for line in report.format().splitlines():
            rep.add(line)
        rep.add("```")
        released = []
        for preset in SPACE_PRESETS.get(name, ()):
            if (preset, backend) in measured:
                want = measured[(preset, backend)]
                got = table.predict(get_preset(preset))
                released.append((preset, want, got))
        if released:
            rep.add()
            rep.add(f"released models (measured above, {backend} backend):")
            rep.add()
            rows = [
                (p, f"{want:.3f}", f"{got:.3f}", f"{100 * (got - want) / want:+.1f}%")
                for p, want, got in released
            ]
            rep.add(markdown_table(["model", "measured ms", "predicted ms", "error"], rows))
        rep.add()
        rep.doc["calibration"].append(
            {
                "space": name,
                "report": report.to_dict(),
                "overhead": table.overhead,
                "released": released,
                "blocks": len(table.entries),
            }
        )
        rep.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_latency: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 2
    rep = Report(args.out)
    header(args, rep)
    measured = preset_table(args, rep)
    rep.flush()
    if args.spaces:
        calibration(args, rep, measured, t0)
    rep.add(f"total {time.monotonic() - t0:.0f} s")
    rep.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
