"""Distillation benchmark: does a teacher help the quickstart's short pose run?

On the quickstart's data (synthetic pose, 80 images at 96 px, seed 0) and fidelity (30 epochs,
96 px, batch 8, lr 5e-3, mosaic off, OKS area factor 1.0), it trains a teacher once
(``--teacher``, default yolo_nas_pose_tiny itself at ``--teacher-epochs`` 60; the quickstart
space's scaled ``yolo_nas_pose_l`` (3.6 M parameters against 0.5 M) is a stronger choice but
took 161 s for its first epoch on the shared 2-core machine, the tiny one about 4 s), then
the student (``--student``, default yolo_nas_pose_tiny) with ``--seeds`` seeds, each with and
without distillation from that teacher (weight ``--weight``, temperature ``--temperature``),
and prints OKS AP / box AP per mode (mean +- sd over the seeds, the per-seed values) and the
training wall time. One CPU thread per run; results are kept under ``--out`` (git-ignored) and
reused when the script runs again.

    nice -n 10 .venv/bin/python benchmarks/distill.py [--seeds 2] [--teacher-epochs 60]
        [--teacher yolo_nas_pose_tiny] [--student yolo_nas_pose_tiny] [--weight 1.0]
        [--temperature 1.0] [--out benchmarks/out/distill]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the packages, not benchmarks/models.py, are `models`

QUICKSTART = dict(image_size=96, batch=8, lr=5e-3, mosaic=False, oks_area_factor=1.0)


def _spec(name: str) -> Any:
    """A preset, or the quickstart space's scaled released model (``yolo_nas_pose_l``)."""
    from models.presets import get_preset, list_presets
    from search_spaces import get_space

    refs = get_space("yolo_nas_pose", width_scale=0.25).reference_specs()
    for ref, spec in refs.items():
        if name in (ref, f"yolo_nas_pose_{ref}"):
            return spec
    if name in list_presets():
        return get_preset(name)
    raise SystemExit(f"--teacher/--student: {name!r} is neither a preset nor one of "
                     f"{', '.join(refs)}")  # fmt: skip


def _train(spec: Any, data: Path, out: Path, teacher: Path | None = None,
           **cfg: Any) -> dict[str, Any]:  # fmt: skip
    """One run, cached as ``out/result.json``."""
    from evaluators.trainer import TrainConfig, train_candidate

    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    res = train_candidate(spec, data, TrainConfig(**QUICKSTART, **cfg), out_dir=out,
                          teacher=teacher)  # fmt: skip
    row = {"ap": res.ap, "box_ap": res.box_ap, "wall_s": res.wall_s, "arch_id": res.arch_id}
    done.write_text(json.dumps(row))
    return row


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.fmean(values):.3f} +- {sd:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30, help="student epochs (quickstart: 30)")
    parser.add_argument("--teacher", default="yolo_nas_pose_tiny",
                        help="a preset, or a scaled released model of the quickstart space "
                             "(yolo_nas_pose_n/s/m/l)")
    parser.add_argument("--teacher-epochs", type=int, default=60)
    parser.add_argument("--student", default="yolo_nas_pose_tiny")
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "distill"))
    args = parser.parse_args(argv)

    from evaluators.synth import make_synthetic

    out = Path(args.out)
    data_dir = out / "data"
    data = (data_dir / "data.yaml" if (data_dir / "data.yaml").is_file()
            else make_synthetic(data_dir, "pose", 80, 96, seed=0))  # fmt: skip
    start = time.perf_counter()
    teacher_spec, student_spec = _spec(args.teacher), _spec(args.student)
    tdir = out / f"teacher-{teacher_spec.short_id}-e{args.teacher_epochs}"
    teacher = _train(teacher_spec, data, tdir, epochs=args.teacher_epochs, seed=0)
    ckpt = tdir / "last.pt"
    rows: dict[str, list[dict[str, Any]]] = {"scratch": [], "distilled": []}
    tag = f"{student_spec.short_id}-e{args.epochs}"
    dtag = f"w{args.weight:g}-t{args.temperature:g}-{teacher_spec.short_id}"
    for seed in range(args.seeds):
        rows["scratch"].append(_train(student_spec, data, out / f"{tag}-s{seed}",
                                      epochs=args.epochs, seed=seed))  # fmt: skip
        rows["distilled"].append(_train(
            student_spec, data, out / f"{tag}-{dtag}-s{seed}", teacher=ckpt, epochs=args.epochs,
            seed=seed, distill_weight=args.weight, distill_temperature=args.temperature))
    print(f"teacher {args.teacher} ({teacher_spec.short_id}), {args.teacher_epochs} epochs: "
          f"OKS AP {teacher['ap']:.3f}, box AP {teacher['box_ap']:.3f} "
          f"({teacher['wall_s']:.0f} s)")
    print(f"student {args.student} ({student_spec.short_id}), {args.epochs} epochs, seeds "
          f"0-{args.seeds - 1}; distillation weight {args.weight:g}, temperature "
          f"{args.temperature:g}")
    print("| student | OKS AP | per seed | box AP | wall s per run |")
    print("|---|---|---|---|---|")
    for mode, rs in rows.items():
        aps = [r["ap"] for r in rs]
        print(f"| {mode} | {_mean_sd(aps)} | {' '.join(f'{a:.3f}' for a in aps)} | "
              f"{_mean_sd([r['box_ap'] for r in rs])} | "
              f"{statistics.fmean(r['wall_s'] for r in rs):.0f} |")
    print(f"({time.perf_counter() - start:.0f} s in this call; cached runs under {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
