"""``opennac predict WEIGHTS IMAGE_OR_DIR... [--out DIR] [--score 0.25]``: detections drawn on
images and written as COCO results.

Example:
    $ opennac predict runs/quickstart/variants/m.yaml runs/quickstart/data/synthetic/images/val
    $ opennac predict m.onnx street.jpg --out predictions --score 0.3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nas.cli import CliError
from nas.commands._common import check_output_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="draw detections (boxes, pose keypoints) on images and write COCO results JSON",
        description=(
            "Run a model on image files: WEIGHTS is a checkpoint (.pt, EMA weights, at its "
            "training image size unless --image-size), a variant or frozen file whose "
            "provenance names kept weights (RUN_DIR/variants/m.yaml), or an ONNX model from "
            "`opennac export` (at its exported size). Each image is letterboxed, the "
            "detections above --score are mapped back to the original image, drawn (boxes with "
            "class and score; pose keypoints joined by the COCO skeleton) into OUT/<name>.jpg, "
            "and written to OUT/detections.json as COCO results (image ids from --data's "
            "annotations, else from numeric file names, else 1, 2, ...; OUT/images.json lists "
            "them)."
        ),
    )
    parser.add_argument("weights", metavar="WEIGHTS",
                        help="checkpoint (.pt), variant file with kept weights, or .onnx")
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                        help="image files or folders of images")
    parser.add_argument("--out", type=Path, default=Path("predictions"), metavar="DIR",
                        help="output folder (default ./predictions)")
    parser.add_argument("--score", type=float, default=0.25,
                        help="draw and write detections with a score >= this (default 0.25)")
    parser.add_argument("--image-size", type=int, default=None, metavar="PIXELS",
                        help="input size for a checkpoint (default: its training size)")
    parser.add_argument("--data", default=None, metavar="DIR_OR_YAML",
                        help="COCO-format data set: category ids and names, image ids")
    parser.add_argument("--no-draw", action="store_true", help="write only detections.json")
    parser.add_argument("--min-side", type=int, default=480, metavar="PIXELS",
                        help="draw smaller images enlarged to this longest side (default 480; "
                             "0: original size)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from evaluators.predict import Predictor, coco_results, draw
    from models.letterbox import load_image

    if not 0.0 <= args.score <= 1.0:
        raise CliError(f"--score: expected a number in [0, 1], got {args.score}")
    check_output_dir(args.out, "--out folder")
    weights = _weights_file(args.weights)
    files = _image_files(args.images)
    try:
        predictor = Predictor.load(weights, score=args.score, image_size=args.image_size)
    except ValueError as exc:  # CheckpointError, bad ONNX file, bad size
        raise CliError(str(exc)) from None
    names, label_to_cat, skeleton, ids = _categories(args.data, predictor.task)
    if names is None and predictor.task == "pose":
        names = ["person"]
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    used: set[str] = set()
    for index, path in enumerate(files, start=1):
        image = load_image(path)
        image_id = ids.get(path.name) or (int(path.stem) if path.stem.isdigit() else index)
        det = predictor.predict(image)
        results += coco_results(image_id, det, label_to_cat)
        images.append({"id": image_id, "file_name": str(path), "height": int(image.shape[0]),
                       "width": int(image.shape[1])})  # fmt: skip
        if not args.no_draw:
            stem = path.stem if path.stem not in used else f"{path.stem}_{index}"
            used.add(stem)
            picture = draw(image, det, names, skeleton, min_side=args.min_side)
            picture.save(args.out / f"{stem}.jpg", quality=95)
    (args.out / "detections.json").write_text(json.dumps(results) + "\n")
    (args.out / "images.json").write_text(json.dumps(images, indent=1) + "\n")
    print(f"{len(files)} image(s) through {weights} ({predictor.kind}, {predictor.task}, "
          f"{predictor.size[0]}x{predictor.size[1]} px): {len(results)} detection(s) with "
          f"score >= {args.score}")
    drawn = "" if args.no_draw else f"pictures {args.out}/*.jpg, "
    print(f"wrote {drawn}{args.out / 'detections.json'} (COCO results), "
          f"{args.out / 'images.json'}")
    return 0


def _weights_file(weights: str) -> Path:
    """A checkpoint or ONNX path as given; a frozen file -> the kept checkpoint it names."""
    from nas.commands.export import kept_weights

    path = Path(weights)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        ckpt = kept_weights(weights)
        if ckpt is None:
            raise CliError(
                f"{path}: names no kept weights (provenance.checkpoint); train it with "
                "`opennac train RUN_DIR --variant NAME` and predict with the checkpoint"
            )
        return ckpt
    return path


def _image_files(items: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CliError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"{path}: no such image or folder")
    return files


def _categories(
    data: str | None, task: str
) -> tuple[list[str] | None, dict[int, int] | None, list[tuple[int, int]] | None, dict[str, int]]:
    """(class names, label -> category id, skeleton, file name -> image id) from ``data``."""
    if data is None:
        return None, None, None, {}
    from evaluators.data import DataError, load_coco, load_data_config

    try:
        cfg = load_data_config(data, task)
        coco = load_coco(cfg.val_annotations)
    except (DataError, OSError, ValueError) as exc:
        raise CliError(f"--data: {exc}") from None
    cats = coco.dataset.get("categories", [])
    if task == "pose":
        cats = [c for c in cats if isinstance(c.get("keypoints"), list)][:1]
    cats = sorted(cats, key=lambda c: int(c["id"]))
    skeleton = None
    if task == "pose" and cats and cats[0].get("skeleton"):
        skeleton = [(int(a), int(b)) for a, b in cats[0]["skeleton"]]
    ids = {Path(i["file_name"]).name: int(i["id"]) for i in coco.dataset.get("images", [])}
    label_to_cat = {i: int(c["id"]) for i, c in enumerate(cats)}
    return [str(c.get("name", c["id"])) for c in cats], label_to_cat, skeleton, ids
