"""Size, cost and CPU speed of every preset.

Per preset: parameters (training form and fused), GFLOPs at 640 (2 x GMACs of the fused
model), CPU latency of the fused model (batch 1, 640x640, median of ``--repeats`` timed runs
after ``--warmup`` runs) and the time of one training step (batch 2, 320x320: forward,
the task's real loss (assigner included) on three objects per image, backward, AdamW step).

Usage:
    .venv/bin/python benchmarks/models.py                       # all presets, Markdown table
    .venv/bin/python benchmarks/models.py --presets 'yolo_nas_*tiny' --repeats 5 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import build_model, complexity, fuse, get_preset, list_presets  # noqa: E402
from models.losses import loss_for  # noqa: E402


def _median_ms(fn: Any, warmup: int, repeats: int, device: str) -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _loss_and_targets(
    spec: Any, batch: int, size: int, device: str
) -> tuple[torch.nn.Module, list[dict[str, torch.Tensor]]]:
    """The real training loss of the task and three objects per image (fixed, seeded)."""
    gen = torch.Generator().manual_seed(0)
    targets = []
    for _ in range(batch):
        xy = torch.rand(3, 2, generator=gen) * size * 0.6
        wh = torch.rand(3, 2, generator=gen) * size * 0.3 + 16
        boxes = torch.cat([xy, xy + wh], 1)
        t = {"boxes": boxes, "labels": torch.randint(0, spec.num_classes, (3,), generator=gen)}
        if spec.task == "pose":
            k = spec.num_keypoints
            pts = xy[:, None] + torch.rand(3, k, 2, generator=gen) * wh[:, None]
            t["keypoints"] = torch.cat([pts, torch.full((3, k, 1), 2.0)], -1)
            t["areas"] = wh.prod(1)
        targets.append({n: v.to(device) for n, v in t.items()})
    return loss_for(spec), targets


def bench_preset(
    name: str, warmup: int, repeats: int, train_repeats: int, device: str = "cpu"
) -> dict[str, Any]:
    """One table row for preset ``name``."""
    spec = get_preset(name)
    cost = complexity(spec, 640)
    torch.manual_seed(0)
    model = build_model(spec).to(device)

    fused = fuse(model)
    x = torch.rand(1, 3, 640, 640, device=device) * 255

    def infer() -> None:
        with torch.inference_mode():
            fused(x)

    latency = _median_ms(infer, warmup, repeats, device)

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    xt = torch.rand(2, 3, 320, 320, device=device) * 255

    loss_fn, targets = _loss_and_targets(spec, batch=2, size=320, device=device)

    def step() -> None:
        loss, _ = loss_fn(model(xt), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train_ms = _median_ms(step, 2, train_repeats, device)
    return {
        "preset": name,
        "device": device,
        "params": cost.params,
        "fused_params": cost.fused_params,
        "gflops_640": round(cost.gflops, 2),
        "latency_ms": round(latency, 1),
        "train_step_ms": round(train_ms, 1),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| preset | params (M) | fused params (M) | GFLOPs@640 | latency fused, "
        "b1 640 (ms) | train step b2 320 (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['params'] / 1e6:.2f} | {r['fused_params'] / 1e6:.2f} | "
            f"{r['gflops_640']:.2f} | {r['latency_ms']:.1f} | {r['train_step_ms']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="*", help="glob over preset names (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed inference runs")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training steps")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list_presets(args.presets)
    if not names:
        parser.error(f"--presets {args.presets!r} matches no preset ({', '.join(list_presets())})")
    rows = []
    for name in names:
        rows.append(bench_preset(name, args.warmup, args.repeats, args.train_repeats, args.device))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"torch {torch.__version__}, {args.device}, {args.threads} threads, "
            f"{platform.processor() or platform.machine()}, "
            f"median of {args.repeats} (inference) / {args.train_repeats} (training) runs"
        )
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
