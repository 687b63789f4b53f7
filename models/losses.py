"""Training losses of the YOLO-NAS family, computed on the raw training-mode outputs.

Detection (`DetectionLoss`): task-aligned assignment, varifocal classification loss (alpha 0.75,
gamma 2), GIoU box loss and distribution focal loss; weights cls 1.0, iou 2.5, dfl 0.5; every
term is normalised by the sum of the assigned classification targets.

Pose (`PoseLoss`): the same assignment with the IoU multiplied by the pose OKS, a focal
classification loss on the soft targets, CIoU + DFL for the box, direct OKS regression for the
keypoints (mean over labelled joints of 1 - OKS, COCO sigmas) and a focal visibility loss
(alpha 0.25). The OKS scale in the loss and the assignment is the box area x 0.53, as in the
reference; persons without a labelled joint are not targets. The weights depend on the size
group (N/S: DFL 0.01, pose 34; M/L: DFL 0.5, pose 10): `loss_for` takes them from the spec's
`models.recipe.Recipe`.

Targets are per-image dicts: ``boxes`` [N, 4] xyxy in input pixels, ``labels`` [N] and, for
pose, ``keypoints`` [N, K, 3] (x, y, visibility) and ``areas`` [N] (COCO area in input pixels).

Example:
    >>> import torch
    >>> from models.build import build_model
    >>> from models.presets import get_preset
    >>> from models.losses import DetectionLoss
    >>> model = build_model(get_preset("yolo_nas_tiny"))
    >>> out = model(torch.rand(2, 3, 64, 64))
    >>> targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])},
    ...            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    >>> total, parts = DetectionLoss(num_classes=4)(out, targets)
    >>> sorted(parts), bool(total > 0)
    (['cls', 'dfl', 'iou'], True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import complete_box_iou_loss, generalized_box_iou_loss

from models.assigner import Assignment, TaskAlignedAssigner, keypoint_sigmas, pairwise_oks
from models.recipe import Recipe, recipe_for
from models.spec import ArchSpec


def varifocal_loss(
    logits: Tensor, target: Tensor, label: Tensor, alpha: float = 0.75, gamma: float = 2.0
) -> Tensor:
    """Summed varifocal loss: BCE to the IoU-aware ``target``, negatives weighted by
    ``alpha * p**gamma``, positives (``label`` 1) by their target."""
    p = logits.sigmoid()
    # Not detached (as in the reference): the weight's gradient on negatives is part of the loss.
    weight = alpha * p.pow(gamma) * (1 - label) + target * label
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * weight).sum()


def focal_loss(
    logits: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    reduction: str = "sum",
    alpha: float = -1.0,
) -> Tensor:
    """Focal loss on soft targets: BCE weighted by ``|target - p| ** gamma`` and, when
    ``alpha > 0``, by ``alpha * target + (1 - alpha) * (1 - target)`` (summed, or elementwise
    with ``reduction="none"``)."""
    p = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weight = (target - p).abs().pow(gamma)
    if alpha > 0:
        weight = weight * (alpha * target + (1 - alpha) * (1 - target))
    loss = bce * weight
    return loss if reduction == "none" else loss.sum()


def dfl_loss(reg_dist: Tensor, target: Tensor) -> Tensor:
    """Distribution focal loss per box: cross-entropy to the two bins around each ltrb target.

    ``reg_dist`` [N, 4, R + 1] logits, ``target`` [N, 4] in bins (0 <= t < R) -> [N].
    """
    left = target.floor().long()
    right = left + 1
    w_left = right.to(target.dtype) - target
    w_right = 1 - w_left
    logp = F.log_softmax(reg_dist.float(), dim=-1)
    loss = -(logp.gather(-1, left[..., None]).squeeze(-1) * w_left
             + logp.gather(-1, right[..., None]).squeeze(-1) * w_right)  # fmt: skip
    return loss.mean(-1)


def box_to_ltrb(boxes: Tensor, anchors: Tensor, strides: Tensor, reg_max: int) -> Tensor:
    """xyxy boxes [N, 4] -> DFL targets in stride units [N, 4], clamped to [0, reg_max)."""
    lt = (anchors - boxes[:, :2]) / strides[:, None]
    rb = (boxes[:, 2:] - anchors) / strides[:, None]
    return torch.cat([lt, rb], dim=-1).clamp(0, reg_max - 0.01)


def pad_targets(
    targets: Sequence[dict[str, Tensor]], device: torch.device, num_keypoints: int = 0
) -> dict[str, Tensor]:
    """Per-image targets -> padded batch tensors ``labels`` [B, M], ``boxes`` [B, M, 4],
    ``mask`` [B, M]; pose also ``keypoints`` [B, M, K, 3] and ``areas`` [B, M]."""
    b = len(targets)
    m = max((len(t["boxes"]) for t in targets), default=0)
    out = {
        "labels": torch.zeros((b, m), dtype=torch.long, device=device),
        "boxes": torch.zeros((b, m, 4), device=device),
        "mask": torch.zeros((b, m), dtype=torch.bool, device=device),
    }
    if num_keypoints:
        out["keypoints"] = torch.zeros((b, m, num_keypoints, 3), device=device)
        out["areas"] = torch.ones((b, m), device=device)
    for i, t in enumerate(targets):
        n = len(t["boxes"])
        if not n:
            continue
        out["labels"][i, :n] = t["labels"].to(device)
        out["boxes"][i, :n] = t["boxes"].to(device, torch.float32)
        out["mask"][i, :n] = True
        if num_keypoints:
            out["keypoints"][i, :n] = t["keypoints"].to(device, torch.float32)
            if "areas" in t:
                out["areas"][i, :n] = t["areas"].to(device, torch.float32)
            else:
                wh = out["boxes"][i, :n, 2:] - out["boxes"][i, :n, :2]
                out["areas"][i, :n] = wh.prod(-1)
    return out


class DetectionLoss(nn.Module):
    """Varifocal + GIoU + DFL with task-aligned assignment. ``forward`` -> (total, parts)."""

    def __init__(
        self,
        num_classes: int,
        reg_max: int = 16,
        cls_weight: float = 1.0,
        iou_weight: float = 2.5,
        dfl_weight: float = 0.5,
        assigner: TaskAlignedAssigner | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.weights = {"cls": cls_weight, "iou": iou_weight, "dfl": dfl_weight}
        self.assigner = assigner or TaskAlignedAssigner()

    def forward(
        self, outputs: dict[str, Tensor], targets: Sequence[dict[str, Tensor]]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        cls_logits = outputs["cls_logits"].float()
        boxes = outputs["boxes"].float()
        gt = pad_targets(targets, cls_logits.device)
        asg = self.assigner(
            cls_logits.detach().sigmoid(), boxes.detach(), outputs["anchors"],
            gt["labels"], gt["boxes"], gt["mask"],
        )  # fmt: skip
        norm = asg.scores.sum().clamp(min=1.0)
        one_hot = F.one_hot(asg.labels, self.num_classes + 1)[..., :-1].to(cls_logits.dtype)
        loss_cls = varifocal_loss(cls_logits, asg.scores, one_hot) / norm
        loss_iou, loss_dfl = _box_losses(
            outputs, boxes, asg, norm, self.reg_max, generalized_box_iou_loss
        )
        parts = {"cls": loss_cls, "iou": loss_iou, "dfl": loss_dfl}
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, {k: v.detach() for k, v in parts.items()}


class PoseLoss(nn.Module):
    """Pose loss: OKS-aware assignment, focal cls, CIoU + DFL, OKS regression, visibility.

    Defaults are the N/S recipe (``models.recipe``); `loss_for` picks a spec's weights.
    ``oks_area``: ``"box"`` scales OKS by the box area x ``oks_area_factor`` (0.53, the
    reference's estimate of the segment area), ``"segment"`` by the targets' COCO ``areas``.
    Persons with fewer than ``min_visible_keypoints`` labelled joints are left out of the
    targets (their anchors become background).
    """

    def __init__(
        self,
        num_keypoints: int,
        reg_max: int = 16,
        cls_weight: float = 1.0,
        iou_weight: float = 2.5,
        dfl_weight: float = 0.01,
        pose_weight: float = 34.0,
        vis_weight: float = 1.0,
        sigmas: Sequence[float] | None = None,
        oks_area: str = "box",
        oks_area_factor: float = 0.53,
        vis_alpha: float = 0.25,
        min_visible_keypoints: int = 1,
        assigner: TaskAlignedAssigner | None = None,
    ) -> None:
        super().__init__()
        if oks_area not in ("box", "segment"):
            raise ValueError(f"oks_area: expected 'box' or 'segment', got {oks_area!r}")
        self.oks_area = oks_area
        self.oks_area_factor = float(oks_area_factor)
        self.vis_alpha = float(vis_alpha)
        self.min_visible_keypoints = int(min_visible_keypoints)
        self.num_keypoints = num_keypoints
        self.reg_max = reg_max
        self.weights = {
            "cls": cls_weight, "iou": iou_weight, "dfl": dfl_weight,
            "pose": pose_weight, "vis": vis_weight,
        }  # fmt: skip
        sig = torch.tensor(sigmas) if sigmas is not None else keypoint_sigmas(num_keypoints)
        if len(sig) != num_keypoints:
            raise ValueError(f"sigmas: expected {num_keypoints} values, got {len(sig)}")
        self.register_buffer("sigmas", sig.float(), persistent=False)
        self.assigner = assigner or TaskAlignedAssigner()

    def forward(
        self, outputs: dict[str, Tensor], targets: Sequence[dict[str, Tensor]]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        cls_logits = outputs["cls_logits"].float()  # [B, A, 1]
        boxes = outputs["boxes"].float()
        kpt_xy = outputs["kpt_xy"].float()  # [B, A, K, 2]
        vis_logits = outputs["kpt_vis_logits"].float()  # [B, A, K]
        gt = pad_targets(targets, cls_logits.device, self.num_keypoints)
        if self.min_visible_keypoints > 0:  # persons without enough labelled joints: no target
            labelled_count = (gt["keypoints"][..., 2] > 0).sum(-1)
            gt["mask"] = gt["mask"] & (labelled_count >= self.min_visible_keypoints)
        if self.oks_area == "box":
            wh = gt["boxes"][..., 2:] - gt["boxes"][..., :2]
            gt["areas"] = wh.prod(-1) * self.oks_area_factor
        sigmas = self.sigmas.to(cls_logits.device)
        with torch.no_grad():
            oks = pairwise_oks(gt["keypoints"], kpt_xy.detach(), gt["areas"], sigmas)
        asg = self.assigner(
            cls_logits.detach().sigmoid(), boxes.detach(), outputs["anchors"],
            torch.zeros_like(gt["labels"]), gt["boxes"], gt["mask"], align_extra=oks,
        )  # fmt: skip
        norm = asg.scores.sum().clamp(min=1.0)
        loss_cls = focal_loss(cls_logits, asg.scores) / norm
        loss_iou, loss_dfl = _box_losses(
            outputs, boxes, asg, norm, self.reg_max, complete_box_iou_loss
        )
        fg = asg.fg_mask
        if bool(fg.any()):
            weight = asg.scores.sum(-1)[fg]  # [P]
            idx = asg.gt_index[fg]
            bidx = fg.nonzero()[:, 0]
            gk = gt["keypoints"][bidx, idx]  # [P, K, 3]
            area = gt["areas"][bidx, idx]  # [P]
            labelled = (gk[..., 2] > 0).float()
            d2 = (kpt_xy[fg] - gk[..., :2]).pow(2).sum(-1)  # [P, K]
            e = d2 / (2 * (2 * sigmas) ** 2 * (area[:, None] + 1e-9))
            per_joint = 1 - torch.exp(-e)
            per_obj = (per_joint * labelled).sum(-1) / (labelled.sum(-1) + 1e-9)  # 0 if none
            loss_pose = (per_obj * weight).sum() / norm
            vis = focal_loss(
                vis_logits[fg], labelled, reduction="none", alpha=self.vis_alpha
            ).mean(-1)  # [P]
            loss_vis = (vis * weight).sum() / norm
        else:
            loss_pose = kpt_xy.sum() * 0.0
            loss_vis = vis_logits.sum() * 0.0
        parts = {"cls": loss_cls, "iou": loss_iou, "dfl": loss_dfl, "pose": loss_pose,
                 "vis": loss_vis}  # fmt: skip
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, {k: v.detach() for k, v in parts.items()}


def loss_for(spec: ArchSpec, recipe: Recipe | None = None) -> DetectionLoss | PoseLoss:
    """The training loss of ``spec``'s task, sized to its classes or keypoints and reg_max,
    weighted as ``recipe`` says (default: `models.recipe.recipe_for(spec)`)."""
    recipe = recipe or recipe_for(spec)
    if recipe.task != spec.task:
        raise ValueError(f"recipe {recipe.label}: a {recipe.task} recipe for a {spec.task} model")
    if spec.task == "pose":
        return PoseLoss(
            spec.num_keypoints, reg_max=spec.head.reg_max, cls_weight=recipe.cls_weight,
            iou_weight=recipe.iou_weight, dfl_weight=recipe.dfl_weight,
            pose_weight=recipe.pose_weight, vis_weight=recipe.vis_weight,
            oks_area_factor=recipe.oks_area_factor, vis_alpha=recipe.vis_alpha,
            min_visible_keypoints=recipe.min_visible_keypoints,
        )  # fmt: skip
    return DetectionLoss(
        spec.num_classes, reg_max=spec.head.reg_max, cls_weight=recipe.cls_weight,
        iou_weight=recipe.iou_weight, dfl_weight=recipe.dfl_weight,
    )


def _box_losses(
    outputs: dict[str, Tensor],
    boxes: Tensor,
    asg: Assignment,
    norm: Tensor,
    reg_max: int,
    iou_loss_fn: Callable[..., Tensor],
) -> tuple[Tensor, Tensor]:
    """IoU-family loss and DFL over the positive anchors, weighted by their target scores."""
    fg = asg.fg_mask
    if not bool(fg.any()):
        zero = boxes.sum() * 0.0 + outputs["reg_dist"].sum() * 0.0
        return zero, zero.clone()
    weight = asg.scores.sum(-1)[fg]
    target = asg.boxes[fg].float()
    loss_iou = (iou_loss_fn(boxes[fg], target, reduction="none") * weight).sum() / norm
    b = fg.shape[0]
    anchors = outputs["anchors"][None].expand(b, -1, -1)[fg].float()
    strides = outputs["strides"][None].expand(b, -1)[fg].float()
    ltrb = box_to_ltrb(target, anchors, strides, reg_max)
    loss_dfl = (dfl_loss(outputs["reg_dist"][fg], ltrb) * weight).sum() / norm
    return loss_iou, loss_dfl


__all__ = [
    "DetectionLoss",
    "PoseLoss",
    "box_to_ltrb",
    "dfl_loss",
    "focal_loss",
    "loss_for",
    "pad_targets",
    "varifocal_loss",
]
