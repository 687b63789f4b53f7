"""Latency table of the released presets and the predictor's calibration, on one device.

Run by ``scripts/gpu_check.sh`` on a machine with an NVIDIA GPU. It needs only PyTorch (and
nvidia-ml-py for clocks and temperature): no Ray, Optuna or pycocotools. Prints markdown; with
``--out DIR`` (default ``$OUT``) also writes ``gpu_latency.md`` and ``gpu_latency.json`` after
every section, so a run cut short still leaves its table.

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
from evaluators.latency.telemetry import Nvml, library_versions  # noqa: E402
from models.build import build_model, fuse  # noqa: E402
from models.presets import RELEASED, get_preset  # noqa: E402

SPACE_PRESETS = {"yolo_nas": ("yolo_nas_s", "yolo_nas_m", "yolo_nas_l")}
SPACE_PRESETS["yolo_nas_pose"] = tuple(n for n in RELEASED if n.startswith("yolo_nas_pose"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--presets", default=",".join(RELEASED), help="comma-separated names")
    p.add_argument("--backends", default="torch,torch-cudagraph")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--image-size", type=int, default=640)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--spaces", default="yolo_nas_pose,yolo_nas", help="'' to skip the predictor")
    p.add_argument("--space-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--table-samples", type=int, default=6)
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
    rep.add("| model | backend | median ms | p90 ms | cv | SM MHz | temp C | power W | throttle |")
    rep.add("|---|---|---|---|---|---|---|---|---|")
    measured: dict[tuple[str, str], float] = {}
    for name in [n for n in args.presets.split(",") if n]:
        try:
            model = fuse(build_model(get_preset(name)))
        except Exception as exc:
            rep.add(f"| {name} | - | error: {exc} | | | | | | |")
            continue
        for backend in [b for b in args.backends.split(",") if b]:
            try:
                r = measure_latency(
                    model,
                    device=args.device,
                    precision=args.precision,
                    batch_size=args.batch,
                    image_size=args.image_size,
                    backend=backend,
                    warmup=args.warmup,
                    iters=args.iters,
                )
            except Exception as exc:
                rep.add(f"| {name} | {backend} | error: {str(exc).splitlines()[0]} | | | | | | |")
                continue
            t = r.telemetry
            measured[(name, backend)] = r.median_ms
            rep.doc["presets"].append({"name": name, **r.to_dict()})
            rep.add(
                f"| {name} | {backend} | {r.median_ms:.3f} | {r.p90_ms:.3f} | {r.cv:.3f} | "
                f"{t.get('sm_clock_mhz', '-')} | {t.get('temperature_c', '-')} | "
                f"{t.get('power_w', '-')} | {t.get('throttle_reasons', '-') or 'none'} |"
            )
            rep.flush()
        del model
    rep.add()
    return measured


def space_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def calibration(
    args: argparse.Namespace, rep: Report, measured: dict[tuple[str, str], float], t0: float
) -> None:
    try:
        from search_spaces import get_space
    except Exception as exc:  # pragma: no cover - depends on the machine
        rep.add(f"predictor skipped: search_spaces does not import ({exc})")
        return
    overrides = space_overrides(args.space_arg)
    for name in [s for s in args.spaces.split(",") if s]:
        if time.monotonic() - t0 > args.budget_s:
            rep.add(f"predictor for {name} skipped: time budget of {args.budget_s:.0f} s spent")
            continue
        rep.add(
            f"## Predictor: space {name}, {args.table_samples} architectures in the table, "
            f"{args.calib_samples} fresh ones to check (torch, {args.precision}, "
            f"{args.image_size}x{args.image_size})"
        )
        rep.add()
        try:
            space = get_space(name, **overrides)
            t1 = time.monotonic()
            table = LatencyTable.build(
                space,
                device=args.device,
                image_size=args.image_size,
                samples=args.table_samples,
                batch_size=args.batch,
                precision=args.precision,
                warmup=max(3, args.warmup // 2),
                iters=args.table_iters,
            )
            build_s = time.monotonic() - t1
            report = table.calibrate(samples=args.calib_samples)
        except Exception as exc:
            rep.add(f"error: {exc}")
            traceback.print_exc()
            continue
        o = table.overhead
        rep.add(
            f"table: {len(table.entries)} blocks, built in {build_s:.0f} s; overhead "
            f"{o['intercept_ms']:.3f} ms + {o['scale']:.3f} x sum(blocks), "
            f"fit rmse {o['rmse_ms']:.3f} ms"
        )
        rep.add()
        rep.add("```")
        for line in report.format().splitlines():
            rep.add(line)
        rep.add("```")
        released = []
        for preset in SPACE_PRESETS.get(name, ()):
            if (preset, "torch") in measured:
                want = measured[(preset, "torch")]
                got = table.predict(get_preset(preset))
                released.append((preset, want, got))
        if released:
            rep.add()
            rep.add("released models (measured above, torch backend):")
            rep.add()
            rep.add("| model | measured ms | predicted ms | error |")
            rep.add("|---|---|---|---|")
            for preset, want, got in released:
                rep.add(
                    f"| {preset} | {want:.3f} | {got:.3f} | {100 * (got - want) / want:+.1f}% |"
                )
        rep.add()
        rep.doc["calibration"].append(
            {
                "space": name,
                "report": report.to_dict(),
                "overhead": o,
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
