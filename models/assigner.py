"""Task-aligned assignment of ground-truth objects to anchors (TOOD's TAL), for the losses.

For every (object, anchor) pair the alignment metric is ``s**alpha * u**beta``, with ``s`` the
predicted score of the object's class at the anchor and ``u`` the IoU of the predicted box with
the object's box (for pose, the IoU times the pose OKS). Each object takes the ``topk`` anchors
of highest alignment among those whose centre lies inside its box; an anchor claimed by several
objects goes to the object it overlaps most. The classification target of a positive anchor is its
alignment, rescaled per object so that the best anchor gets the object's best IoU.

Example:
    >>> import torch
    >>> from models.assigner import TaskAlignedAssigner
    >>> anchors = torch.tensor([[4.0, 4.0], [12.0, 4.0]])
    >>> gt = torch.tensor([[[0.0, 0.0, 8.0, 8.0]]])
    >>> out = TaskAlignedAssigner(topk=1)(
    ...     torch.full((1, 2, 2), 0.5), gt.expand(1, 2, 4).clone(), anchors,
    ...     torch.tensor([[1]]), gt, torch.tensor([[True]]))
    >>> out.fg_mask.tolist(), out.labels.tolist()
    ([[True, False]], [[1, 2]])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# COCO keypoint sigmas (17 keypoints); used for OKS in the pose assigner and the pose loss.
COCO_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip


# The sigma of every keypoint of a skeleton other than COCO's 17 (here and in COCO evaluation).
DEFAULT_SIGMA = 0.05


def keypoint_sigmas(num_keypoints: int) -> Tensor:
    """COCO sigmas for 17 keypoints, a uniform ``DEFAULT_SIGMA`` otherwise."""
    if num_keypoints == len(COCO_SIGMAS):
        return torch.tensor(COCO_SIGMAS)
    return torch.full((num_keypoints,), DEFAULT_SIGMA)


@dataclass
class Assignment:
    """Targets per anchor. ``labels`` uses ``num_classes`` for background."""

    labels: Tensor  # [B, A] long
    boxes: Tensor  # [B, A, 4] xyxy pixels of the assigned object
    scores: Tensor  # [B, A, C] soft classification targets (0 for background)
    fg_mask: Tensor  # [B, A] bool
    gt_index: Tensor  # [B, A] long, index into the padded objects (0 where background)


def pairwise_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-9) -> Tensor:
    """IoU of every pair in a batch: [B, M, 4] x [B, A, 4] -> [B, M, A] (xyxy)."""
    lt = torch.maximum(boxes1[:, :, None, :2], boxes2[:, None, :, :2])
    rb = torch.minimum(boxes1[:, :, None, 2:], boxes2[:, None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area1 = (boxes1[..., 2:] - boxes1[..., :2]).clamp(min=0).prod(-1)
    area2 = (boxes2[..., 2:] - boxes2[..., :2]).clamp(min=0).prod(-1)
    return inter / (area1[:, :, None] + area2[:, None, :] - inter + eps)


def pairwise_oks(
    gt_kpts: Tensor, pred_kpts: Tensor, areas: Tensor, sigmas: Tensor, eps: float = 1e-9
) -> Tensor:
    """Object keypoint similarity of every (object, anchor) pair, as pycocotools defines it.

    ``gt_kpts`` [B, M, K, 3] (x, y, visibility), ``pred_kpts`` [B, A, K, 2], ``areas`` [B, M]
    -> [B, M, A]. Objects without labelled keypoints get OKS 0 (as in the reference).
    """
    d2 = (gt_kpts[:, :, None, :, :2] - pred_kpts[:, None, :, :, :]).pow(2).sum(-1)  # [B,M,A,K]
    var = (2 * sigmas) ** 2
    e = d2 / (2 * var * (areas[:, :, None, None] + eps))
    vis = (gt_kpts[..., 2] > 0).to(d2.dtype)[:, :, None, :]  # [B, M, 1, K]
    n = vis.sum(-1)
    return (torch.exp(-e) * vis).sum(-1) / n.clamp(min=1)


class TaskAlignedAssigner:
    """TAL assignment (topk 13, alpha 1, beta 6 as published). Called under ``no_grad``."""

    def __init__(
        self, topk: int = 13, alpha: float = 1.0, beta: float = 6.0, eps: float = 1e-9
    ) -> None:
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def __call__(
        self,
        pred_scores: Tensor,
        pred_boxes: Tensor,
        anchors: Tensor,
        gt_labels: Tensor,
        gt_boxes: Tensor,
        gt_mask: Tensor,
        align_extra: Tensor | None = None,
    ) -> Assignment:
        """Assign padded objects to anchors.

        ``pred_scores`` [B, A, C] probabilities, ``pred_boxes`` [B, A, 4], ``anchors`` [A, 2]
        centres in pixels, ``gt_labels`` [B, M], ``gt_boxes`` [B, M, 4], ``gt_mask`` [B, M]
        (False for padding), ``align_extra`` [B, M, A] multiplies the IoU (pose OKS).
        """
        b, a, c = pred_scores.shape
        m = gt_boxes.shape[1]
        device = pred_scores.device
        if m == 0 or not bool(gt_mask.any()):
            return Assignment(
                labels=torch.full((b, a), c, dtype=torch.long, device=device),
                boxes=torch.zeros((b, a, 4), device=device, dtype=pred_boxes.dtype),
                scores=torch.zeros_like(pred_scores),
                fg_mask=torch.zeros((b, a), dtype=torch.bool, device=device),
                gt_index=torch.zeros((b, a), dtype=torch.long, device=device),
            )
        pred_scores = pred_scores.float()
        ious = pairwise_iou(gt_boxes.float(), pred_boxes.float())  # [B, M, A]
        if align_extra is not None:
            ious = ious * align_extra.float()
        labels = gt_labels.long().clamp(0, c - 1)
        cls_scores = pred_scores.gather(2, labels[:, None, :].expand(b, a, m)).transpose(1, 2)
        align = cls_scores.pow(self.alpha) * ious.pow(self.beta)  # [B, M, A]

        # Anchor centres strictly inside the object's box.
        x, y = anchors[:, 0], anchors[:, 1]
        g = gt_boxes.float()
        inside = torch.stack(
            [x - g[..., 0:1], y - g[..., 1:2], g[..., 2:3] - x, g[..., 3:4] - y], dim=-1
        ).amin(-1) > self.eps  # [B, M, A]
        valid = inside & gt_mask[:, :, None]

        # Top-k anchors per object; a tiny bonus ranks in-box anchors first when every
        # alignment is zero (untrained predictions), so that every object gets candidates.
        metric = (align + 1e-9) * valid
        k = min(self.topk, a)
        top = metric.topk(k, dim=-1).indices
        cand = torch.zeros_like(valid).scatter_(-1, top, True) & valid  # [B, M, A]

        # An anchor claimed by several objects goes to the object it overlaps most, among all
        # objects of the image (as in the reference, even one that did not claim it).
        multi = cand.sum(1) > 1  # [B, A]
        if bool(multi.any()):
            real = gt_mask[:, :, None].expand_as(ious)
            best = torch.where(real, ious, torch.full_like(ious, -1.0)).argmax(1)  # [B, A]
            best_mask = torch.zeros_like(cand).scatter_(1, best[:, None, :], True)
            cand = torch.where(multi[:, None, :], best_mask, cand)

        fg = cand.any(1)  # [B, A]
        gt_index = cand.to(torch.uint8).argmax(1)  # [B, A]
        assigned_labels = gt_labels.long().gather(1, gt_index)
        assigned_labels = torch.where(fg, assigned_labels, torch.full_like(assigned_labels, c))
        assigned_boxes = gt_boxes.gather(1, gt_index[..., None].expand(b, a, 4))

        # Normalised alignment: the best anchor of each object scores that object's best IoU.
        align_pos = align * cand
        max_align = align_pos.amax(-1, keepdim=True)
        max_iou = (ious * cand).amax(-1, keepdim=True)
        norm = (align_pos * max_iou / (max_align + self.eps)).amax(1)  # [B, A]
        one_hot = torch.nn.functional.one_hot(assigned_labels, c + 1)[..., :c]
        scores = one_hot.to(pred_scores.dtype) * norm[..., None]
        return Assignment(
            labels=assigned_labels,
            boxes=assigned_boxes,
            scores=scores,
            fg_mask=fg,
            gt_index=torch.where(fg, gt_index, torch.zeros_like(gt_index)),
        )


__all__ = [
    "Assignment",
    "COCO_SIGMAS",
    "DEFAULT_SIGMA",
    "TaskAlignedAssigner",
    "keypoint_sigmas",
    "pairwise_iou",
    "pairwise_oks",
]
