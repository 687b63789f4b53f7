"""A frozen teacher for distillation during training (`Distiller`, `load_teacher`).

The teacher is the network of an opennac-ckpt/1 checkpoint with its EMA weights (its raw
weights when none are stored), on the training device, frozen: no parameter requires a
gradient, its forward runs under ``torch.no_grad``, and every BatchNorm is in eval mode (running
statistics, never updated) while the network itself is in training mode, so that it returns the
raw head outputs the loss reads (`models.build.YoloNAS`). It sees the same augmented batch as
the student. `Distiller.add` adds ``weight x models.distill.DistillLoss`` to the task loss.

Example:
    >>> import tempfile, pathlib, torch
    >>> from evaluators.checkpoint import save_checkpoint
    >>> from models.build import build_model
    >>> from models.presets import get_preset
    >>> spec = get_preset("yolo_nas_tiny")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "teacher.pt"
    >>> _ = save_checkpoint(path, spec=spec, model=build_model(spec), epoch=1)
    >>> distiller = Distiller.from_checkpoint(path, spec, weight=1.0)
    >>> out = build_model(spec)(torch.rand(2, 3, 64, 64))
    >>> loss, parts = distiller.add(torch.tensor(0.0), {}, out, torch.rand(2, 3, 64, 64))
    >>> sorted(parts), all(not p.requires_grad for p in distiller.teacher.parameters())
    (['distill_cls', 'distill_dfl'], True)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from evaluators.checkpoint import model_from_checkpoint
from models.distill import DistillLoss
from models.spec import ArchSpec


def load_teacher(path: str | Path, student: ArchSpec, device: str | torch.device = "cpu"
                 ) -> nn.Module:  # fmt: skip
    """The frozen teacher network of checkpoint ``path`` (EMA weights) on ``device``.

    ValueError (a `CheckpointError` for a missing or foreign file) naming ``path`` when the
    checkpoint cannot teach ``student``: another task, class count, keypoint count or reg_max.
    """
    model, doc = model_from_checkpoint(path, use_ema=True)
    check_teacher(doc["spec"], student, path)
    for p in model.parameters():
        p.requires_grad_(False)
    model.to(device)
    raw_mode(model)
    return model


def check_teacher(spec: ArchSpec, student: ArchSpec, path: str | Path) -> None:
    """ValueError naming ``path`` unless a teacher of ``spec`` can teach ``student``: the same
    task, reg_max, and class count (detection) or keypoint count (pose)."""
    facts = [("task", spec.task, student.task), ("reg_max", spec.head.reg_max,
                                                  student.head.reg_max)]  # fmt: skip
    if student.task == "detection":
        facts.append(("classes", spec.num_classes, student.num_classes))
    else:
        facts.append(("keypoints", spec.num_keypoints, student.num_keypoints))
    for what, theirs, ours in facts:
        if theirs != ours:
            raise ValueError(f"{path}: teacher with {what} {theirs}, the student has {ours}")


def raw_mode(model: nn.Module) -> nn.Module:
    """Training mode (raw head outputs) with every BatchNorm in eval mode (running stats)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


class Distiller:
    """Adds ``weight x DistillLoss(student outputs, teacher outputs)`` to a task loss."""

    def __init__(self, teacher: nn.Module, weight: float, temperature: float = 1.0,
                 amp: bool = False) -> None:  # fmt: skip
        self.teacher = teacher
        self.weight = float(weight)
        self.loss = DistillLoss(temperature)
        self.amp = amp

    @classmethod
    def from_checkpoint(cls, path: str | Path, student: ArchSpec, weight: float,
                        temperature: float = 1.0, device: str | torch.device = "cpu",
                        amp: bool = False) -> Distiller:  # fmt: skip
        return cls(load_teacher(path, student, device), weight, temperature, amp)

    @torch.no_grad()
    def teacher_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """The teacher's raw outputs on batch ``x`` (BN in eval mode, no graph)."""
        raw_mode(self.teacher)  # cheap, and robust to a .train() call from outside
        with torch.autocast(x.device.type, enabled=self.amp):
            return self.teacher(x)

    def add(
        self, loss: Tensor, parts: dict[str, Tensor], outputs: dict[str, Tensor], x: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``loss + weight x distillation loss`` and ``parts`` with the distill parts added."""
        total, distill_parts = self.loss(outputs, self.teacher_outputs(x))
        return loss + self.weight * total, {**parts, **distill_parts}


__all__ = ["Distiller", "check_teacher", "load_teacher", "raw_mode"]
