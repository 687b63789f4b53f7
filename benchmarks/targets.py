"""The measured objectives of one architecture on several CPU latency targets.

For each released pose model (or ``--arch``), measures what a search trial measures on each
target (`nas.targets`): median latency with its CV over ``--repeats`` independent
measurements (each its own warm-up and timed passes, no cache), peak inference memory, and
the model size on disk (`nas.objectives`). Targets: torch fp32, ONNX Runtime fp32 and ONNX
Runtime INT8 (static QDQ, `models.quantize`), all on this CPU with one thread. Prints a table;
the INT8 column's speed-up is against ONNX Runtime fp32 (same runtime, same graph).

    nice -n 10 .venv/bin/python benchmarks/targets.py [--arch yolo_nas_pose_n]
        [--image-size 320] [--repeats 3] [--iters 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the packages, not benchmarks/models.py, are `models`

from nas.experiment import LatencySection  # noqa: E402

TARGETS = {
    "torch_fp32": {"backend": "torch", "precision": "fp32"},
    "ort_fp32": {"backend": "onnxruntime", "precision": "fp32"},
    "ort_int8": {"backend": "onnxruntime", "precision": "int8"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", default=None)
    ap.add_argument("--image-size", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    from evaluators.latency import measure_latency
    from models.presets import get_preset
    from nas.objectives import TrialContext, get_objective
    from nas.targets import peak_memory_mb

    archs = args.arch or ["yolo_nas_pose_n", "yolo_nas_pose_s"]
    print(f"{'arch':<18} {'target':<11} {'median ms':>10} {'spread ms':>14} {'cv':>6} "
          f"{'peak MB':>8} {'size MB':>8}")
    for name in archs:
        spec = get_preset(name)

        class _Settings:  # what the model-size measure reads
            primary_latency = LatencySection(image_size=args.image_size)

        size = get_objective("model_mb").measure(TrialContext(spec, _Settings(), {}))["model_mb"]
        medians: dict[str, float] = {}
        for target, kw in TARGETS.items():
            runs = [measure_latency(spec, image_size=args.image_size, warmup=5,
                                    iters=args.iters, **kw) for _ in range(args.repeats)]
            ms = [r.median_ms for r in runs]
            medians[target] = statistics.median(ms)
            lat = LatencySection(image_size=args.image_size, **kw)
            peak = peak_memory_mb(spec, lat)
            print(f"{name:<18} {target:<11} {medians[target]:>10.2f} "
                  f"{min(ms):>6.2f}-{max(ms):<7.2f} {statistics.median(r.cv for r in runs):>6.3f} "
                  f"{peak:>8.1f} {size:>8.2f}")
        print(f"{name:<18} INT8 speed-up vs ORT fp32: "
              f"x{medians['ort_fp32'] / medians['ort_int8']:.2f}")


if __name__ == "__main__":
    main()
