"""`build_model(spec)` -> `YoloNAS`, and `fuse(model)` for inference.

Forward contract (docs/internals.md), input ``[B, 3, H, W]`` with H, W multiples of 32:

- training mode: a dict with ``cls_logits [B, A, C]``, ``reg_dist [B, A, 4, R + 1]``,
  ``boxes [B, A, 4]`` (xyxy pixels), ``anchors [A, 2]``, ``strides [A]`` and, for pose,
  ``kpt_xy [B, A, K, 2]`` and ``kpt_vis_logits [B, A, K]``;
- eval mode: ``(boxes, scores)`` for detection, ``(boxes, scores [B, A, 1], keypoints
  [B, A, K, 3])`` for pose (x, y, sigmoid visibility).

Example:
    >>> import torch
    >>> from models.presets import get_preset
    >>> model = build_model(get_preset("yolo_nas_tiny")).eval()
    >>> boxes, scores = model(torch.zeros(1, 3, 64, 64))
    >>> boxes.shape, scores.shape
    (torch.Size([1, 84, 4]), torch.Size([1, 84, 4]))
    >>> fused = fuse(model)
    >>> torch.allclose(fused(torch.zeros(1, 3, 64, 64))[1], scores, atol=1e-5)
    True
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from models.backbone import Backbone
from models.blocks import BN_MOMENTUM, fuse_modules
from models.heads import STRIDES, DetectionHead, PoseHead, decode_boxes, make_anchors
from models.neck import Neck
from models.spec import ArchSpec

# BatchNorm epsilon per task (published recipes: detection 1e-3, pose 1e-6); momentum 0.03.
BN_EPS_BY_TASK = {"detection": 1e-3, "pose": 1e-6}


def _flat(levels: list[Tensor]) -> Tensor:
    """Per-level maps [B, ch, h, w] -> [B, sum(h * w), ch] (row-major within a level)."""
    return torch.cat([t.flatten(2).transpose(1, 2) for t in levels], dim=1)


class YoloNAS(nn.Module):
    """A YOLO-NAS-family detector or pose estimator built from an `ArchSpec`."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.task = spec.task
        self.num_classes = spec.num_classes
        self.num_keypoints = spec.num_keypoints
        self.reg_max = spec.head.reg_max
        self.strides = STRIDES
        self.fused = False
        self.backbone = Backbone(spec.backbone)
        self.neck = Neck(spec.neck, self.backbone.out_channels)
        self.head: nn.Module
        if spec.task == "detection":
            self.head = DetectionHead(spec.head, self.neck.out_channels, spec.num_classes)
        else:
            self.head = PoseHead(spec.head, self.neck.out_channels, spec.num_keypoints)
        # (H, W, device, dtype) -> (anchors [A, 2], strides [A], cell origin in pixels [A, 2])
        self._anchor_cache: dict[tuple[Any, ...], tuple[Tensor, Tensor, Tensor]] = {}

    def anchors(self, height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Cached anchor centres, strides and cell origins for an input of H x W pixels."""
        key = (height, width, like.device, like.dtype)
        cached = self._anchor_cache.get(key)
        if cached is None:
            centres, strides = make_anchors(height, width, self.strides, like.device, like.dtype)
            origins = centres - 0.5 * strides[:, None]  # cell_index * stride
            cached = (centres, strides, origins)
            self._anchor_cache[key] = cached
        return cached

    def forward(self, x: Tensor) -> dict[str, Tensor] | tuple[Tensor, ...]:
        height, width = x.shape[-2:]
        outs = self.head(self.neck(self.backbone(x)))
        anchors, strides, origins = self.anchors(int(height), int(width), x)
        cls = _flat([o[0] for o in outs])  # [B, A, C] or [B, A, 1 + K]
        reg = _flat([o[1] for o in outs])  # [B, A, 4 * (R + 1)]
        reg = reg.reshape(reg.shape[0], reg.shape[1], 4, self.reg_max + 1)
        boxes = decode_boxes(reg, anchors, strides)
        if self.task == "detection":
            if self.training:
                return {
                    "cls_logits": cls,
                    "reg_dist": reg,
                    "boxes": boxes,
                    "anchors": anchors,
                    "strides": strides,
                }
            return boxes, cls.sigmoid()
        pose = _flat([o[2] for o in outs])  # [B, A, 2K]
        pose = pose.reshape(pose.shape[0], pose.shape[1], self.num_keypoints, 2)
        kpt_xy = pose * strides[:, None, None] + origins[:, None, :]
        person, vis = cls[..., :1], cls[..., 1:]
        if self.training:
            return {
                "cls_logits": person,
                "reg_dist": reg,
                "boxes": boxes,
                "anchors": anchors,
                "strides": strides,
                "kpt_xy": kpt_xy,
                "kpt_vis_logits": vis,
            }
        keypoints = torch.cat([kpt_xy, vis.sigmoid().unsqueeze(-1)], dim=-1)
        return boxes, person.sigmoid(), keypoints

    def _apply(self, fn: Any, recurse: bool = True) -> YoloNAS:
        # .to() / .double() / .cuda() invalidate the cached anchor grids
        self._anchor_cache = {}
        return super()._apply(fn, recurse)


def build_model(spec: ArchSpec) -> YoloNAS:
    """The training-form network of ``spec`` (freshly initialised, training mode)."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build_model: expected an ArchSpec, got {type(spec).__name__}")
    model = YoloNAS(spec)
    eps = BN_EPS_BY_TASK[spec.task]
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps, module.momentum = eps, BN_MOMENTUM
    return model


def fuse(model: YoloNAS) -> YoloNAS:
    """A fused, eval-mode deep copy: every QARepVGG becomes one 3x3 conv with bias, every BN is
    folded into its conv. The input model is not changed."""
    fused = copy.deepcopy(model).eval()
    fuse_modules(fused)
    fused._anchor_cache = {}
    fused.fused = True
    return fused


__all__ = ["BN_EPS_BY_TASK", "YoloNAS", "build_model", "fuse"]
