"""Detection (DFL) and pose heads, one per stride 8/16/32, plus anchor and box decoding.

Raw per-level outputs are channel maps; `models.build.YoloNAS` flattens and decodes them.

Initialisation (as in the reference): prediction convs keep PyTorch's default initialisation;
only the class branch (person score and keypoint visibility for pose) gets the prior bias
-log(99) (probability 0.01).

Example:
    >>> import torch
    >>> anchors, strides = make_anchors(64, 64, (8, 16, 32))
    >>> anchors.shape, strides.shape
    (torch.Size([84, 2]), torch.Size([84]))
    >>> reg = torch.zeros(1, 84, 4, 17)  # uniform bins -> distance 8 on each side
    >>> decode_boxes(reg, anchors, strides)[0, 0].tolist()
    [-60.0, -60.0, 68.0, 68.0]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.blocks import ConvBNAct
from models.spec import DetectionHeadSpec, PoseHeadSpec

STRIDES = (8, 16, 32)
PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


def make_anchors(
    height: int,
    width: int,
    strides: tuple[int, ...] = STRIDES,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Anchor centres ``[A, 2]`` ((i + 0.5) * stride, in input pixels) and strides ``[A]``.

    Order: strides ascending, then row-major (y, x) within a level, matching the flattening of
    the head outputs.
    """
    centres, all_strides = [], []
    for s in strides:
        h, w = height // s, width // s
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * s
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * s
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        centres.append(torch.stack([gx, gy], dim=-1).reshape(-1, 2))
        all_strides.append(torch.full((h * w,), float(s), device=device, dtype=dtype))
    return torch.cat(centres), torch.cat(all_strides)


def dfl_distances(reg_dist: Tensor) -> Tensor:
    """Expected bin index per side: softmax over the last axis times 0..R; ``[..., 4]``."""
    bins = torch.arange(reg_dist.shape[-1], device=reg_dist.device, dtype=reg_dist.dtype)
    return reg_dist.softmax(dim=-1) @ bins


def decode_boxes(reg_dist: Tensor, anchors: Tensor, strides: Tensor) -> Tensor:
    """DFL logits ``[B, A, 4, R + 1]`` (l, t, r, b) -> boxes ``[B, A, 4]`` xyxy in pixels."""
    dist = dfl_distances(reg_dist) * strides[:, None]  # [B, A, 4] in pixels
    return torch.cat([anchors - dist[..., :2], anchors + dist[..., 2:]], dim=-1)


def _pred(in_ch: int, out_ch: int, bias: float | None = None) -> nn.Conv2d:
    """A 1x1 prediction conv: PyTorch's default init, the bias set to ``bias`` if given."""
    conv = nn.Conv2d(in_ch, out_ch, 1)
    if bias is not None:
        nn.init.constant_(conv.bias, bias)
    return conv


def _adapter(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, bias=False)


def _convs(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ConvBNAct(channels, channels, 3) for _ in range(count)))


class DetectionLevel(nn.Module):
    """One stride: 1x1 stem, a 3x3 ConvBNAct on each of cls and reg, then the 1x1 predictions."""

    def __init__(self, in_ch: int, inter: int, num_classes: int, reg_max: int) -> None:
        super().__init__()
        self.stem = ConvBNAct(in_ch, inter, 1)
        self.cls_convs = _convs(inter, 1)
        self.reg_convs = _convs(inter, 1)
        self.cls_pred = _pred(inter, num_classes, PRIOR_BIAS)
        self.reg_pred = _pred(inter, 4 * (reg_max + 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.stem(x)
        return self.cls_pred(self.cls_convs(x)), self.reg_pred(self.reg_convs(x))


class DetectionHead(nn.Module):
    """DFL detection heads for P3, P4, P5; per level (cls [B, C, h, w], reg [B, 4(R+1), h, w])."""

    def __init__(self, spec: DetectionHeadSpec, in_channels: tuple[int, ...], num_classes: int):
        super().__init__()
        self.levels = nn.ModuleList(
            DetectionLevel(c, inter, num_classes, spec.reg_max)
            for c, inter in zip(in_channels, spec.channels, strict=True)
        )

    def forward(self, feats: list[Tensor]) -> list[tuple[Tensor, ...]]:
        return [level(f) for level, f in zip(self.levels, feats, strict=True)]


class PoseLevel(nn.Module):
    """One stride of the pose head: bbox path (cls 1 + K, DFL reg) and pose path (2K offsets).

    Separate stems: one 1x1 ConvBNAct to each path's width. Shared stem: one 1x1 ConvBNAct to
    max(bbox, pose) width and, into the narrower path when they differ, a plain 1x1 conv adapter
    (no bias, BN or activation, as in the reference).
    """

    def __init__(
        self,
        in_ch: int,
        bbox_ch: int,
        pose_ch: int,
        bbox_blocks: int,
        pose_blocks: int,
        shared_stem: bool,
        num_keypoints: int,
        reg_max: int,
    ) -> None:
        super().__init__()
        self.shared = shared_stem
        if shared_stem:
            wide = max(bbox_ch, pose_ch)
            self.stem = ConvBNAct(in_ch, wide, 1)
            # at most one adapter exists: the narrower path's (None when the widths are equal)
            self.bbox_adapter = _adapter(wide, bbox_ch) if bbox_ch != wide else None
            self.pose_adapter = _adapter(wide, pose_ch) if pose_ch != wide else None
        else:
            self.bbox_stem = ConvBNAct(in_ch, bbox_ch, 1)
            self.pose_stem = ConvBNAct(in_ch, pose_ch, 1)
        self.cls_convs = _convs(bbox_ch, bbox_blocks)
        self.reg_convs = _convs(bbox_ch, bbox_blocks)
        self.pose_convs = _convs(pose_ch, pose_blocks)
        self.cls_pred = _pred(bbox_ch, 1 + num_keypoints, PRIOR_BIAS)
        self.reg_pred = _pred(bbox_ch, 4 * (reg_max + 1))
        self.pose_pred = _pred(pose_ch, 2 * num_keypoints)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.shared:
            x = self.stem(x)
            xb = x if self.bbox_adapter is None else self.bbox_adapter(x)
            xp = x if self.pose_adapter is None else self.pose_adapter(x)
        else:
            xb, xp = self.bbox_stem(x), self.pose_stem(x)
        cls = self.cls_pred(self.cls_convs(xb))
        reg = self.reg_pred(self.reg_convs(xb))
        pose = self.pose_pred(self.pose_convs(xp))
        return cls, reg, pose


class PoseHead(nn.Module):
    """Pose heads for P3, P4, P5; per level (cls [B,1+K,h,w], reg, pose [B,2K,h,w])."""

    def __init__(self, spec: PoseHeadSpec, in_channels: tuple[int, ...], num_keypoints: int):
        super().__init__()
        self.levels = nn.ModuleList(
            PoseLevel(c, b, p, nb, npose, spec.shared_stem, num_keypoints, spec.reg_max)
            for c, b, p, nb, npose in zip(
                in_channels,
                spec.bbox_channels,
                spec.pose_channels,
                spec.bbox_blocks,
                spec.pose_blocks,
                strict=True,
            )
        )

    def forward(self, feats: list[Tensor]) -> list[tuple[Tensor, ...]]:
        return [level(f) for level, f in zip(self.levels, feats, strict=True)]
