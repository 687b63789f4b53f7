"""Knowledge distillation between two networks' raw training-mode outputs (`DistillLoss`).

Student and teacher read the same input; their output dicts (`models.build.YoloNAS`, training
mode) must cover the same anchors (strides 8/16/32 at one input size: always true for this
family) with the same class count, ``reg_max`` and keypoint count; otherwise `DistillLoss`
raises ValueError naming what differs. Architectures may differ in everything else.

Terms (each returned unweighted in ``parts``; the total is their weighted sum):

- ``distill_cls``: binary KL per class, ``KL(Bern(sigmoid(t / T)) || Bern(sigmoid(s / T)))``,
  summed over classes and over every anchor, divided by ``norm`` (below); for pose also the K
  keypoint-visibility scores (the same prediction conv makes them), weighted per anchor by the
  teacher's person score (visibility means nothing on background, as in the task loss). The
  classifier is a set of independent sigmoids trained to IoU-aware soft targets (varifocal /
  focal loss), so each class is a Bernoulli, and the teacher's score is itself a soft target; a
  softmax across classes would impose an exclusivity the model does not have. Background
  anchors count in full (the student must learn to stay quiet there too, as the varifocal loss
  has it), but they cost nothing where both agree.
- ``distill_dfl``: KL between the DFL box distributions (softmax over the ``reg_max + 1`` bins
  at temperature T), mean over the four sides, averaged over anchors weighted by the teacher's
  max class score (box distributions of background anchors mean nothing).
- ``distill_kpt`` (pose): L1 distance between the decoded keypoints, in units of the anchor's
  stride, weighted per joint by the teacher's keypoint confidence (sigmoid visibility) and per
  anchor by the teacher's person score. L1 rather than OKS: OKS's gradient vanishes beyond a
  few sigmas, which is where a fresh student starts.

Both KL terms are scaled by T**2 (their gradients keep their size as T changes). ``norm`` is the
sum of the teacher's max class scores over the batch (at least 1): the task losses are likewise
normalised by the sum of their targets, so a distillation weight of 1 is on their scale. With
identical outputs every term is exactly 0; the teacher's outputs are detached.

Example:
    >>> import torch
    >>> from models.build import build_model
    >>> from models.presets import get_preset
    >>> model = build_model(get_preset("yolo_nas_pose_tiny"))
    >>> out = model(torch.rand(1, 3, 64, 64))
    >>> total, parts = DistillLoss(temperature=2.0)(out, {k: v.detach() for k, v in out.items()})
    >>> sorted(parts), abs(float(total.detach())) < 1e-6
    (['distill_cls', 'distill_dfl', 'distill_kpt'], True)
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


def binary_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Elementwise KL(teacher || student) of Bernoullis ``sigmoid(logits / T)``; 0 when equal.

    Written as BCE(student, p_t) - BCE(teacher, p_t) (cross-entropy minus the teacher's
    entropy), both stable for any logits.
    """
    s = student_logits / temperature
    t = teacher_logits / temperature
    p_t = t.sigmoid()
    cross = F.binary_cross_entropy_with_logits(s, p_t, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(t, p_t, reduction="none")
    return (cross - entropy).clamp(min=0.0)


def categorical_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0
                   ) -> Tensor:  # fmt: skip
    """KL(softmax(t / T) || softmax(s / T)) over the last axis; shape without it."""
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1)


class DistillLoss(nn.Module):
    """Distillation loss between a student's and a teacher's raw training-mode outputs.

    ``forward(student, teacher) -> (total, parts)``; ``parts`` (detached) holds
    ``distill_cls``, ``distill_dfl`` and, for pose, ``distill_kpt``; ``total`` is
    ``sum(weights[name] * part)``. The teacher's outputs are detached here, so gradients reach
    the student only.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        cls_weight: float = 1.0,
        dfl_weight: float = 1.0,
        kpt_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            temperature > 0 and math.isfinite(temperature)
        ):
            raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
        self.temperature = float(temperature)
        self.weights = {"distill_cls": cls_weight, "distill_dfl": dfl_weight,
                        "distill_kpt": kpt_weight}  # fmt: skip

    def forward(
        self, student: dict[str, Tensor], teacher: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        check_compatible(student, teacher)
        t_cls = teacher["cls_logits"].detach().float()  # [B, A, C]
        pose = "kpt_xy" in student
        temp = self.temperature
        # Anchor weights: the teacher's max class score (pose: its person score) [B, A].
        weight = t_cls.sigmoid().amax(-1)
        norm = weight.sum().clamp(min=1.0)
        weight_sum = weight.sum().clamp(min=1e-9)

        cls_kl = binary_kl(student["cls_logits"].float(), t_cls, temp).sum(-1)  # [B, A]
        if pose:  # the K visibility scores (same conv as the person score), where a person is
            vis_kl = binary_kl(student["kpt_vis_logits"].float(),
                               teacher["kpt_vis_logits"].detach().float(), temp).sum(-1)
            cls_kl = cls_kl + vis_kl * weight  # fmt: skip
        loss_cls = cls_kl.sum() / norm * temp**2
        dfl = categorical_kl(student["reg_dist"].float(), teacher["reg_dist"].detach().float(),
                             temp).mean(-1)  # [B, A]  # fmt: skip
        loss_dfl = (dfl * weight).sum() / weight_sum * temp**2
        parts = {"distill_cls": loss_cls, "distill_dfl": loss_dfl}
        if pose:
            t_xy = teacher["kpt_xy"].detach().float()  # [B, A, K, 2]
            conf = teacher["kpt_vis_logits"].detach().float().sigmoid()  # [B, A, K]
            strides = student["strides"].float()[None, :, None]  # [1, A, 1]
            l1 = (student["kpt_xy"].float() - t_xy).abs().sum(-1) / strides  # [B, A, K]
            w = conf * weight[..., None]
            parts["distill_kpt"] = (l1 * w).sum() / w.sum().clamp(min=1e-9)
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, {k: v.detach() for k, v in parts.items()}


def check_compatible(student: dict[str, Tensor], teacher: dict[str, Tensor]) -> None:
    """ValueError unless the two output dicts can be distilled one into the other."""
    if ("kpt_xy" in student) != ("kpt_xy" in teacher):
        kind = {True: "pose", False: "detection"}
        raise ValueError(f"distillation: the student is a {kind['kpt_xy' in student]} model, "
                         f"the teacher a {kind['kpt_xy' in teacher]} model")
    checks = [
        ("anchors", student["anchors"].shape[0], teacher["anchors"].shape[0]),
        ("class count" if "kpt_xy" not in student else "person scores",
         student["cls_logits"].shape[-1], teacher["cls_logits"].shape[-1]),
        ("reg_max", student["reg_dist"].shape[-1] - 1, teacher["reg_dist"].shape[-1] - 1),
    ]  # fmt: skip
    if "kpt_xy" in student:
        checks.append(("keypoints", student["kpt_xy"].shape[-2], teacher["kpt_xy"].shape[-2]))
    for what, s, t in checks:
        if s != t:
            raise ValueError(f"distillation: the student has {what} {s}, the teacher {t} "
                             "(they must match)")
    if student["cls_logits"].shape[0] != teacher["cls_logits"].shape[0]:
        raise ValueError("distillation: student and teacher outputs of different batch sizes")


__all__ = ["DistillLoss", "binary_kl", "categorical_kl", "check_compatible"]
