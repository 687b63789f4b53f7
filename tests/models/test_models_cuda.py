"""The models on an NVIDIA GPU (skipped without one)."""

from __future__ import annotations

import pytest
import torch

from models import build_model, fuse, get_preset

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("name", ["yolo_nas_tiny", "yolo_nas_pose_tiny", "yolo_nas_s"])
def test_cuda_train_step_and_fused_equality(name: str, randomize_bn) -> None:
    model = build_model(get_preset(name)).cuda()
    out = model(torch.rand(2, 3, 128, 160, device="cuda") * 255)
    assert all(v.is_cuda and torch.isfinite(v).all() for v in out.values())
    sum(v.square().mean() for v in out.values() if v.requires_grad).backward()
    assert all(p.grad is not None and p.grad.any() for p in model.parameters())
    randomize_bn(model.cpu())
    model = model.double().cuda().eval()
    x = torch.rand(1, 3, 128, 160, device="cuda", dtype=torch.float64) * 255
    with torch.no_grad():
        for w, g in zip(model(x), fuse(model)(x), strict=True):
            assert g.is_cuda and ((g - w).abs().max() / w.abs().max()).item() < 1e-4


def test_anchor_cache_is_per_device_and_dtype() -> None:
    model = build_model(get_preset("yolo_nas_tiny")).eval()
    x = torch.zeros(1, 3, 64, 64)
    model(x)
    model.cuda()
    assert model._anchor_cache == {}  # moving the model drops grids of the old device
    model(x.cuda())
    with torch.autocast("cuda", dtype=torch.float16):
        boxes, scores = fuse(model)(x.cuda())
    assert torch.isfinite(boxes).all() and torch.isfinite(scores).all()
    model.half()(x.cuda().half())
    keys = list(model._anchor_cache)
    assert keys and all(k[2].type == "cuda" for k in keys) and keys[-1][3] == torch.float16
