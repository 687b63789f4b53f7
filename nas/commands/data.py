"""``opennac data synth OUT_DIR``: write a small synthetic COCO-format data set.

Example:
    $ opennac data synth data/synth_det --task detection --images 64 --image-size 128 --seed 0
    $ opennac train yolo_nas_tiny --data data/synth_det --epochs 20 --image-size 96
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import CliError
from nas.commands._common import check_output_dir, print_help_without_action


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data",
        help="data set tools (synthetic COCO-format data)",
        description="Data set tools.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    synth = sub.add_parser(
        "synth",
        help="write a synthetic COCO-format data set (real JPEGs + COCO JSON + data.yaml)",
        description=(
            "Write a synthetic COCO-format data set: images/{train,val}/*.jpg, "
            "annotations/instances_{train,val}.json (detection: four classes of coloured shapes "
            "on textured backgrounds, category ids 1,3,5,7) or "
            "annotations/person_keypoints_{train,val}.json (pose: stick figures with the 17 COCO "
            "keypoints, some occluded), and a data.yaml for --data. About 25% of the images go "
            "to val. The same arguments always give the same files."
        ),
    )
    synth.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (created if needed)")
    synth.add_argument("--task", choices=("detection", "pose"), default="detection")
    synth.add_argument("--images", type=int, default=64, metavar="N",
                       help="total number of images, train + val (default 64)")
    synth.add_argument("--image-size", type=int, default=128, metavar="PIXELS",
                       help="longest side of every image (default 128)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--val-fraction", type=float, default=0.25, metavar="F",
                       help="share of images in the val split (default 0.25)")
    synth.add_argument("--json", action="store_true", help="print one JSON object")
    synth.set_defaults(func=run_synth)
    print_help_without_action(parser)


def run_synth(args: argparse.Namespace) -> int:
    from evaluators.synth import make_synthetic, val_count
    from nas.commands._common import print_json

    check_output_dir(args.out_dir, "OUT_DIR folder")
    try:
        path = make_synthetic(
            args.out_dir, args.task, images=args.images, image_size=args.image_size,
            seed=args.seed, val_fraction=args.val_fraction,
        )  # fmt: skip
    except ValueError as exc:
        raise CliError(f"--{str(exc).split(':')[0].replace('_', '-')}: "
                       f"{str(exc).split(':', 1)[-1].strip()}") from None
    except OSError as exc:
        raise CliError(f"{args.out_dir}: cannot write ({exc.strerror or exc})") from None
    n_val = val_count(args.images, args.val_fraction)
    info = {
        "data": str(path),
        "task": args.task,
        "images": args.images,
        "train_images": args.images - n_val,
        "val_images": n_val,
        "image_size": args.image_size,
        "seed": args.seed,
    }
    if args.json:
        print_json(info)
    else:
        print(f"wrote {args.task} data: {info['train_images']} train + {n_val} val images "
              f"({args.image_size} px) -> {path}")
    return 0
