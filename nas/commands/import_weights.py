"""``opennac import-weights CKPT --arch NAME_OR_FILE --out OUT.pt``: super-gradients weights.

Converts a super-gradients 3.x YOLO-NAS / YOLO-NAS-Pose checkpoint into an opennac-ckpt/1
checkpoint (epoch 0) that ``opennac eval``, ``opennac export --checkpoint`` and
``opennac train --init`` read. See docs/import.md.

Example:
    $ opennac import-weights yolo_nas_s_coco.pth --arch yolo_nas_s --out s_coco.pt
    $ opennac import-weights ckpt_best.pth --arch yolo_nas_pose_n --out pose_n.pt --force
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.cli import CliError
from nas.commands._common import check_output_file, resolve_arch


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import-weights",
        help="convert a super-gradients YOLO-NAS / YOLO-NAS-Pose checkpoint to an OpenNAC one",
        description=(
            "Convert a super-gradients 3.x checkpoint of a YOLO-NAS or YOLO-NAS-Pose model (a "
            ".pth whose dict holds 'ema_net' or 'net', or a bare state_dict; a 'module.' prefix "
            "from DDP is removed) into an opennac-ckpt/1 checkpoint (epoch 0) for --arch. Every "
            "tensor must fit: a missing, extra or wrongly shaped one is refused, naming it. The "
            "unused QARepVGG 'rbr_reparam' tensors are skipped; the neck's ConvTranspose bias "
            "is folded exactly into the next BatchNorm's running mean. Checkpoints saved after "
            "super-gradients fused its blocks are refused. The file is read with "
            "torch.load(weights_only=True): no code in it runs."
        ),
        epilog=(
            "The result works with `opennac eval`, `opennac export --checkpoint` and as a "
            "parent / --init. The class count comes from --arch: a COCO detection model needs "
            "an architecture with num_classes 80 (the presets have it). See docs/import.md."
        ),
    )
    parser.add_argument("checkpoint", type=Path, metavar="CKPT",
                        help="super-gradients checkpoint (.pth)")
    parser.add_argument("--arch", required=True, metavar="NAME_OR_FILE",
                        help="preset name (yolo_nas_s, yolo_nas_pose_n, ...) or frozen file")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT.pt",
                        help="the OpenNAC checkpoint to write")
    parser.add_argument(
        "--state-key",
        choices=("auto", "ema_net", "net", "state_dict"),
        default="auto",
        help="which weights: 'auto' (default) takes ema_net (the EMA weights super-gradients "
        "evaluates and keeps as best) when present, else net, else a bare state_dict; "
        "'state_dict' treats the whole file as one",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.set_defaults(func=_run)


def _load(path: Path) -> Any:
    """`models.safeload.safe_torch_load` (weights only) with its failures as one line."""
    from models.safeload import UnsafeCheckpointError, safe_torch_load

    try:
        return safe_torch_load(path)
    except UnsafeCheckpointError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # torch raises several types for a foreign or damaged file
        raise CliError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__})") from None


def _run(args: argparse.Namespace) -> int:
    spec, name = resolve_arch(args.arch)
    src: Path = args.checkpoint
    out: Path = args.out
    if not src.is_file():
        raise CliError(f"{src}: checkpoint not found")
    check_output_file(out, "--out file")
    if out.exists() and not args.force:
        raise CliError(f"{out} exists (use --force to overwrite it)")
    if out.exists() and out.resolve() == src.resolve():
        raise CliError(f"{out}: is the input checkpoint; choose another --out")

    from evaluators.checkpoint import save_checkpoint
    from models.build import build_model
    from models.recipe import recipe_for
    from models.sg_import import WeightImportError, import_state_dict, unwrap_sg_checkpoint

    obj = _load(src)
    try:
        sg_state, key = unwrap_sg_checkpoint(obj, args.state_key)
        state = import_state_dict(sg_state, spec)
    except WeightImportError as exc:
        raise CliError(f"{src}: {exc}") from None
    model = build_model(spec)
    model.load_state_dict(state)  # strict: the mapping covers every tensor
    recipe = recipe_for(spec)
    source = str(src.resolve())
    save_checkpoint(
        out,
        spec=spec,
        model=model.eval(),
        epoch=0,
        train_config={
            "init": source,
            "imported_from": source,
            "imported_key": key,
            "imported_format": "super-gradients/3",
            "recipe": recipe.label,
        },
        recipe=recipe.to_dict(),
    )
    count = sum(t.numel() for t in state.values() if t.is_floating_point())
    print(f"{out}: {name} ({spec.short_id}), {len(state)} tensors, {count:,} values "
          f"from {src} [{key}]")
    return 0
