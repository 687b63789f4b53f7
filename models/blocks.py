"""Building blocks of the YOLO-NAS family, with their inference (fused) forms.

Training forms: `ConvBNAct`, `QARepVGG`, `Bottleneck` (+ `Skip`), `CSPBody` (QSP / QCI).
Inference form: `ConvAct` (one conv with bias + ReLU) that both `ConvBNAct.fuse()` and
`QARepVGG.fuse()` return; `fuse_modules(module)` swaps every fusable child in place.

Choices (see docs/models.md):
- QARepVGG's 1x1 branch is not scaled by a learnable alpha (the published models train with it
  off); the bottleneck's residual alpha is learnable (init 1.0) and lives in a separate `Skip`
  module so that a quantizer can be placed on the skip path.

Example:
    >>> import torch
    >>> block = QARepVGG(8, 8).eval()
    >>> x = torch.randn(1, 8, 16, 16)
    >>> torch.allclose(block(x), block.fuse()(x), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def fold_bn(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BatchNorm that follows a conv (weight [O, I, kh, kw]) into it."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # [O]
    if bias is None:
        bias = torch.zeros_like(bn.running_mean)
    new_weight = weight * scale.reshape(-1, 1, 1, 1)
    new_bias = (bias - bn.running_mean) * scale + bn.bias
    return new_weight, new_bias


def _conv_with(weight: Tensor, bias: Tensor, like: nn.Conv2d) -> nn.Conv2d:
    """A conv with the geometry of ``like`` carrying the given weight and bias."""
    out_ch, in_per_group = weight.shape[:2]
    conv = nn.Conv2d(
        in_per_group * like.groups,
        out_ch,
        weight.shape[2:],
        stride=like.stride,
        padding=(weight.shape[2] // 2, weight.shape[3] // 2),
        groups=like.groups,
        bias=True,
    ).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


class ConvAct(nn.Module):
    """Inference form: conv with bias followed by ReLU."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class ConvBNAct(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU; ``fuse()`` folds the BN into the conv."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False)
        self.bn = _bn(out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> ConvAct:
        """The equivalent eval-mode `ConvAct` (uses the BN running statistics)."""
        weight, bias = fold_bn(self.conv.weight, self.conv.bias, self.bn)
        return ConvAct(_conv_with(weight, bias, self.conv))


class QARepVGG(nn.Module):
    """QARepVGG block (S4 form): ReLU(postBN(BN(conv3x3 x) + conv1x1 x [+ x])).

    The 1x1 branch has a bias and no BN; the identity branch exists only when ``in == out`` and
    stride is 1 (and ``identity`` is not turned off). ``partial_fuse()`` folds the three branches
    into one 3x3 conv and keeps the post-BN; ``fuse()`` also folds the post-BN.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, identity: bool = True) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride
        self.conv3 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn3 = _bn(out_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 1, stride, 0, bias=True)
        self.has_identity = identity and in_ch == out_ch and stride == 1
        self.post_bn = _bn(out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn3(self.conv3(x)) + self.conv1(x)
        if self.has_identity:
            y = y + x
        return self.act(self.post_bn(y))

    @torch.no_grad()
    def _merged(self) -> tuple[Tensor, Tensor]:
        """Weight [O, I, 3, 3] and bias [O] of the branch sum (before the post-BN)."""
        weight, bias = fold_bn(self.conv3.weight, None, self.bn3)
        weight = weight.clone()
        weight[:, :, 1, 1] += self.conv1.weight[:, :, 0, 0]
        bias = bias + self.conv1.bias
        if self.has_identity:
            idx = torch.arange(self.out_ch, device=weight.device)
            weight[idx, idx, 1, 1] += 1.0
        return weight, bias

    @torch.no_grad()
    def partial_fuse(self) -> ConvBNAct:
        """Branches folded into one 3x3 conv with bias; the post-BN (trainable) is kept."""
        weight, bias = self._merged()
        out = ConvBNAct(self.in_ch, self.out_ch, 3, self.stride).to(weight.device, weight.dtype)
        out.conv = _conv_with(weight, bias, self.conv3)
        out.bn.load_state_dict(self.post_bn.state_dict())
        out.bn.eps, out.bn.momentum = self.post_bn.eps, self.post_bn.momentum
        return out

    @torch.no_grad()
    def fuse(self) -> ConvAct:
        """Full fusion: one 3x3 conv with bias + ReLU."""
        weight, bias = self._merged()
        weight, bias = fold_bn(weight, bias, self.post_bn)
        return ConvAct(_conv_with(weight, bias, self.conv3))


class Skip(nn.Module):
    """The residual path of a bottleneck: ``alpha * x`` with a learnable scalar alpha."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.alpha * x


BlockFactory = Callable[[int, int], nn.Module]


def qarepvgg_block(in_ch: int, out_ch: int) -> nn.Module:
    return QARepVGG(in_ch, out_ch)


def conv3x3_block(in_ch: int, out_ch: int) -> nn.Module:
    return ConvBNAct(in_ch, out_ch, 3)


class Bottleneck(nn.Module):
    """Two blocks with a residual: ``y = skip(x) + block2(block1(x))`` (channels unchanged)."""

    def __init__(self, channels: int, block: BlockFactory) -> None:
        super().__init__()
        self.block1 = block(channels, channels)
        self.block2 = block(channels, channels)
        self.skip = Skip()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.block2(self.block1(x))


class CSPBody(nn.Module):
    """CSP stage body in the QSP or QCI form.

    Two 1x1 ConvBNAct from ``in_ch`` to ``hidden``; path 1 runs ``depth`` bottlenecks. QSP
    concatenates path 1's last output with path 2 (2 * hidden); QCI concatenates path 1's input,
    every bottleneck output and path 2 (hidden * (2 + depth)). A 1x1 ConvBNAct maps to ``out_ch``.
    """

    def __init__(
        self, in_ch: int, out_ch: int, depth: int, hidden: int, kind: str, block: BlockFactory
    ) -> None:
        super().__init__()
        if kind not in ("qsp", "qci"):
            raise ValueError(f"CSPBody kind: expected 'qsp' or 'qci', got {kind!r}")
        self.intermediates = kind == "qci"
        self.path1 = ConvBNAct(in_ch, hidden, 1)
        self.path2 = ConvBNAct(in_ch, hidden, 1)
        self.bottlenecks = nn.ModuleList(Bottleneck(hidden, block) for _ in range(depth))
        concat = hidden * (2 + depth) if self.intermediates else 2 * hidden
        self.out = ConvBNAct(concat, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.path1(x)
        parts = [y] if self.intermediates else []
        for bottleneck in self.bottlenecks:
            y = bottleneck(y)
            if self.intermediates:
                parts.append(y)
        if not self.intermediates:
            parts.append(y)
        parts.append(self.path2(x))
        return self.out(torch.cat(parts, dim=1))


def fuse_modules(module: nn.Module) -> None:
    """Replace, in place and recursively, every ConvBNAct / QARepVGG by its `ConvAct` form."""
    for name, child in module.named_children():
        if isinstance(child, (ConvBNAct, QARepVGG)):
            setattr(module, name, child.fuse())
        else:
            fuse_modules(child)


__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "Bottleneck",
    "CSPBody",
    "ConvAct",
    "ConvBNAct",
    "QARepVGG",
    "Skip",
    "conv3x3_block",
    "fold_bn",
    "fuse_modules",
    "qarepvgg_block",
]
