"""PAN neck with C2: two up stages then two down stages; outputs P3, P4, P5.

    up1   = Up(C5, C4, C3)           -> out1 (stride 16), inter1 (stride 32)
    up2   = Up(out1, C3, C2)         -> P3 (stride 8),   inter2 (stride 16)
    down1 = Down(P3, inter2)         -> P4 (stride 16)
    down2 = Down(P4, inter1)         -> P5 (stride 32)

Example:
    >>> import torch
    >>> from models.presets import get_preset
    >>> spec = get_preset("yolo_nas_tiny")
    >>> neck = Neck(spec.neck, spec.backbone.feature_channels)
    >>> feats = [torch.zeros(1, c, 64 // s, 64 // s) for c, s in zip(
    ...     spec.backbone.feature_channels, (4, 8, 16, 32))]
    >>> [p.shape[-1] for p in neck(feats)]
    [8, 4, 2]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.blocks import ConvBNAct, CSPBody, conv3x3_block, qarepvgg_block
from models.spec import NeckSpec, StageSpec


class UpStage(nn.Module):
    """Fuse a deep input with a same-resolution skip and a higher-resolution skip.

    ``inter`` = 1x1 ConvBNAct(deep); upsampled by ConvTranspose2d(k=2, s=2, no bias);
    skip1 (same resolution as the result) reduced by 1x1; skip2 (twice the resolution) reduced
    by 1x1 then a 3x3 stride-2 ConvBNAct; concat (3 * out) -> 1x1 -> CSP body (QARepVGG).
    Returns (out, inter).
    """

    def __init__(self, in_ch: int, skip1_ch: int, skip2_ch: int, spec: StageSpec) -> None:
        super().__init__()
        out = spec.out_channels
        self.reduce_in = ConvBNAct(in_ch, out, 1)
        self.upsample = nn.ConvTranspose2d(out, out, 2, 2, bias=False)
        self.reduce_skip1 = ConvBNAct(skip1_ch, out, 1)
        self.reduce_skip2 = ConvBNAct(skip2_ch, out, 1)
        self.down_skip2 = ConvBNAct(out, out, 3, 2)
        self.reduce_concat = ConvBNAct(3 * out, out, 1)
        self.body = CSPBody(out, out, spec.depth, spec.hidden, spec.kind, qarepvgg_block)

    def forward(self, x: Tensor, skip1: Tensor, skip2: Tensor) -> tuple[Tensor, Tensor]:
        inter = self.reduce_in(x)
        up = self.upsample(inter)
        s1 = self.reduce_skip1(skip1)
        s2 = self.down_skip2(self.reduce_skip2(skip2))
        y = self.reduce_concat(torch.cat([up, s1, s2], dim=1))
        return self.body(y), inter


class DownStage(nn.Module):
    """3x3 stride-2 ConvBNAct to out/2, concat with the skip, CSP body (plain 3x3 ConvBNAct)."""

    def __init__(self, in_ch: int, skip_ch: int, spec: StageSpec) -> None:
        super().__init__()
        out = spec.out_channels
        half = out // 2
        self.down = ConvBNAct(in_ch, half, 3, 2)
        self.body = CSPBody(half + skip_ch, out, spec.depth, spec.hidden, spec.kind, conv3x3_block)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.body(torch.cat([self.down(x), skip], dim=1))


class Neck(nn.Module):
    """The PAN neck; ``in_channels`` are those of C2, C3, C4, C5."""

    def __init__(self, spec: NeckSpec, in_channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        c2, c3, c4, c5 = in_channels
        if spec.down1.out_channels < 2 or spec.down2.out_channels < 2:
            raise ValueError("neck.down1/down2.out_channels: expected >= 2 (halved on the way)")
        self.up1 = UpStage(c5, c4, c3, spec.up1)
        self.up2 = UpStage(spec.up1.out_channels, c3, c2, spec.up2)
        self.down1 = DownStage(spec.up2.out_channels, spec.up2.out_channels, spec.down1)
        self.down2 = DownStage(spec.down1.out_channels, spec.up1.out_channels, spec.down2)
        self.out_channels = spec.out_channels

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        c2, c3, c4, c5 = feats
        out1, inter1 = self.up1(c5, c4, c3)
        p3, inter2 = self.up2(out1, c3, c2)
        p4 = self.down1(p3, inter2)
        p5 = self.down2(p4, inter1)
        return [p3, p4, p5]
