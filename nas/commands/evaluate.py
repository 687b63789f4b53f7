"""``opennac eval CHECKPOINT_OR_ONNX --data DIR_OR_YAML``: COCO AP of a training checkpoint
or of an exported ONNX model.

Example:
    $ opennac eval runs/train/yolo_nas_tiny/last.pt --data data/synth_det --json
    $ opennac eval tiny.onnx --data data/synth_det
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="COCO AP of a checkpoint (opennac train, kept weights) or an exported ONNX model",
        description=(
            "Evaluate a checkpoint (format opennac-ckpt/1) or an ONNX model exported by "
            "`opennac export` on the val split of a COCO-format data set with pycocotools: box "
            "AP for detection; OKS AP and box AP for pose. A checkpoint's EMA weights are used "
            "when it has them. An ONNX model runs in ONNX Runtime (CPU) at its exported size on "
            "letterboxed images fed as its input type (uint8 or float pixels 0-255); export it "
            "with --score 0.01 (or without --nms) for the AP of its checkpoint."
        ),
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_ONNX",
                        help="a checkpoint (.pt) or an exported model (.onnx)")
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
    if str(args.checkpoint).lower().endswith(".onnx"):
        return _eval_onnx(args)
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


def _eval_onnx(args: argparse.Namespace) -> int:
    from evaluators.onnx_eval import evaluate_onnx
    from nas.commands._common import print_json

    if args.image_size is not None or args.raw_weights or args.device != "cpu":
        raise CliError("--image-size, --raw-weights and --device apply to checkpoints; an ONNX "
                       "model runs at its exported size in ONNX Runtime on the CPU")
    try:
        m = evaluate_onnx(args.checkpoint, args.data, val_images=args.val_images)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json({"model": args.checkpoint, **m})
        return 0
    box = f"  box AP {m['box_ap']:.4f}" if "box_ap" in m else ""
    print(f"{args.checkpoint}: AP {m['ap']:.4f}  AP50 {m['ap50']:.4f}  AP75 {m['ap75']:.4f}"
          f"{box}  ({m['val_images']} images at {m['image_size']} px, ONNX Runtime, input "
          f"{m['input_type']})")
    if m.get("note"):
        print(f"note: {m['note']}")
    return 0
