"""The channel relation of each YOLO-NAS block, for `evaluators.inherit`.

Every function walks one child module and its parent counterpart, copies what corresponds, and
returns the channel map of the module's output: a LongTensor with, for each child channel, the
parent channel it carries, or -1 when it carries none (a fresh producer, a slot beyond the
parent's width). Producers that choose their channels freely take the parent's channels of
largest filter L1 norm (`select`); ties are written where the forward pass adds tensors:

- a bottleneck's residual: its second block writes into the channels of its input;
- a QARepVGG identity branch: output channels = input channels;
- concatenations: the consumer's input map is the parts' maps shifted by the parent's offsets.

A module whose structure differs from the parent's (another block kind, kernel, stride, stem
layout, number of predictions) is left fresh and its output map is all -1, so that no consumer
pairs parent weights with inputs that do not correspond.

Example:
    >>> select(2, torch.tensor([0.1, 3.0, 2.0])).tolist(), positional(3, 2).tolist()
    ([1, 2], [0, 1, -1])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.backbone import SPP, Backbone, BackboneStage
from models.blocks import Bottleneck, ConvBNAct, CSPBody, QARepVGG
from models.heads import DetectionLevel, PoseLevel
from models.neck import DownStage, Neck, UpStage
from models.spec import ArchSpec

Map = Tensor  # [child channels] long: parent channel or -1


def positional(n_child: int, n_parent: int) -> Map:
    """Child channel i <- parent channel i; the slots beyond the parent's width get -1."""
    idx = torch.arange(n_child)
    idx[idx >= n_parent] = -1
    return idx


def fresh(n_child: int) -> Map:
    """No child channel has a parent counterpart."""
    return torch.full((n_child,), -1, dtype=torch.long)


def select(n_child: int, scores: Tensor) -> Map:
    """The parent's ``n_child`` channels of largest score, in their order; all of them (then
    -1 slots) when the child is as wide or wider."""
    n_parent = scores.numel()
    if n_child >= n_parent:
        return positional(n_child, n_parent)
    order = torch.argsort(scores.detach().double().cpu(), descending=True, stable=True)
    return order[:n_child].sort().values


def l1(weight: Tensor, out_dim: int = 0) -> Tensor:
    """L1 norm of each output filter of ``weight`` (sum of |w| over the other dims)."""
    dims = [d for d in range(weight.dim()) if d != out_dim]
    return weight.detach().abs().sum(dim=dims)


def shift(m: Map, offset: int) -> Map:
    return torch.where(m >= 0, m + offset, m)


class Copier:
    """Copies parent slices into child tensors and counts the copied parameter elements."""

    def __init__(self) -> None:
        self.copied: dict[int, int] = {}  # id(child parameter) -> elements copied
        self.whole: set[int] = set()  # parameters copied entirely from a same-shaped tensor

    def tensor(self, dst: Tensor, src: Tensor, maps: Sequence[Map | None]) -> None:
        """``dst[i, j, ...] = src[maps[0][i], maps[1][j], ...]`` where every map is >= 0.
        A dimension without a map (None, or beyond ``maps``) must have equal sizes; otherwise
        nothing is copied (the tensor stays fresh)."""
        if dst.dim() != src.dim():
            return
        full = dst.shape == src.shape
        child_idx, parent_idx = [], []
        for d in range(dst.dim()):
            m = maps[d] if d < len(maps) else None
            if m is None:
                if dst.shape[d] != src.shape[d]:
                    return
                c = p = torch.arange(dst.shape[d])
            else:
                if m.numel() != dst.shape[d]:
                    raise ValueError(f"map of {m.numel()} for a dimension of {dst.shape[d]}")
                keep = m >= 0
                c, p = keep.nonzero().flatten(), m[keep]
                if c.numel() != src.shape[d] or not torch.equal(c, p):
                    full = False
            if c.numel() == 0:
                return
            child_idx.append(c)
            parent_idx.append(p)
        sub = src.detach()
        for d, p in enumerate(parent_idx):
            sub = sub.index_select(d, p.to(sub.device))
        n = dst.dim()
        index = tuple(
            c.to(dst.device).view([-1 if i == d else 1 for i in range(n)])
            for d, c in enumerate(child_idx)
        )
        dst.data[index] = sub.to(dst.dtype)
        if isinstance(dst, nn.Parameter):
            self.copied[id(dst)] = self.copied.get(id(dst), 0) + sub.numel()
            if full:
                self.whole.add(id(dst))

    def bn(self, c: nn.BatchNorm2d, p: nn.BatchNorm2d, m: Map) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            self.tensor(getattr(c, name), getattr(p, name), [m])
        if c.num_batches_tracked is not None and p.num_batches_tracked is not None:
            c.num_batches_tracked.copy_(p.num_batches_tracked)

    def conv(self, c: nn.Conv2d, p: nn.Conv2d, in_map: Map, out_map: Map) -> bool:
        """Copy a conv's weight (and bias); False (nothing copied) when the geometry differs."""
        if (c.kernel_size, c.stride, c.groups) != (p.kernel_size, p.stride, p.groups):
            return False
        self.tensor(c.weight, p.weight, [out_map, in_map])
        if c.bias is not None and p.bias is not None:
            self.tensor(c.bias, p.bias, [out_map])
        return True


# -- blocks ------------------------------------------------------------------------------------


def conv_bn_act(
    cp: Copier, c: ConvBNAct, p: ConvBNAct, in_map: Map, out_map: Map | None = None
) -> Map:
    n = c.conv.out_channels
    if (c.conv.kernel_size, c.conv.stride) != (p.conv.kernel_size, p.conv.stride):
        return fresh(n)
    out = select(n, l1(p.conv.weight)) if out_map is None else out_map
    cp.conv(c.conv, p.conv, in_map, out)
    cp.bn(c.bn, p.bn, out)
    return out


def qarepvgg(
    cp: Copier, c: QARepVGG, p: QARepVGG, in_map: Map, out_map: Map | None = None
) -> Map:
    if (c.has_identity, c.stride) != (p.has_identity, p.stride):
        return fresh(c.out_ch)
    if c.has_identity:  # y = ... + x: the output channels are the input's
        if out_map is not None and not torch.equal(out_map, in_map):
            return fresh(c.out_ch)
        out = in_map
    elif out_map is not None:
        out = out_map
    else:
        out = select(c.out_ch, l1(p.conv3.weight) + l1(p.conv1.weight))
    cp.conv(c.conv3, p.conv3, in_map, out)
    cp.bn(c.bn3, p.bn3, out)
    cp.conv(c.conv1, p.conv1, in_map, out)
    cp.bn(c.post_bn, p.post_bn, out)
    return out


def block(cp: Copier, c: nn.Module, p: nn.Module, in_map: Map, out_map: Map | None = None) -> Map:
    """A bottleneck's inner block (QARepVGG or 3x3 ConvBNAct); another kind starts fresh."""
    if isinstance(c, QARepVGG) and isinstance(p, QARepVGG):
        return qarepvgg(cp, c, p, in_map, out_map)
    if isinstance(c, ConvBNAct) and isinstance(p, ConvBNAct):
        return conv_bn_act(cp, c, p, in_map, out_map)
    n = c.out_ch if isinstance(c, QARepVGG) else c.conv.out_channels
    return fresh(n)


def bottleneck(cp: Copier, c: Bottleneck, p: Bottleneck, in_map: Map) -> Map:
    """``skip(x) + block2(block1(x))``: block2 writes into the input's channels."""
    mid = block(cp, c.block1, p.block1, in_map)
    block(cp, c.block2, p.block2, mid, out_map=in_map)
    cp.tensor(c.skip.alpha, p.skip.alpha, [None])
    return in_map


def csp(cp: Copier, c: CSPBody, p: CSPBody, in_map: Map) -> Map:
    """A CSP body: the first k bottlenecks; the concat's slices follow the parent's layout.
    A body of the other kind (QSP vs QCI) starts fresh."""
    if c.intermediates != p.intermediates:
        return fresh(c.out.conv.out_channels)
    m1 = conv_bn_act(cp, c.path1, p.path1, in_map)
    m2 = conv_bn_act(cp, c.path2, p.path2, in_map)
    hidden_p = p.path1.conv.out_channels
    depth_p = len(p.bottlenecks)
    parts: list[Map] = [m1] if c.intermediates else []
    y = m1
    for i, cb in enumerate(c.bottlenecks):
        if i < depth_p:
            y = bottleneck(cp, cb, p.bottlenecks[i], y)
            if c.intermediates:
                parts.append(shift(y, (i + 1) * hidden_p))
        elif c.intermediates:  # an extra block: no slot in the parent's concat
            parts.append(fresh(y.numel()))
        # (an extra block keeps y's channel map: its residual carries the input through)
    if not c.intermediates:
        parts.append(y)
    offset = hidden_p * (depth_p + 1) if c.intermediates else hidden_p
    parts.append(shift(m2, offset))
    return conv_bn_act(cp, c.out, p.out, torch.cat(parts))


# -- backbone, neck ----------------------------------------------------------------------------


def spp(cp: Copier, c: SPP, p: SPP, in_map: Map) -> Map:
    m = conv_bn_act(cp, c.reduce, p.reduce, in_map)
    hidden_p = p.reduce.conv.out_channels
    kernels_p = [pool.kernel_size for pool in p.pools]
    parts = [m]
    for pool in c.pools:
        k = pool.kernel_size
        parts.append(shift(m, (kernels_p.index(k) + 1) * hidden_p) if k in kernels_p
                     else fresh(m.numel()))  # fmt: skip
    return conv_bn_act(cp, c.out, p.out, torch.cat(parts))


def backbone(cp: Copier, c: Backbone, p: Backbone) -> list[Map]:
    m = qarepvgg(cp, c.stem, p.stem, torch.arange(3))
    feats = []
    for cs, ps in zip(c.stages, p.stages, strict=True):
        assert isinstance(cs, BackboneStage) and isinstance(ps, BackboneStage)
        m = csp(cp, cs.body, ps.body, qarepvgg(cp, cs.down, ps.down, m))
        feats.append(m)
    feats[-1] = spp(cp, c.spp, p.spp, feats[-1])
    return feats


def up_stage(
    cp: Copier, c: UpStage, p: UpStage, x: Map, skip1: Map, skip2: Map
) -> tuple[Map, Map]:
    inter = conv_bn_act(cp, c.reduce_in, p.reduce_in, x)
    # ConvTranspose2d weight: [in, out, 2, 2]
    up = select(c.upsample.out_channels, l1(p.upsample.weight, out_dim=1))
    cp.tensor(c.upsample.weight, p.upsample.weight, [inter, up])
    s1 = conv_bn_act(cp, c.reduce_skip1, p.reduce_skip1, skip1)
    s2 = conv_bn_act(cp, c.down_skip2, p.down_skip2,
                     conv_bn_act(cp, c.reduce_skip2, p.reduce_skip2, skip2))  # fmt: skip
    out_p = p.upsample.out_channels
    cat = torch.cat([up, shift(s1, out_p), shift(s2, 2 * out_p)])
    y = conv_bn_act(cp, c.reduce_concat, p.reduce_concat, cat)
    return csp(cp, c.body, p.body, y), inter


def down_stage(cp: Copier, c: DownStage, p: DownStage, x: Map, skip: Map) -> Map:
    d = conv_bn_act(cp, c.down, p.down, x)
    cat = torch.cat([d, shift(skip, p.down.conv.out_channels)])
    return csp(cp, c.body, p.body, cat)


def neck(cp: Copier, c: Neck, p: Neck, feats: list[Map]) -> list[Map]:
    c2, c3, c4, c5 = feats
    out1, inter1 = up_stage(cp, c.up1, p.up1, c5, c4, c3)
    p3, inter2 = up_stage(cp, c.up2, p.up2, out1, c3, c2)
    p4 = down_stage(cp, c.down1, p.down1, p3, inter2)
    p5 = down_stage(cp, c.down2, p.down2, p4, inter1)
    return [p3, p4, p5]


# -- heads -------------------------------------------------------------------------------------


def convs(cp: Copier, c: nn.Sequential, p: nn.Sequential, m: Map) -> Map:
    """A branch of 3x3 ConvBNAct: the first k blocks; after an extra (fresh) one, no map."""
    for i, cm in enumerate(c):
        m = conv_bn_act(cp, cm, p[i], m) if i < len(p) else fresh(cm.conv.out_channels)
    return m


def pred(cp: Copier, c: nn.Conv2d, p: nn.Conv2d, in_map: Map) -> None:
    """A prediction conv: its outputs mean something, so only the same count is copied."""
    if c.out_channels == p.out_channels:
        cp.conv(c, p, in_map, torch.arange(c.out_channels))


def detection_level(cp: Copier, c: DetectionLevel, p: DetectionLevel, m: Map) -> None:
    s = conv_bn_act(cp, c.stem, p.stem, m)
    pred(cp, c.cls_pred, p.cls_pred, convs(cp, c.cls_convs, p.cls_convs, s))
    pred(cp, c.reg_pred, p.reg_pred, convs(cp, c.reg_convs, p.reg_convs, s))


def _adapter(cp: Copier, c: nn.Conv2d | None, p: nn.Conv2d | None, s: Map, n: int) -> Map:
    """The map into one path of a shared stem (through its adapter, if any)."""
    if c is None and p is None:
        return s
    if c is None or p is None:  # the parent's path starts elsewhere: no correspondence
        return fresh(n)
    out = select(c.out_channels, l1(p.weight))
    cp.conv(c, p, s, out)
    return out


def pose_level(cp: Copier, c: PoseLevel, p: PoseLevel, m: Map) -> None:
    bbox_ch, pose_ch = c.cls_pred.in_channels, c.pose_pred.in_channels
    if c.shared != p.shared:  # another stem layout: stems fresh
        xb, xp = fresh(bbox_ch), fresh(pose_ch)
    elif c.shared:
        s = conv_bn_act(cp, c.stem, p.stem, m)
        xb = _adapter(cp, c.bbox_adapter, p.bbox_adapter, s, bbox_ch)
        xp = _adapter(cp, c.pose_adapter, p.pose_adapter, s, pose_ch)
    else:
        xb = conv_bn_act(cp, c.bbox_stem, p.bbox_stem, m)
        xp = conv_bn_act(cp, c.pose_stem, p.pose_stem, m)
    pred(cp, c.cls_pred, p.cls_pred, convs(cp, c.cls_convs, p.cls_convs, xb))
    pred(cp, c.reg_pred, p.reg_pred, convs(cp, c.reg_convs, p.reg_convs, xb))
    pred(cp, c.pose_pred, p.pose_pred, convs(cp, c.pose_convs, p.pose_convs, xp))


def inherit_model(
    cp: Copier, child: nn.Module, child_spec: ArchSpec, parent: nn.Module, parent_spec: ArchSpec
) -> None:
    """Backbone and neck always; the head when both models have the same task."""
    feats = backbone(cp, child.backbone, parent.backbone)
    outs = neck(cp, child.neck, parent.neck, feats)
    if child_spec.task != parent_spec.task:
        return
    level = detection_level if child_spec.task == "detection" else pose_level
    for cl, pl, m in zip(child.head.levels, parent.head.levels, outs, strict=True):
        level(cp, cl, pl, m)


__all__ = ["Copier", "Map", "inherit_model", "positional", "select"]
