"""Weight inheritance on the quickstart space: inherited fraction and time per candidate.

The parent is a released reference of the quickstart's space (``yolo_nas_pose`` with
``width_scale`` 0.25; default ``yolo_nas_pose_l`` at that width, random weights: the fraction
and the time depend on the architectures only). Candidates are sampled with Optuna's
RandomSampler (seeds 0..N-1). For each: parameters, inherited fraction, tensors copied whole /
sliced / fresh, and the time of `inherit_weights` (median and min-max of ``--repeats`` runs, each
into a freshly built child; building the child is not timed).

Example:
    .venv/bin/python benchmarks/inherit.py                    # ~10 s on 2 CPU cores
    .venv/bin/python benchmarks/inherit.py --parent yolo_nas_pose_n --candidates 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
import torch  # noqa: E402

from evaluators.inherit import inherit_weights  # noqa: E402
from models.build import build_model  # noqa: E402
from search_spaces import get_space  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parent", default="yolo_nas_pose_l", help="reference point of the space")
    ap.add_argument("--width-scale", type=float, default=0.25)
    ap.add_argument("--candidates", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space("yolo_nas_pose", width_scale=args.width_scale)
    parent_spec = space.replay(space.reference_points()[args.parent])
    torch.manual_seed(0)
    parent = build_model(parent_spec).eval()
    n_parent = sum(p.numel() for p in parent.parameters())
    print(f"parent {args.parent} x{args.width_scale} ({parent_spec.short_id}, "
          f"{n_parent / 1e6:.2f} M params); inherit_weights time over {args.repeats} runs, "
          f"{args.threads} thread(s)\n")
    print("| seed | candidate | params (M) | inherited | whole / sliced / fresh tensors "
          "| time ms (median, min-max) |")
    print("|---|---|---|---|---|---|")
    for seed in range(args.candidates):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)).ask()
        spec = space.sample(trial)
        times, result = [], None
        for _ in range(args.repeats):
            child = build_model(spec)
            start = time.perf_counter()
            result = inherit_weights(child, spec, parent, parent_spec)
            times.append(1000 * (time.perf_counter() - start))
        assert result is not None
        n = result.total_elements
        print(f"| {seed} | {spec.short_id} | {n / 1e6:.2f} | {result.fraction:.3f} | "
              f"{result.tensors_whole} / {result.tensors_sliced} / {result.tensors_fresh} | "
              f"{statistics.median(times):.0f} ({min(times):.0f}-{max(times):.0f}) |")


if __name__ == "__main__":
    main()
