"""Training and evaluation throughput of short runs, data loading alone, one COCO evaluation.

Prints a markdown table (the figures recorded in docs/training.md):

1. per preset (``yolo_nas_tiny`` and ``yolo_nas_pose_s`` at 320 px): data-pipeline images/s
   (the training DataLoader alone, ``--workers`` processes, batches augmented as the preset's
   recipe says: `models.recipe`) next to training-step images/s (forward + the recipe's loss +
   backward + AdamW step on batches made beforehand; ``--channels-last``, ``--amp-cpu``: the
   trainer's options) and eval images/s (forward + NMS + conversion to COCO results): a step
   faster than its data is starved;
2. data loading alone: augmented training samples/s (JPEG decode, affine, flip, HSV; also with
   mosaic, mosaic + rot90, and MixUp on detection data) and letterboxed val samples/s;
3. one pycocotools evaluation (bbox and keypoints) on the synthetic val set.

The data are synthetic (``evaluators.synth``), written once into a temporary folder.

Example:
    .venv/bin/python benchmarks/train.py                        # CPU, 1 thread, ~2-4 minutes
    .venv/bin/python benchmarks/train.py --threads 2 --steps 4 --amp-cpu --channels-last
    (--channels-last on CPU needs --amp-cpu: fp32 channels-last training aborts there)
    python benchmarks/train.py --device cuda --batch 16 --steps 20 --workers 4  # on a GPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evaluators.coco_eval import evaluate, to_coco_results  # noqa: E402
from evaluators.data import CocoDataset, load_data_config, make_loader  # noqa: E402
from evaluators.synth import make_synthetic  # noqa: E402
from evaluators.trainer import CPU_CHANNELS_LAST, TrainConfig, _optimizer  # noqa: E402
from evaluators.transforms import Augment  # noqa: E402
from models.build import build_model  # noqa: E402
from models.losses import loss_for  # noqa: E402
from models.postprocess import postprocess  # noqa: E402
from models.presets import get_preset  # noqa: E402
from models.recipe import recipe_for  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="yolo_nas_tiny,yolo_nas_pose_s")
    p.add_argument("--image-size", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed training steps per preset")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--channels-last", action="store_true", help="NHWC model and batches")
    p.add_argument("--amp-cpu", action="store_true", help="bf16 autocast on CPU")
    p.add_argument("--no-amp", action="store_true", help="CUDA: fp32 (default fp16 AMP)")
    p.add_argument("--skip-loading", action="store_true", help="no per-pipeline table")
    p.add_argument("--skip-eval", action="store_true", help="no COCO evaluation timing")
    p.add_argument("--images", type=int, default=64, help="synthetic images per task")
    p.add_argument(
        "--eval-images",
        type=int,
        default=200,
        help="val images for the COCO evaluation timing (default 200)",
    )
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args(argv)
    if args.channels_last and args.device == "cpu" and not args.amp_cpu:
        p.error(f"--channels-last: {CPU_CHANNELS_LAST}")
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_throughput(ds: CocoDataset, args: argparse.Namespace, batches: int) -> float:
    """Images/s of the training DataLoader alone (as the trainer makes it: ``--workers``,
    pinned memory on CUDA), after its first batch (worker start-up)."""
    loader = make_loader(ds, args.batch, shuffle=True, workers=args.workers,
                         pin_memory=args.device.startswith("cuda"))
    n, t = 0, None
    for epoch in range(1, 100):
        loader.sampler.set_epoch(epoch)
        for images, _ in loader:
            if t is None:
                t = time.perf_counter()
                continue
            n += len(images)
            if n >= batches * args.batch:
                return n / (time.perf_counter() - t)
    return n / (time.perf_counter() - t) if t and n else float("nan")


def train_throughput(name: str, ds: CocoDataset, args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    spec = get_preset(name)
    data_ips = data_throughput(ds, args, max(args.steps, 4))
    model = build_model(spec).to(device).train()
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    loss_fn = loss_for(spec)
    opt = _optimizer(model, 1e-3, 1e-5)
    batches = [
        b
        for b, _ in zip(
            make_loader(ds, args.batch, shuffle=True), range(args.steps + 1), strict=False
        )
    ]
    amp = (device.type == "cuda" and not args.no_amp) or (device.type == "cpu" and args.amp_cpu)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp)

    def step(images: torch.Tensor, targets: list) -> None:
        x = images.to(device, non_blocking=True).float().div_(255)
        x = x.contiguous(memory_format=memory)
        with torch.autocast(device.type, enabled=amp):
            out = model(x)
        loss, _ = loss_fn(out, targets)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    step(*batches[0])  # warm-up
    _sync(device)
    t = time.perf_counter()
    n = 0
    for images, targets in batches[1:]:
        step(images, targets)
        n += len(images)
    _sync(device)
    train_ips = n / (time.perf_counter() - t)

    model.eval()
    val = [
        b
        for b, _ in zip(
            make_loader(ds, args.batch, shuffle=False), range(args.steps + 1), strict=False
        )
    ]
    with torch.no_grad():
        model(val[0][0].to(device).float().div_(255))
        _sync(device)
        t = time.perf_counter()
        n = 0
        for images, targets in val[1:]:
            with torch.autocast(device.type, enabled=amp):
                x = images.to(device).float().div_(255).contiguous(memory_format=memory)
                out = model(x)
            to_coco_results(postprocess([o.float() for o in out]), targets, ds.label_to_cat)
            n += len(images)
        _sync(device)
    eval_ips = n / (time.perf_counter() - t)
    return {"preset": name, "data_img_s": data_ips, "train_img_s": train_ips,
            "eval_img_s": eval_ips}


def loading_throughput(ds: CocoDataset, count: int) -> float:
    t = time.perf_counter()
    for i in range(count):
        ds[i % len(ds)]
    return count / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = args.image_size
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for task in ("detection", "pose"):
            path = make_synthetic(Path(tmp) / task, task, args.images, size, seed=0)
            data[task] = load_data_config(path, task)

        def dataset(task: str, train: bool, aug: Augment | None = None) -> CocoDataset:
            cfg = data[task]
            images = cfg.train_images if train else cfg.val_images
            ann = cfg.train_annotations if train else cfg.val_annotations
            return CocoDataset(images, ann, task, size, train=train, aug=aug or Augment())

        for name in args.presets.split(","):
            spec = get_preset(name)
            aug = TrainConfig().augment(recipe_for(spec))  # the recipe's augmentations
            rows.append(train_throughput(name, dataset(spec.task, True, aug), args))
            print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)

        loading = {} if args.skip_loading else {
            "train (affine, flip, HSV)": loading_throughput(dataset("pose", True), 64),
            "train + mosaic": loading_throughput(dataset("pose", True, Augment(mosaic=True)), 64),
            "train + mosaic + rot90": loading_throughput(
                dataset("pose", True, Augment(mosaic=True, rot90=True)), 64
            ),
            "detection train + MixUp": loading_throughput(
                dataset("detection", True, Augment(mixup=True)), 64
            ),
            "val (letterbox)": loading_throughput(dataset("pose", False), 64),
        }

        evals = {}
        for task, iou_types in () if args.skip_eval else (
                ("detection", ("bbox",)), ("pose", ("keypoints", "bbox"))):
            path = make_synthetic(
                Path(tmp) / f"eval_{task}",
                task,
                2 * args.eval_images,
                128,
                seed=1,
                val_fraction=0.5,
            )
            cfg = load_data_config(path, task)
            ds = CocoDataset(cfg.val_images, cfg.val_annotations, task, 128)
            preds, targets = [], []
            gen = torch.Generator().manual_seed(0)
            for i in range(len(ds)):  # ground truth plus 30 random detections per image
                _, t = ds[i]
                n = len(t["boxes"])
                rnd = torch.rand(30, 4, generator=gen) * 128
                boxes = torch.cat([t["boxes"], torch.cat([rnd[:, :2], rnd[:, :2] + 20], 1)])
                pred = {
                    "boxes": boxes,
                    "scores": torch.rand(n + 30, generator=gen),
                    "labels": torch.cat([t["labels"], torch.zeros(30, dtype=torch.long)]),
                }
                if task == "pose":
                    rk = torch.rand(30, 17, 3, generator=gen) * 128
                    pred["keypoints"] = torch.cat([t["keypoints"], rk])
                preds.append(pred)
                targets.append(t)
            results = to_coco_results(preds, targets, ds.label_to_cat)
            for iou in iou_types:
                t = time.perf_counter()
                evaluate(ds.coco, results, iou)
                evals[f"{task} {iou}"] = (time.perf_counter() - t, len(ds), len(results))

    dev = args.device if args.device != "cpu" else f"cpu, {args.threads} thread(s)"
    opts = [f"{args.workers} loader workers"]
    opts += ["channels-last"] * args.channels_last
    if args.device == "cpu":
        opts.append("bf16 autocast" if args.amp_cpu else "fp32")
    else:
        opts.append("fp32" if args.no_amp else "fp16 AMP")
    print(f"\n### Throughput at {size} px, batch {args.batch} ({dev}; {', '.join(opts)})\n")
    print("| preset | data images/s | train step images/s | eval images/s | starved |")
    print("|---|---|---|---|---|")
    for r in rows:  # starved: the loader delivers fewer images/s than the step consumes
        starved = "yes" if r["data_img_s"] < r["train_img_s"] else "no"
        print(f"| {r['preset']} | {r['data_img_s']:.1f} | {r['train_img_s']:.1f} | "
              f"{r['eval_img_s']:.1f} | {starved} |")
    print(f"\n### Data loading alone ({size} px, pose data unless named, one process)\n")
    print("| pipeline | samples/s |")
    print("|---|---|")
    for k, v in loading.items():
        print(f"| {k} | {v:.1f} |")
    print("\n### One COCO evaluation (pycocotools; ground truth + 30 random detections/image)\n")
    print("| data | images | detections | seconds |")
    print("|---|---|---|---|")
    for k, (sec, n_img, n_det) in evals.items():
        print(f"| {k} | {n_img} | {n_det} | {sec:.3f} |")
    if args.json:
        print(
            json.dumps(
                {
                    "throughput": rows,
                    "loading": loading,
                    "coco_eval_s": {k: v[0] for k, v in evals.items()},
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
