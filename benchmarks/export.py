"""FP32 vs INT8 exported models on this CPU: ONNX Runtime latency and COCO AP.

Prints two markdown tables (the figures recorded in docs/export.md):

1. a trained model (``yolo_nas_tiny``, 12 epochs on 48 synthetic 96 px images, lr 0.01, one
   thread: deterministic), exported with NMS at score 0.01 and uint8 input, and its INT8 model
   (static QDQ) calibrated on three different subsets of the training images: box AP on the 16
   val images (FP32 once; INT8 mean and min-max over the calibrations) and latency;
2. latency only (random weights) of released-size models at deployment sizes, FP32 vs INT8.

Latency: ONNX Runtime CPU, batch 1, uint8 input, ``--threads`` intra-op threads, ``--rounds``
rounds of ``--iters`` timed runs after 3 warm-up runs; the median of the round medians and the
range of the round medians (the noise) are printed.

Example:
    .venv/bin/python benchmarks/export.py                       # ~2-4 minutes on 2 CPU cores
    .venv/bin/python benchmarks/export.py --sizes 320 --presets yolo_nas_s --iters 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from evaluators.checkpoint import model_from_checkpoint  # noqa: E402
from evaluators.onnx_eval import calibration_images, evaluate_onnx  # noqa: E402
from evaluators.synth import make_synthetic  # noqa: E402
from evaluators.trainer import TrainConfig, train_candidate  # noqa: E402
from models.build import build_model  # noqa: E402
from models.export_nms import NmsSettings, export_deployable  # noqa: E402
from models.presets import get_preset  # noqa: E402
from models.quantize import quantize_int8  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="yolo_nas_s", help="table 2 models (comma-separated)")
    p.add_argument("--sizes", default="320,640", help="table 2 input sizes (comma-separated)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=20, help="timed runs per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calib-images", type=int, default=16)
    p.add_argument("--epochs", type=int, default=12)
    return p.parse_args(argv)


def latency_ms(path: Path, threads: int, iters: int, rounds: int) -> tuple[float, float, float]:
    """(median of round medians, min, max of the round medians) in ms, batch 1, uint8."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=opts,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).integers(0, 256, inp.shape, dtype=np.uint8)
    for _ in range(3):
        session.run(None, {inp.name: x})
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            session.run(None, {inp.name: x})
            times.append((time.perf_counter() - t) * 1e3)
        medians.append(statistics.median(times))
    return statistics.median(medians), min(medians), max(medians)


def _fmt(lat: tuple[float, float, float]) -> str:
    return f"{lat[0]:.2f} ({lat[1]:.2f}-{lat[2]:.2f})"


def trained_table(args: argparse.Namespace, tmp: Path) -> None:
    data = make_synthetic(tmp / "data", "detection", images=64, image_size=96, seed=0)
    cfg = TrainConfig(epochs=args.epochs, image_size=96, batch=8, lr=0.01, seed=0,
                      eval_every=args.epochs)  # fmt: skip
    t = time.perf_counter()
    result = train_candidate(get_preset("yolo_nas_tiny"), data, cfg, out_dir=tmp / "train")
    print(f"trained yolo_nas_tiny: {args.epochs} epochs, {result.train_images} images at 96 px, "
          f"AP {result.ap:.4f} (trainer's eval), {time.perf_counter() - t:.1f} s\n")
    model, _ = model_from_checkpoint(tmp / "train" / "last.pt")
    fp32 = tmp / "tiny.onnx"
    export_deployable(model, fp32, image_size=96, nms=NmsSettings(score=0.01))
    ap32 = evaluate_onnx(fp32, data)
    rows: list[dict[str, Any]] = []
    for seed in range(3):
        images, _ = calibration_images(data, "detection", (96, 96), args.calib_images, seed=seed)
        path = tmp / f"tiny.int8.{seed}.onnx"
        quantize_int8(fp32, path, images)
        rows.append({"seed": seed, "path": path, "ap": evaluate_onnx(path, data)["ap"]})
    int8_aps = [r["ap"] for r in rows]
    base = ap32["ap"]
    lat32 = latency_ms(fp32, args.threads, args.iters, args.rounds)
    lat8 = latency_ms(rows[0]["path"], args.threads, args.iters, args.rounds)
    print(f"Table 1: trained yolo_nas_tiny at 96 px, {ap32['val_images']} val images, NMS in "
          f"the graph, ONNX Runtime CPU, {args.threads} thread(s)\n")
    print("| model | box AP | AP50 | latency ms (round range) |")
    print("|---|---|---|---|")
    print(f"| FP32 | {ap32['ap']:.4f} | {ap32['ap50']:.4f} | {_fmt(lat32)} |")
    print(f"| INT8 ({args.calib_images} calibration images, 3 subsets) | "
          f"{statistics.mean(int8_aps):.4f} ({min(int8_aps):.4f}-{max(int8_aps):.4f}) | - | "
          f"{_fmt(lat8)} (subset 0) |")
    print(f"\nAP change INT8 - FP32: {statistics.mean(int8_aps) - ap32['ap']:+.4f} (per subset: "
          f"{', '.join(f'{a - base:+.4f}' for a in int8_aps)})\n")


def size_table(args: argparse.Namespace, tmp: Path) -> None:
    print(f"Table 2: latency only (random weights, calibrated on synthetic images), NMS in the "
          f"graph, ONNX Runtime CPU, {args.threads} thread(s), batch 1\n")
    print("| model | size | FP32 ms | INT8 ms | speed-up |")
    print("|---|---|---|---|---|")
    for name in [n for n in args.presets.split(",") if n]:
        spec = get_preset(name)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            data = make_synthetic(tmp / f"calib{size}", spec.task, images=16, image_size=size,
                                  seed=1)  # fmt: skip
            fp32 = tmp / f"{name}_{size}.onnx"
            export_deployable(build_model(spec), fp32, image_size=size, nms=NmsSettings(),
                              check=False)  # fmt: skip
            images, _ = calibration_images(data, spec.task, (size, size), 8)
            int8 = quantize_int8(fp32, tmp / f"{name}_{size}.int8.onnx", images)
            iters = max(3, round(args.iters * 4 * 96 * 96 / (size * size)))  # ~equal time
            a = latency_ms(fp32, args.threads, iters, args.rounds)
            b = latency_ms(int8, args.threads, iters, args.rounds)
            print(f"| {name} | {size} | {_fmt(a)} | {_fmt(b)} | {a[0] / b[0]:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(1)
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}\n")
    with tempfile.TemporaryDirectory(prefix="opennac-bench-export-") as tmp:
        trained_table(args, Path(tmp))
        size_table(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
