"""Final training of a search's variant: ``opennac train RUN_DIR --variant m``.

The recipe is the one that trained the variant's kept weights (``provenance.recipe`` of the
variant file, else the run's ``fidelity``): epochs, batch, lr, image size, seed and, on the
run's own data, the same train / val image subsets, so the command with no overrides
reproduces the search's score. ``--epochs``, ``--data`` and the recipe flags of
``opennac train`` override it; ``--init search`` starts from the kept weights. The output goes
to ``RUN_DIR/final/<variant>/`` and an existing checkpoint there is never overwritten (continue
it with ``--resume``).

Example:
    >>> from nas.final import is_run_dir
    >>> is_run_dir("yolo_nas_s")
    False
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from nas.cli import CliError
from nas.safepath import check_relative

_OVERRIDES = ("image_size", "batch", "lr", "seed")


def is_run_dir(path: str | Path) -> bool:
    """A folder holding a run directory's ``run.json``."""
    return Path(path).is_dir() and (Path(path) / "run.json").is_file()


def variant_file(run_dir: Path, variant: str | None) -> Path:
    """``RUN_DIR/variants/<variant>.yaml`` (``LABEL/NAME`` for a labelled set)."""
    folder = run_dir / "variants"
    if not variant:
        names = sorted(str(p.relative_to(folder))[:-5] for p in folder.rglob("*.yaml"))
        raise CliError(f"{run_dir} is a run directory: choose a variant with --variant "
                       f"({', '.join(names) or 'none written yet: run opennac variants'})")
    try:
        check_relative(variant, "--variant")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    path = folder / f"{variant}.yaml"
    if not path.is_file():
        names = sorted(str(p.relative_to(folder))[:-5] for p in folder.rglob("*.yaml"))
        raise CliError(
            f"--variant: {path} does not exist (variants: {', '.join(names) or 'none'})"
        )
    return path


def run_data(run_dir: Path, exp: Any) -> Path:
    """The data set the run trained on (its synthetic set is regenerated if missing)."""
    if exp.data.synthetic is None:
        return Path(exp.data.path)
    folder = run_dir / "data" / "synthetic"
    path = folder / "data.yaml"
    if not path.is_file():
        from evaluators.synth import make_synthetic

        syn = exp.data.synthetic
        path = make_synthetic(folder, exp.task, **dataclasses.asdict(syn))
    return path


def train_variant(args: argparse.Namespace) -> int:
    """The ``opennac train RUN_DIR --variant NAME`` command (see the module docstring)."""
    import dataclasses

    from evaluators.data import DataError, load_data_config
    from evaluators.trainer import CHECKPOINT_NAME, RECIPE_OPTIONS, TrainConfig
    from models.archfile import ArchFileError, load_arch_record
    from nas.commands._common import check_output_dir
    from nas.commands.export import kept_weights
    from nas.commands.train import init_checkpoint, train_and_report
    from nas.experiment import ExperimentError, load_experiment
    from nas.rundir import RunDir, RunDirError

    try:
        rd = RunDir.open(args.arch)
        exp = load_experiment(rd.experiment_yaml)
    except (RunDirError, ExperimentError) as exc:
        raise CliError(str(exc)) from None
    path = variant_file(rd.path, args.variant)
    try:
        record = load_arch_record(path)
    except ArchFileError as exc:
        raise CliError(str(exc)) from None
    init = kept_weights(str(path)) if args.init == "search" else None
    if args.init == "search" and init is None:
        raise CliError(f"--init search: {path} names no kept weights (provenance.checkpoint)")
    if args.init not in ("scratch", "search"):
        init = init_checkpoint(args.init, record.spec)
    recipe = dict(record.provenance.get("recipe") or dataclasses.asdict(exp.fidelity))
    own_data = args.data is None
    try:
        data = load_data_config(run_data(rd.path, exp) if own_data else args.data, exp.task)
    except (DataError, OSError) as exc:
        raise CliError(f"data: {exc}") from None
    options: dict[str, Any] = {
        "epochs": args.epochs or recipe.get("epochs") or exp.fidelity.epochs,
        "image_size": recipe.get("image_size") or exp.fidelity.image_size,
        "batch": recipe.get("batch") or exp.fidelity.batch,
        "seed": recipe.get("seed", exp.fidelity.seed),
        "train_images": args.train_images or (recipe.get("train_images") if own_data else None),
        "val_images": args.val_images or (recipe.get("val_images") if own_data else None),
        "device": args.device, "num_threads": args.threads,
    }  # fmt: skip
    if recipe.get("lr") is not None:
        options["lr"] = recipe["lr"]
    for key in RECIPE_OPTIONS:  # the training recipe (models.recipe) and its switches
        if recipe.get(key) is not None:
            options[key] = recipe[key]
    flags = (*_OVERRIDES, *RECIPE_OPTIONS)
    overridden = [k for k in flags if getattr(args, k, None) is not None]
    options.update({k: getattr(args, k) for k in overridden})
    if args.no_augment:
        options.update(affine=False, flip=False, hsv=False, mosaic=False, rot90=False,
                       mixup=False)
    try:
        cfg = TrainConfig(**options)
    except ValueError as exc:
        raise CliError(f"recipe: {exc}") from None
    name = f"{rd.name}-{args.variant.replace('/', '-')}"
    out = check_output_dir(Path(args.out) if args.out else rd.path / "final" / args.variant)
    if (out / CHECKPOINT_NAME).is_file() and not args.resume:
        raise CliError(f"{out / CHECKPOINT_NAME} exists: continue it with --resume, or give "
                       "another --out")
    log = sys.stderr if args.json else sys.stdout
    source = "the run's recipe" + (f" (overridden: {', '.join(overridden)})" if overridden else "")
    print(f"variant {args.variant}: {path} ({record.spec.short_id}); {source}: epochs "
          f"{cfg.epochs}, batch {cfg.batch}, lr {cfg.lr:g}, image size {cfg.image_size}, seed "
          f"{cfg.seed}; init {init or 'scratch'}", file=log)
    code = train_and_report(record.spec, name, data, cfg, out, args, init=init)
    if not args.json:
        print(f"next: opennac export {path} --checkpoint {out / CHECKPOINT_NAME} --onnx "
              f"{args.variant.replace('/', '-')}.onnx --nms")
    return code


__all__ = ["is_run_dir", "run_data", "train_variant", "variant_file"]
