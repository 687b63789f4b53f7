"""``opennac train NAME_OR_FILE --data DIR_OR_YAML``: a short training run scored by COCO AP;
``opennac train RUN_DIR --variant m``: the final training of a search's variant.

Example:
    $ opennac data synth data/synth_det --task detection --images 64 --image-size 96
    $ opennac train yolo_nas_tiny --data data/synth_det --epochs 20 --image-size 96 --json
    $ opennac train runs/quickstart --variant m --epochs 60 --init search
    $ opennac train child.yaml --data data/synth_det --init runs/train/yolo_nas_tiny/last.pt
    $ opennac train yolo_nas_tiny --data data/synth_det --distill runs/train/yolo_nas_s/last.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nas.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a preset, an architecture file or a search's variant; report COCO AP",
        description=(
            "Train a preset (e.g. yolo_nas_tiny) or a frozen architecture file from scratch "
            "(or from a checkpoint's weights, --init CKPT) on a COCO-format data set (a data "
            "YAML, or a folder holding data.yaml), evaluating COCO AP (pycocotools; OKS AP for "
            "pose) after every epoch. Writes OUT/last.pt (checkpoint, format opennac-ckpt/1) "
            "and OUT/metrics.json. With a run directory and --variant, "
            "trains that variant with the run's recipe (batch, lr, image size, seed, epochs and "
            "image subsets of its kept weights; --epochs, --data and the recipe flags override) "
            "on the run's data, from scratch or from its kept weights (--init search), into "
            "RUN_DIR/final/VARIANT; with the run's recipe it reproduces the search's AP."
        ),
    )
    parser.add_argument("arch", metavar="NAME_FILE_OR_RUN",
                        help="preset name, architecture file, or run directory (with --variant)")
    parser.add_argument("--data", default=None, metavar="DIR_OR_YAML",
                        help="data YAML or a folder holding data.yaml (default with a run "
                             "directory: the run's data)")
    parser.add_argument("--variant", default=None, metavar="NAME",
                        help="with a run directory: the variant to train (m, or LABEL/NAME for "
                             "RUN_DIR/variants/LABEL/NAME.yaml)")
    parser.add_argument("--init", default="scratch", metavar="scratch|search|CKPT",
                        help="start from scratch (default); from a checkpoint CKPT (an "
                             "opennac-ckpt/1 file: the same architecture loads exactly, another "
                             "one of the same task, or a detection checkpoint for a pose model, "
                             "inherits its weights: docs/training.md, 'Weight inheritance'); "
                             "or, with --variant, 'search': the variant's kept weights")
    parser.add_argument("--epochs", type=int, default=None, metavar="N",
                        help="default 10 (a run's recipe with --variant)")
    parser.add_argument("--image-size", type=int, default=None, metavar="PIXELS",
                        help="square input size, a multiple of 32 (default 320)")
    parser.add_argument("--batch", type=int, default=None, metavar="B", help="default 16")
    parser.add_argument("--train-images", type=_count, default=None, metavar="N",
                        help="train on N images (or a fraction in (0, 1]); default all")
    parser.add_argument("--val-images", type=_count, default=None, metavar="N",
                        help="evaluate on N images (or a fraction in (0, 1]); default all")
    parser.add_argument("--device", default="cpu", metavar="cpu|cuda",
                        help="cpu (default), cuda or cuda:N")
    parser.add_argument("--lr", type=float, default=None, metavar="LR",
                        help="peak learning rate (default 2e-3)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="CPU threads for torch (default 1)")
    parser.add_argument("--no-augment", action="store_true",
                        help="switch off every augmentation (affine, flip, HSV, mosaic, rot90, "
                             "MixUp)")
    _add_recipe_flags(parser)
    _add_distill_flags(parser)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default runs/train/<name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.pt when it exists")
    parser.add_argument("--json", action="store_true",
                        help="print the final metrics as one JSON object (progress to stderr)")
    parser.set_defaults(func=run)


def _add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """``--recipe`` and the recipe-dependent augmentation switches (docs/training.md)."""
    from models.recipe import list_recipes

    parser.add_argument("--recipe", default=None, metavar="NAME",
                        help="training recipe (loss weights, BN momentum, weight decay, "
                             "augmentations): one of " + ", ".join(list_recipes())
                             + "; default: the released model's nearest in head width")
    for name, what in (("mosaic", "2x2 mosaic (recipe: pose)"),
                       ("rot90", "random 90-degree rotation (recipe: pose M/L)"),
                       ("mixup", "MixUp (recipe: detection)")):  # fmt: skip
        parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                            help=f"{what}; default: as the recipe says")
    parser.add_argument("--oks-area-factor", type=float, default=None, metavar="F",
                        help="pose: OKS scale = box area x F in the assigner and the loss "
                             "(default: the recipe's 0.53; 1.0 for short low-resolution runs, "
                             "docs/training.md)")


def _add_distill_flags(parser: argparse.ArgumentParser) -> None:
    """``--distill CKPT`` and its weight and temperature (docs/training.md, Distillation)."""
    parser.add_argument("--distill", default=None, metavar="CKPT",
                        help="distil from this checkpoint (opennac-ckpt/1, EMA weights; same "
                             "task, classes or keypoints and reg_max): the frozen teacher sees "
                             "each augmented batch and the loss adds KL on class scores and DFL "
                             "box distributions, and an L1 term on keypoints for pose")
    parser.add_argument("--distill-weight", type=float, default=None, metavar="W",
                        help="weight of the distillation loss (default 1.0 with --distill)")
    parser.add_argument("--distill-temperature", type=float, default=None, metavar="T",
                        help="temperature of the KL terms (default 1.0)")


def _distill_options(args: argparse.Namespace) -> tuple[Path | None, dict[str, Any]]:
    """The teacher checkpoint (checked) and the TrainConfig distill options of ``args``."""
    from evaluators.checkpoint import CheckpointError, load_checkpoint

    if args.distill is None:
        for flag in ("distill_weight", "distill_temperature"):
            if getattr(args, flag) is not None:
                raise CliError(f"--{flag.replace('_', '-')}: needs --distill CKPT")
        return None, {}
    try:
        load_checkpoint(args.distill)
    except CheckpointError as exc:
        raise CliError(f"--distill: {exc}") from None
    options = {"distill_weight": 1.0 if args.distill_weight is None else args.distill_weight}
    if args.distill_temperature is not None:
        options["distill_temperature"] = args.distill_temperature
    return Path(args.distill), options


def _count(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if value > 1 or text.isdigit():
        if value != int(value):
            raise argparse.ArgumentTypeError(f"expected a whole count above 1, got {text!r}")
        return int(value)
    return value


def run(args: argparse.Namespace) -> int:
    from evaluators.data import DataError, load_data_config
    from evaluators.trainer import RECIPE_OPTIONS, TrainConfig
    from nas.commands._common import check_output_dir, resolve_arch
    from nas.final import is_run_dir, train_variant

    if is_run_dir(args.arch):
        if args.distill is not None:
            raise CliError("--distill: not available with a run directory's --variant yet")
        return train_variant(args)
    if args.variant is not None or args.init == "search":
        raise CliError(f"--variant and --init search need a run directory; {args.arch} is not "
                       "one")
    if args.data is None:
        raise CliError("--data: required (a data YAML or a folder holding data.yaml)")
    for key, default in (("epochs", 10), ("image_size", 320), ("batch", 16), ("seed", 0)):
        if getattr(args, key) is None:
            setattr(args, key, default)
    spec, name = resolve_arch(args.arch)
    try:
        data = load_data_config(args.data, spec.task)
    except DataError as exc:
        raise CliError(str(exc)) from None
    options: dict[str, Any] = {
        "epochs": args.epochs, "image_size": args.image_size, "batch": args.batch,
        "train_images": args.train_images, "val_images": args.val_images,
        "device": args.device, "seed": args.seed, "num_threads": args.threads,
    }  # fmt: skip
    if args.lr is not None:
        options["lr"] = args.lr
    options.update({k: getattr(args, k) for k in RECIPE_OPTIONS})
    teacher, distill = _distill_options(args)
    options.update(distill)
    if args.no_augment:
        options.update(affine=False, flip=False, hsv=False, mosaic=False, rot90=False,
                       mixup=False)
    try:
        cfg = TrainConfig(**options)
        cfg.get_recipe(spec)  # an unknown recipe, or one of the other task, is a user error
    except ValueError as exc:
        raise CliError(f"--{str(exc).split(':')[0].replace('_', '-')}: "
                       f"{str(exc).split(':', 1)[-1].strip()}") from None
    if args.out is None:  # the name may come from a frozen file made elsewhere
        from nas.safepath import UnsafeNameError, check_name

        try:
            check_name(name, f"{args.arch}: the architecture's name (or choose --out)")
        except UnsafeNameError as exc:
            raise CliError(str(exc)) from None
    out = check_output_dir(Path(args.out) if args.out else Path("runs") / "train" / name)
    init = init_checkpoint(args.init, spec) if args.init != "scratch" else None
    return train_and_report(spec, name, data, cfg, out, args, init=init, teacher=teacher)


def init_checkpoint(text: str, spec: Any) -> Path:
    """The ``--init CKPT`` file, checked before training: it exists, is an OpenNAC checkpoint,
    and may start a model of ``spec`` (`evaluators.inherit.check_init_compatible`)."""
    from evaluators.checkpoint import load_checkpoint
    from evaluators.inherit import check_init_compatible

    path = Path(text)
    if not path.is_file():
        raise CliError(f"--init {text}: no such checkpoint file (expected scratch, search with "
                       "a run directory, or an opennac-ckpt/1 file)")
    try:
        check_init_compatible(spec, load_checkpoint(path)["spec"], path)
    except ValueError as exc:  # CheckpointError included
        raise CliError(f"--init: {exc}") from None
    return path


def train_and_report(spec: Any, name: str, data: Any, cfg: Any, out: Path,
                     args: argparse.Namespace, init: Path | None = None,
                     teacher: Path | None = None) -> int:  # fmt: skip
    """Train with progress lines (stderr with --json), then the final line or JSON."""
    from evaluators.trainer import TrainingDiverged, train_candidate
    from nas.commands._common import print_json

    try:
        recipe = cfg.get_recipe(spec)
    except ValueError as exc:
        raise CliError(f"--{exc}") from None
    log = sys.stderr if args.json else sys.stdout
    print(f"training {name} ({spec.task}, {spec.short_id}) on {data.source} for {cfg.epochs} "
          f"epochs at {cfg.image_size} px on {cfg.device}, recipe {recipe.label}; output {out}",
          file=log, flush=True)  # fmt: skip
    if teacher is not None:
        print(f"distilling from teacher {teacher} (weight {cfg.distill_weight}, temperature "
              f"{cfg.distill_temperature})", file=log, flush=True)

    def progress(epoch: int, m: dict[str, Any]) -> None:
        extra = f"  box_ap {m['box_ap']:.4f}" if "box_ap" in m else ""
        print(f"epoch {epoch:>3}/{cfg.epochs}  loss {m.get('loss', float('nan')):.4f}  "
              f"ap {m['ap']:.4f}  ap50 {m['ap50']:.4f}{extra}  lr {m['lr']:.2e}  "
              f"{m['wall_s']:.1f}s", file=log, flush=True)

    try:
        result = train_candidate(spec, data, cfg, callback=progress, out_dir=out,
                                 resume=args.resume, init=init, teacher=teacher)
    except TrainingDiverged as exc:
        raise CliError(f"{exc} (try a lower --lr)") from None
    except ValueError as exc:  # DataError, CheckpointError and bad data alike
        raise CliError(str(exc)) from None
    info = {"name": name, **result.to_dict(), "metrics_file": str(out / "metrics.json")}
    if args.json:
        print_json(info)
    else:
        box = f", box AP {result.box_ap:.4f}" if result.box_ap is not None else ""
        print(f"done: AP {result.ap:.4f}, AP50 {result.ap50:.4f}{box} after {result.epochs} "
              f"epochs on {result.train_images} images ({result.wall_s:.1f}s); "
              f"checkpoint {result.checkpoint}")
    if init is not None and result.inherited_fraction is not None:
        print(f"init {init}: {result.inherited_fraction:.1%} of the parameters inherited",
              file=log)
    return 0
