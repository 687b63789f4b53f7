"""Parameter counts (training form and fused) and FLOPs of an architecture.

Multiply-accumulates are counted once per conv / transposed conv / linear layer of the *fused*
(deployed) network; GFLOPs = 2 x GMACs. Biases, BN, activations, pooling and decoding are not
counted. Everything is computed on PyTorch's ``meta`` device: no weights are allocated, so even
the large presets take a fraction of a second.

Example:
    >>> from models.presets import get_preset
    >>> c = complexity(get_preset("yolo_nas_tiny"), image_size=640)
    >>> c.gflops == 2 * c.gmacs and c.fused_params < c.params
    True
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from models.blocks import ConvBNAct, QARepVGG
from models.build import YoloNAS, build_model
from models.spec import ArchSpec

ImageSize = int | tuple[int, int]


@dataclass(frozen=True)
class Complexity:
    """Size and cost of an architecture at one input size (GFLOPs = 2 x GMACs)."""

    params: int  # training form (QARepVGG branches, BN)
    fused_params: int  # deployed form (every branch and BN folded)
    gmacs: float  # multiply-accumulates of the fused model, 1e9, batch 1
    gflops: float  # 2 * gmacs
    image_size: ImageSize
    # The count as super-gradients and the published tables report it: their QARepVGG block
    # also allocates its (training-time unused) fused 3x3 conv with bias.
    released_form_params: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.image_size, tuple):
            d["image_size"] = list(self.image_size)
        return d


@dataclass(frozen=True)
class PartCost:
    """One row of `breakdown`: a named part of the network."""

    name: str  # stem, stage1..4, spp, up1, up2, down1, down2, head
    out_channels: int
    stride: int
    params: int
    fused_params: int
    gmacs: float


def _hw(image_size: ImageSize) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        h = w = image_size
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in image_size)
    ):
        h, w = image_size
    else:
        raise ValueError(f"image_size: expected an integer or (height, width), got {image_size!r}")
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise ValueError(f"image_size: expected multiples of 32 (>= 32), got {image_size!r}")
    return h, w


def _fused_size(module: nn.Module) -> int:
    """Parameters of ``module`` after `models.build.fuse` (computed without fusing)."""
    if isinstance(module, QARepVGG):  # one 3x3 conv with bias
        return module.conv3.weight.numel() + module.out_ch
    if isinstance(module, ConvBNAct):  # conv with bias (BN folded)
        return module.conv.weight.numel() + module.conv.out_channels
    own = sum(p.numel() for p in module.parameters(recurse=False))
    return own + sum(_fused_size(child) for child in module.children())


def _count_macs(model: YoloNAS, height: int, width: int) -> dict[nn.Module, int]:
    """MACs per leaf layer of the fused network (QARepVGG counted as its single 3x3 conv)."""
    skip = {m.conv1 for m in model.modules() if isinstance(m, QARepVGG)}  # folded into conv3
    macs: dict[nn.Module, int] = {}

    def hook(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            per_out = layer.in_channels // layer.groups * k
            macs[layer] = macs.get(layer, 0) + output[0].numel() * per_out
        elif isinstance(layer, nn.ConvTranspose2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            per_in = layer.out_channels // layer.groups * k
            macs[layer] = macs.get(layer, 0) + inputs[0][0].numel() * per_in
        elif isinstance(layer, nn.Linear):
            rows = output[0].numel() // layer.out_features
            macs[layer] = macs.get(layer, 0) + rows * layer.in_features * layer.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m not in skip
    ]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, height, width, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return macs


@functools.lru_cache(maxsize=256)
def _analyse(spec: ArchSpec, height: int, width: int) -> tuple[Complexity, tuple[PartCost, ...]]:
    with torch.device("meta"):
        model = build_model(spec).eval()
    macs = _count_macs(model, height, width)

    def part(name: str, module: nn.Module, out_ch: int, stride: int) -> PartCost:
        layer_macs = sum(macs.get(m, 0) for m in module.modules())
        return PartCost(
            name,
            out_ch,
            stride,
            sum(p.numel() for p in module.parameters()),
            _fused_size(module),
            layer_macs / 1e9,
        )

    bb, neck = model.backbone, model.neck
    rows = [part("stem", bb.stem, spec.backbone.stem, 2)]
    for i, (stage, s) in enumerate(zip(bb.stages, bb.strides, strict=True)):
        rows.append(part(f"stage{i + 1}", stage, spec.backbone.stages[i].out_channels, s))
    rows.append(part("spp", bb.spp, spec.backbone.spp, 32))
    for name, stride in (("up1", 16), ("up2", 8), ("down1", 16), ("down2", 32)):
        rows.append(part(name, getattr(neck, name), getattr(spec.neck, name).out_channels, stride))
    head_out = spec.num_classes + 4 * (spec.head.reg_max + 1)
    if spec.task == "pose":
        head_out = 1 + 3 * spec.num_keypoints + 4 * (spec.head.reg_max + 1)
    rows.append(part("head", model.head, head_out, 8))
    params = sum(p.numel() for p in model.parameters())
    qarep = [b for b in model.modules() if isinstance(b, QARepVGG)]
    dead = sum(b.conv3.weight.numel() + b.out_ch for b in qarep)
    fused = _fused_size(model)
    gmacs = sum(macs.values()) / 1e9
    size: ImageSize = height if height == width else (height, width)
    return Complexity(params, fused, gmacs, 2 * gmacs, size, params + dead), tuple(rows)


def complexity(spec: ArchSpec, image_size: ImageSize = 640) -> Complexity:
    """Parameters (training form and fused) and GMACs / GFLOPs at ``image_size`` (batch 1)."""
    height, width = _hw(image_size)
    return _analyse(spec, height, width)[0]


def breakdown(spec: ArchSpec, image_size: ImageSize = 640) -> list[PartCost]:
    """Per-part costs: stem, stage1..4, spp, up1, up2, down1, down2, head."""
    height, width = _hw(image_size)
    return list(_analyse(spec, height, width)[1])


__all__ = ["Complexity", "PartCost", "breakdown", "complexity"]
