"""Training checkpoints: ``format: opennac-ckpt/1``, loadable with ``weights_only=True``.

A checkpoint holds only tensors, dicts, lists, strings and numbers::

    format          "opennac-ckpt/1"
    arch            ArchSpec.to_dict()         arch_id   its content hash
    state_dict      model weights              ema_state_dict   EMA weights (or None)
    optimizer       optimizer state (or None)  epoch     completed epochs
    metrics         last evaluation (flat)     fidelity  epochs, image_size, train/val images, seed
    history         per-epoch metric dicts     train_config   TrainConfig.to_dict()
    wall_s          training seconds so far    recipe    Recipe.to_dict() (None: older file,
                                                          trained before recipes had names)

Example:
    >>> import tempfile, pathlib
    >>> from models.build import build_model
    >>> from models.presets import get_preset
    >>> from evaluators.checkpoint import save_checkpoint, load_checkpoint, model_from_checkpoint
    >>> spec = get_preset("yolo_nas_tiny")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "last.pt"
    >>> _ = save_checkpoint(path, spec=spec, model=build_model(spec), epoch=1, metrics={"ap": 0.0})
    >>> load_checkpoint(path)["epoch"], model_from_checkpoint(path)[0].spec == spec
    (1, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.safeload import UnsafeCheckpointError, safe_torch_load
from models.spec import ArchSpec, SpecError

CKPT_FORMAT = "opennac-ckpt/1"
_REQUIRED = ("format", "arch", "state_dict", "epoch")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the key."""


def save_checkpoint(
    path: str | Path,
    *,
    spec: ArchSpec,
    model: nn.Module,
    epoch: int,
    metrics: dict[str, Any] | None = None,
    fidelity: dict[str, Any] | None = None,
    ema: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    history: list[dict[str, Any]] | None = None,
    train_config: dict[str, Any] | None = None,
    wall_s: float = 0.0,
    recipe: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": CKPT_FORMAT,
        "arch": spec.to_dict(),
        "arch_id": spec.arch_id,
        "state_dict": _cpu_state(model),
        "ema_state_dict": _cpu_state(ema) if ema is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "metrics": _plain(metrics or {}),
        "fidelity": _plain(fidelity or {}),
        "history": _plain(history or []),
        "train_config": _plain(train_config or {}),
        "wall_s": float(wall_s),
        "recipe": _plain(recipe) if recipe is not None else None,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(doc, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint (`models.safeload.safe_torch_load`: weights only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        doc = safe_torch_load(path, map_location=map_location)
    except UnsafeCheckpointError as exc:  # it needs more than plain types: never unpickled
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # torch raises several types for a foreign or damaged file
        raise CheckpointError(
            f"{path}: not an OpenNAC checkpoint (torch.load with weights_only=True failed: "
            f"{type(exc).__name__})"
        ) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: not an OpenNAC checkpoint (expected a mapping)")
    if doc.get("format") != CKPT_FORMAT:
        raise CheckpointError(
            f"{path}: key 'format' is {doc.get('format')!r}, expected {CKPT_FORMAT!r}"
        )
    for key in _REQUIRED:
        if key not in doc:
            raise CheckpointError(f"{path}: missing key {key!r}")
    try:
        doc["spec"] = ArchSpec.from_dict(doc["arch"], where="arch")
    except SpecError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if doc.get("arch_id") and doc["arch_id"] != doc["spec"].arch_id:
        raise CheckpointError(f"{path}: key 'arch_id' does not match the stored architecture")
    doc.setdefault("recipe", None)  # files written before recipes had names
    return doc


def model_from_checkpoint(
    ckpt: str | Path | dict[str, Any], use_ema: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network of a checkpoint with its (EMA, when stored) weights, eval mode."""
    from models.build import build_model

    doc = ckpt if isinstance(ckpt, dict) else load_checkpoint(ckpt)
    model = build_model(doc["spec"])
    state = doc.get("ema_state_dict") if use_ema else None
    state = state if state is not None else doc["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        if any("_adapter.bn." in k for k in state):
            raise CheckpointError(
                "checkpoint of a shared-stem pose head with ConvBNAct adapters (before they "
                "became plain 1x1 convs, as in the reference): retrain it"
            ) from None
        raise CheckpointError(f"checkpoint weights do not fit its architecture: {exc}") from None
    return model.eval(), doc


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _plain(obj: Any) -> Any:
    """Only dicts, lists, str, numbers, bools and None (weights_only-safe)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)


__all__ = [
    "CKPT_FORMAT",
    "CheckpointError",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
]
