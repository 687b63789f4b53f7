"""YOLO-NAS backbone: QARepVGG stem, four CSP stages, SPP; publishes C2..C5.

Example:
    >>> import torch
    >>> from models.presets import get_preset
    >>> net = Backbone(get_preset("yolo_nas_tiny").backbone)
    >>> [f.shape[1] for f in net(torch.zeros(1, 3, 64, 64))] == list(net.out_channels)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.blocks import ConvBNAct, CSPBody, QARepVGG, qarepvgg_block
from models.spec import BackboneSpec, StageSpec

STRIDES = (4, 8, 16, 32)  # of C2, C3, C4, C5


class BackboneStage(nn.Module):
    """QARepVGG stride-2 downsample (no identity) followed by a CSP body (out -> out)."""

    def __init__(self, in_ch: int, spec: StageSpec) -> None:
        super().__init__()
        out = spec.out_channels
        self.down = QARepVGG(in_ch, out, stride=2, identity=False)
        self.body = CSPBody(out, out, spec.depth, spec.hidden, spec.kind, qarepvgg_block)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(self.down(x))


class SPP(nn.Module):
    """1x1 to in/2, stride-1 max-pools (k = 5, 9, 13), concat with the input, 1x1 to out."""

    def __init__(self, in_ch: int, out_ch: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = in_ch // 2
        self.reduce = ConvBNAct(in_ch, hidden, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.out = ConvBNAct(hidden * (len(kernels) + 1), out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        return self.out(torch.cat([x, *(pool(x) for pool in self.pools)], dim=1))


class Backbone(nn.Module):
    """Stem (QARepVGG, stride 2, no identity) -> stages 1..4 -> SPP; returns [C2, C3, C4, C5]."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.stem = QARepVGG(3, spec.stem, stride=2, identity=False)
        stages = []
        in_ch = spec.stem
        for stage in spec.stages:
            stages.append(BackboneStage(in_ch, stage))
            in_ch = stage.out_channels
        self.stages = nn.ModuleList(stages)
        self.spp = SPP(in_ch, spec.spp, tuple(spec.spp_kernels))
        self.out_channels = spec.feature_channels
        self.strides = STRIDES

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        feats[-1] = self.spp(feats[-1])
        return feats
