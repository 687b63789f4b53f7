"""fuse(): equal outputs, no BN / Identity / branches left, input untouched; block fusion."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from models import build_model, fuse, get_preset, list_presets
from models.blocks import ConvAct, ConvBNAct, QARepVGG
from models.complexity import complexity


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize("name", list_presets())
def test_fused_equals_unfused_float64(name: str, randomize_bn) -> None:
    model = build_model(get_preset(name))
    randomize_bn(model)
    model = model.double().eval()
    fused = fuse(model)
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64) * 255
    with torch.no_grad():
        want, got = model(x), fused(x)
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert w.shape == g.shape
        assert _rel_err(g, w) < 1e-4  # in practice ~1e-15
    # no dead weight: nothing to fold is left, and nothing that does no work
    kinds = {type(m) for m in fused.modules()}
    assert not kinds & {nn.BatchNorm2d, nn.Identity, QARepVGG, ConvBNAct, nn.Dropout}
    assert not any(isinstance(m, nn.Sequential) and len(m) == 0 for m in fused.modules())
    n_fused = sum(p.numel() for p in fused.parameters())
    assert n_fused == complexity(get_preset(name), 64).fused_params
    # the input model is untouched
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fuse_keeps_training_model_intact_and_returns_eval_copy() -> None:
    model = build_model(get_preset("yolo_nas_tiny")).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse(model)
    assert model.training and not fused.training and fused.fused
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert fused.spec == model.spec


@pytest.mark.parametrize("in_ch,out_ch,stride", [(8, 8, 1), (8, 16, 1), (8, 8, 2)])
def test_qarepvgg_partial_and_full_fusion(in_ch: int, out_ch: int, stride: int, randomize_bn):
    block = QARepVGG(in_ch, out_ch, stride)
    assert block.has_identity == (in_ch == out_ch and stride == 1)
    randomize_bn(block, seed=1)
    block = block.double().eval()
    x = torch.randn(2, in_ch, 12, 12, dtype=torch.float64)
    partial, full = block.partial_fuse().eval(), block.fuse()
    assert isinstance(partial, ConvBNAct) and partial.conv.kernel_size == (3, 3)
    assert partial.conv.bias is not None  # branches folded, post-BN kept
    assert isinstance(full, ConvAct) and full.conv.stride == (stride, stride)
    with torch.no_grad():
        want = block(x)
        assert _rel_err(partial(x), want) < 1e-12
        assert _rel_err(full(x), want) < 1e-12


def test_identity_branch_matters() -> None:
    """The identity branch is real: removing it changes the output (so fusion must add it)."""
    block = QARepVGG(4, 4).eval()
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        with_id = block(x)
        block.has_identity = False
        without = block(x)
    assert not torch.allclose(with_id, without)


def test_convbnact_fusion(randomize_bn) -> None:
    layer = ConvBNAct(6, 10, 3, 2)
    randomize_bn(layer, seed=2)
    layer = layer.double().eval()
    x = torch.randn(1, 6, 10, 10, dtype=torch.float64)
    with torch.no_grad():
        assert _rel_err(layer.fuse()(x), layer(x)) < 1e-12


@pytest.mark.parametrize("pose_inter", [(128, 128, 256), (256, 256, 256)])
def test_shared_stem_pose_head(pose_inter: tuple[int, ...], randomize_bn) -> None:
    base = get_preset("yolo_nas_pose_tiny")
    head = dataclasses.replace(base.head, shared_stem=True, pose_inter=pose_inter)
    spec = dataclasses.replace(base, head=head)
    model = build_model(spec)
    level = model.head.levels[0]
    bbox_ch, pose_ch = head.bbox_channels[0], head.pose_channels[0]
    assert level.stem.conv.out_channels == max(bbox_ch, pose_ch)
    assert (level.pose_adapter is None) == (pose_ch >= bbox_ch)
    assert level.bbox_adapter is None if bbox_ch >= pose_ch else level.bbox_adapter is not None
    assert not hasattr(level, "bbox_stem")
    assert complexity(spec, 64).params == sum(p.numel() for p in model.parameters())
    randomize_bn(model)
    model = model.double().eval()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64) * 255
    with torch.no_grad():
        for w, g in zip(model(x), fuse(model)(x), strict=True):
            assert _rel_err(g, w) < 1e-4
