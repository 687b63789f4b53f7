"""Fixed loss inputs shared by the parity benchmark (benchmarks/parity_sg.py) and the golden
tests (test_training_parity.py): seeded predictions and targets in the training-output contract.

A case is a plain dict of tensors: ``cls_logits`` [B, A, C], ``reg_dist`` [B, A, 4, R + 1],
``anchors`` [A, 2], ``strides`` [A], per-image ``boxes`` [N, 4] xyxy / ``labels`` [N], and for
pose ``kpt_xy`` [B, A, K, 2], ``kpt_vis_logits`` [B, A, K], ``keypoints`` [N, K, 3]. The
generator is plain ``torch.Generator`` draws on the CPU, so the same seed gives the same case on
every machine with the pinned torch; `checksum` guards that.

Scenes (96 px, two images): overlapping objects (an anchor claimed twice), an image with fewer
objects (padding), and for pose a person whose joints are all unlabelled and unlabelled joints
among labelled ones. Predicted keypoints sit near the joints of the object the anchor lies in
(pixel noise), so every in-box alignment is non-zero: the reference's choice among exactly-zero
alignments depends on ``torch.topk``'s tie order, which these cases avoid on purpose.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from models.heads import decode_boxes, make_anchors

SIZE = 96
REG_MAX = 16
NUM_CLASSES = 4
NUM_KEYPOINTS = 17
# Objects per image (xyxy in pixels); image 0's first two overlap.
BOXES = (
    [[8.0, 10.0, 60.0, 70.0], [30.0, 20.0, 88.0, 86.0], [50.0, 4.0, 92.0, 40.0]],
    [[12.0, 30.0, 70.0, 90.0], [40.0, 6.0, 84.0, 60.0]],
)
LABELS = ([2, 0, 3], [1, 2])


def make_case(task: str, seed: int = 0) -> dict[str, Any]:
    """The fixed inputs of ``task`` ("detection" | "pose") for ``seed``."""
    g = torch.Generator().manual_seed(seed)
    anchors, strides = make_anchors(SIZE, SIZE)
    a = len(anchors)
    b = len(BOXES)
    c = NUM_CLASSES if task == "detection" else 1
    case: dict[str, Any] = {
        "task": task,
        "anchors": anchors,
        "strides": strides,
        "cls_logits": torch.randn(b, a, c, generator=g) * 1.5 - 2.0,
        "reg_dist": torch.randn(b, a, 4, REG_MAX + 1, generator=g) * 2.0,
        "boxes": [torch.tensor(bx) for bx in BOXES],
        "labels": [torch.tensor(lb if task == "detection" else [0] * len(lb)) for lb in LABELS],
    }
    if task == "pose":
        k = NUM_KEYPOINTS
        kpts = []
        for i, bx in enumerate(case["boxes"]):
            lo, hi = bx[:, None, :2], bx[:, None, 2:]
            xy = lo + (hi - lo) * torch.rand(len(bx), k, 2, generator=g)
            vis = torch.randint(1, 3, (len(bx), k), generator=g).float()
            vis[torch.rand(len(bx), k, generator=g) < 0.2] = 0.0  # some joints unlabelled
            if i == 0:
                vis[2] = 0.0  # a person with no labelled joint at all
            xy = torch.where(vis[..., None] > 0, xy, torch.zeros_like(xy))
            kpts.append(torch.cat([xy, vis[..., None]], dim=-1))
        case["keypoints"] = kpts
        # Each anchor predicts the joints of the object it lies in (the nearest centre
        # otherwise), plus noise of a few pixels.
        pred = torch.empty(b, a, k, 2)
        for i, bx in enumerate(case["boxes"]):
            centres = (bx[:, :2] + bx[:, 2:]) / 2
            owner = (anchors[:, None, :] - centres[None]).pow(2).sum(-1).argmin(1)
            target = kpts[i][owner, :, :2]
            target = torch.where(target == 0, centres[owner][:, None, :], target)
            pred[i] = target + torch.randn(a, k, 2, generator=g) * 6.0
        case["kpt_xy"] = pred
        case["kpt_vis_logits"] = torch.randn(b, a, k, generator=g)
    return case


def outputs_of(case: dict[str, Any], leaves: dict[str, Tensor] | None = None) -> dict[str, Any]:
    """The training-output dict for our losses; ``leaves`` replace the prediction tensors
    (for gradients). Boxes are decoded from ``reg_dist`` inside the graph."""
    t = {**{k: case[k] for k in _PRED_KEYS if k in case}, **(leaves or {})}
    out = {
        "cls_logits": t["cls_logits"],
        "reg_dist": t["reg_dist"],
        "boxes": decode_boxes(t["reg_dist"], case["anchors"], case["strides"]),
        "anchors": case["anchors"],
        "strides": case["strides"],
    }
    if case["task"] == "pose":
        out["kpt_xy"] = t["kpt_xy"]
        out["kpt_vis_logits"] = t["kpt_vis_logits"]
    return out


def targets_of(case: dict[str, Any]) -> list[dict[str, Tensor]]:
    """Per-image target dicts for our losses."""
    targets = []
    for i in range(len(case["boxes"])):
        t = {"boxes": case["boxes"][i], "labels": case["labels"][i]}
        if case["task"] == "pose":
            t["keypoints"] = case["keypoints"][i]
        targets.append(t)
    return targets


def run_loss(case: dict[str, Any], loss: Any) -> dict[str, Any]:
    """``loss`` on the case: ``value`` (float), ``grads`` {input: tensor}, the assigner's
    soft targets ``scores`` [B, A, C] and positives ``fg`` [B, A]."""
    seen: dict[str, Tensor] = {}
    inner = loss.assigner

    def record(*args: Any, **kwargs: Any) -> Any:
        out = inner(*args, **kwargs)
        seen["scores"] = out.scores.detach()
        seen["fg"] = out.fg_mask
        return out

    loss.assigner = record
    try:
        leaves = {k: case[k].clone().requires_grad_(True) for k in prediction_keys(case["task"])}
        total, _ = loss(outputs_of(case, leaves), targets_of(case))
        total.backward()
    finally:
        loss.assigner = inner
    grads = {k: v.grad.detach() for k, v in leaves.items()}
    return {"value": float(total.detach()), "grads": grads, "scores": seen["scores"],
            "fg": seen["fg"]}  # fmt: skip


def grad_summary(grads: dict[str, Tensor]) -> dict[str, list[float]]:
    """Per input: [L2 norm, signed sum] of the gradient (what the golden file keeps)."""
    return {k: [float(g.double().norm()), float(g.double().sum())] for k, g in grads.items()}


def prediction_keys(task: str) -> tuple[str, ...]:
    """The inputs that gradients are taken with respect to."""
    return _PRED_KEYS if task == "pose" else _PRED_KEYS[:2]


def checksum(case: dict[str, Any]) -> float:
    """A sum over every generated value (detects a generator that drew differently)."""
    total = sum(float(case[k].double().abs().sum()) for k in prediction_keys(case["task"]))
    if case["task"] == "pose":
        total += sum(float(k.double().abs().sum()) for k in case["keypoints"])
    return total


_PRED_KEYS = ("cls_logits", "reg_dist", "kpt_xy", "kpt_vis_logits")
