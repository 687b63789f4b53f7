"""Weight inheritance: start a candidate from a trained parent of another architecture.

`inherit_weights(child, child_spec, parent, parent_spec)` copies into ``child`` (in place) every
parent weight that has a consistent counterpart, module by module along the two specs:

- depth: a CSP body (or a head branch) with fewer blocks takes the parent's first k blocks;
  extra blocks keep the child's fresh initialisation;
- width: a producer with fewer output channels takes the parent's channels of largest filter L1
  norm (kept in their order); every consumer of them (the next conv's input channels, BatchNorm,
  the bottleneck residual, the QARepVGG identity, concat slices, the neck's ConvTranspose, the
  head convs) uses the same indices. More channels than the parent: the parent's go into the
  first slots, the extra ones keep the fresh init;
- a block of another kind (QSP vs QCI body, another kernel, another stem layout in the pose head)
  and prediction convs with another number of outputs start fresh;
- the heads of different tasks (a detection parent for a pose child) start fresh: backbone and
  neck are inherited.

The channel relation is written per block type (`evaluators.inherit_blocks`), not traced: a map
is a LongTensor giving, for each child channel, its parent channel or -1 (none). Inheriting into
the parent's own architecture maps every channel to itself and copies every tensor (buffers
included), so the outputs are identical.

Example:
    >>> from models.build import build_model
    >>> from models.presets import get_preset
    >>> spec = get_preset("yolo_nas_tiny")
    >>> parent, child = build_model(spec), build_model(spec)
    >>> inherit_weights(child, spec, parent, spec).fraction
    1.0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.inherit_blocks import Copier, inherit_model
from models.spec import ArchSpec


@dataclass(frozen=True)
class InheritResult:
    """What `inherit_weights` copied. ``fraction``: inherited parameter elements / all parameter
    elements of the child (buffers not counted). Tensor counts are over the child's parameters:
    ``whole`` (same shape, copied entirely), ``sliced`` (some or all elements copied from a
    parent tensor of another shape, or only some slots filled), ``fresh`` (nothing copied)."""

    fraction: float
    inherited_elements: int
    total_elements: int
    tensors_whole: int
    tensors_sliced: int
    tensors_fresh: int
    parent_arch_id: str = ""
    parent_task: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def inherit_weights(
    child: nn.Module, child_spec: ArchSpec, parent: nn.Module, parent_spec: ArchSpec
) -> InheritResult:
    """Copy ``parent``'s weights into ``child`` (in place, see the module docstring)."""
    copier = Copier()
    with torch.no_grad():
        inherit_model(copier, child, child_spec, parent, parent_spec)
    total = inherited = whole = sliced = fresh = 0
    for param in child.parameters():
        n = param.numel()
        got = copier.copied.get(id(param), 0)
        total += n
        inherited += got
        if got == 0:
            fresh += 1
        elif got == n and id(param) in copier.whole:
            whole += 1
        else:
            sliced += 1
    return InheritResult(
        fraction=inherited / total if total else 0.0,
        inherited_elements=inherited,
        total_elements=total,
        tensors_whole=whole,
        tensors_sliced=sliced,
        tensors_fresh=fresh,
        parent_arch_id=parent_spec.arch_id,
        parent_task=parent_spec.task,
    )


def inherit_from_checkpoint(
    child: nn.Module, child_spec: ArchSpec, path: str | Path
) -> InheritResult:
    """`inherit_weights` from checkpoint ``path`` (its EMA weights when stored).
    CheckpointError (a ValueError naming the file) for a missing or foreign file."""
    from evaluators.checkpoint import model_from_checkpoint

    parent, doc = model_from_checkpoint(path, use_ema=True)
    return inherit_weights(child, child_spec, parent, doc["spec"])


def check_init_compatible(child_spec: ArchSpec, parent_spec: ArchSpec, path: str | Path) -> None:
    """ValueError naming ``path`` unless a checkpoint of ``parent_spec`` may start a model of
    ``child_spec``: the same task (pose: the same keypoints), or a detection parent for pose."""
    if parent_spec.task == child_spec.task:
        if child_spec.task == "pose" and parent_spec.num_keypoints != child_spec.num_keypoints:
            raise ValueError(
                f"{path}: init checkpoint predicts {parent_spec.num_keypoints} keypoints, the "
                f"model {child_spec.num_keypoints}"
            )
        return
    if parent_spec.task == "detection" and child_spec.task == "pose":
        return
    raise ValueError(
        f"{path}: init checkpoint of a {parent_spec.task} model cannot start a "
        f"{child_spec.task} model (expected {child_spec.task}, or detection for pose)"
    )


__all__ = [
    "InheritResult",
    "check_init_compatible",
    "inherit_from_checkpoint",
    "inherit_weights",
]
