"""``opennac data synth OUT_DIR``: write a small synthetic COCO-format data set;
``opennac data check DATA``: list every bad image and annotation of a data set.

Example:
    $ opennac data synth data/synth_det --task detection --images 64 --image-size 128 --seed 0
    $ opennac data check data/synth_det --decode
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
        help="data set tools (synthetic COCO-format data, checking a data set)",
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
    synth.add_argument("--crowd", action="store_true",
                       help="pose: 2-6 overlapping figures of varied size per image (harder)")
    synth.add_argument("--json", action="store_true", help="print one JSON object")
    synth.set_defaults(func=run_synth)
    check = sub.add_parser(
        "check",
        help="list the bad images and annotations of a COCO-format data set (exit 1 if any)",
        description=(
            "Check both splits of a data set (a data YAML or a folder holding data.yaml) item "
            "by item: annotations on unknown images or categories, zero-area boxes, keypoints "
            "of the wrong length, non-numeric values, missing keys, duplicate ids, image files "
            "that are missing (and, with --decode, that do not decode). Prints one line per "
            "split with the counts and first ids; exit 0 when clean, 1 when something would be "
            "skipped, 2 when the data set cannot be read at all. Training and evaluation skip "
            "such items with one warning line (lenient, the default); 'strict: true' in the "
            "data YAML makes the first one an error instead."
        ),
    )
    check.add_argument("data", metavar="DATA", help="data YAML or folder holding data.yaml")
    check.add_argument("--task", choices=("detection", "pose"), default=None,
                       help="task to check for (default: the data YAML's 'task', else pose "
                            "when a category lists keypoints)")  # fmt: skip
    check.add_argument("--decode", action="store_true",
                       help="also decode every image (slow on large sets)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(func=run_check)
    print_help_without_action(parser)


def run_synth(args: argparse.Namespace) -> int:
    from evaluators.synth import make_synthetic, val_count
    from nas.commands._common import print_json

    check_output_dir(args.out_dir, "OUT_DIR folder")
    try:
        path = make_synthetic(
            args.out_dir, args.task, images=args.images, image_size=args.image_size,
            seed=args.seed, val_fraction=args.val_fraction, crowd=args.crowd,
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
        "crowd": args.crowd,
    }
    if args.json:
        print_json(info)
    else:
        print(f"wrote {args.task} data: {info['train_images']} train + {n_val} val images "
              f"({args.image_size} px) -> {path}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from evaluators.data import DataError, load_data_config
    from evaluators.data_check import check_split, read_json
    from nas.commands._common import print_json

    path = Path(args.data)
    try:
        task = args.task
        if task is None:
            yaml_path = path / "data.yaml" if path.is_dir() else path
            doc = yaml.safe_load(yaml_path.read_text()) if yaml_path.is_file() else None
            task = doc.get("task") if isinstance(doc, dict) else None
        if task is None:
            cfg = load_data_config(path, "detection")
            cats = read_json(cfg.train_annotations).get("categories") or []
            pose = any(isinstance(c, dict) and isinstance(c.get("keypoints"), list) for c in cats)
            task = "pose" if pose else "detection"
        cfg = load_data_config(path, task)
        reports = {
            split: check_split(getattr(cfg, f"{split}_images"),
                               getattr(cfg, f"{split}_annotations"), task, args.decode)
            for split in ("train", "val")
        }  # fmt: skip
    except (DataError, yaml.YAMLError, OSError) as exc:
        raise CliError(str(exc)) from None
    bad = sum(r.skipped for r in reports.values())
    if args.json:
        print_json({"data": str(cfg.source), "task": task, "strict": cfg.strict,
                    "decoded": args.decode, "problems": bad,
                    "splits": {s: {"file": r.source, "totals": r.totals, "skipped": r.skipped,
                                   "found": r.found} for s, r in reports.items()}})  # fmt: skip
    else:
        for split, r in reports.items():
            counts = ", ".join(f"{n} {item}(s)" for item, n in r.totals.items())
            print(f"{split}: {r.line() if r.skipped else f'{r.source}: clean ({counts})'}")
        if bad:
            mode = ("this data YAML has strict: true, so training stops at the first one"
                    if cfg.strict else "they are skipped in training and evaluation; "
                    "strict: true in the data YAML makes them errors")  # fmt: skip
            print(f"{bad} bad item(s): {mode}")
    return 1 if bad else 0
