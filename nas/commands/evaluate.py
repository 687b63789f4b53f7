"""``opennac eval CHECKPOINT --data DIR_OR_YAML``: COCO AP of a training checkpoint.

Example:
    $ opennac eval runs/train/yolo_nas_tiny/last.pt --data data/synth_det --json
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="COCO AP of a checkpoint written by `opennac train`",
        description=(
            "Evaluate a checkpoint (format opennac-ckpt/1) on the val split of a COCO-format "
            "data set with pycocotools: box AP for detection; OKS AP and box AP for pose. Uses "
            "the EMA weights when the checkpoint has them."
        ),
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a last.pt from opennac train")
    parser.add_argument("--data", required=True, metavar="DIR_OR_YAML",
                        help="data YAML or a folder holding data.yaml")
    parser.add_argument("--image-size", type=int, default=None, metavar="PIXELS",
                        help="input size (default: the training size)")
    parser.add_argument("--val-images", type=int, default=None, metavar="N",
                        help="evaluate on N images (default all)")
    parser.add_argument("--batch", type=int, default=16, metavar="B", help="default 16")
    parser.add_argument("--device", default="cpu", metavar="cpu|cuda",
                        help="cpu (default), cuda or cuda:N")
    parser.add_argument("--raw-weights", action="store_true",
                        help="use the raw weights instead of the EMA weights")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from evaluators.trainer import evaluate_checkpoint
    from nas.commands._common import print_json

    if args.val_images is not None and args.val_images < 1:
        raise CliError(f"--val-images: expected a positive count, got {args.val_images}")
    if args.batch < 1:
        raise CliError(f"--batch: expected a positive integer, got {args.batch}")
    try:
        m = evaluate_checkpoint(
            args.checkpoint, args.data, image_size=args.image_size, val_images=args.val_images,
            batch=args.batch, device=args.device, use_ema=not args.raw_weights,
        )  # fmt: skip
    except ValueError as exc:  # DataError, CheckpointError and bad options alike
        raise CliError(str(exc)) from None
    if args.json:
        print_json({"checkpoint": args.checkpoint, **m})
    else:
        box = f"  box AP {m['box_ap']:.4f}" if "box_ap" in m else ""
        print(f"{args.checkpoint}: AP {m['ap']:.4f}  AP50 {m['ap50']:.4f}  AP75 {m['ap75']:.4f}"
              f"{box}  ({m['val_images']} images at {m['image_size']} px, epoch {m['epochs']})")
    return 0
