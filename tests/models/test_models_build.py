"""build_model: output contract, gradients, anchors and decoding, for every preset."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_model, get_preset, list_presets
from models.heads import decode_boxes, make_anchors

SIZE = (64, 96)  # H, W: non-square so that x/y mix-ups show
ANCHORS = sum((SIZE[0] // s) * (SIZE[1] // s) for s in (8, 16, 32))


@pytest.mark.parametrize("name", list_presets())
def test_training_outputs_and_gradients(name: str) -> None:
    spec = get_preset(name)
    model = build_model(spec).train()
    out = model(torch.randn(2, 3, *SIZE))
    c = 1 if spec.task == "pose" else spec.num_classes
    r = spec.head.reg_max + 1
    shapes = {
        "cls_logits": (2, ANCHORS, c),
        "reg_dist": (2, ANCHORS, 4, r),
        "boxes": (2, ANCHORS, 4),
        "anchors": (ANCHORS, 2),
        "strides": (ANCHORS,),
    }
    if spec.task == "pose":
        k = spec.num_keypoints
        shapes.update(kpt_xy=(2, ANCHORS, k, 2), kpt_vis_logits=(2, ANCHORS, k))
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes
    assert all(torch.isfinite(v).all() for v in out.values())
    # a loss touching every output reaches every parameter with a non-zero gradient
    loss = sum(v.square().mean() for k, v in out.items() if v.requires_grad)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


@pytest.mark.parametrize("name", ["yolo_nas_tiny", "yolo_nas_pose_tiny"])
def test_eval_outputs(name: str) -> None:
    spec = get_preset(name)
    model = build_model(spec)
    x = torch.randn(1, 3, *SIZE)
    train_out = model.train()(x)
    model.eval()
    out = model(x)
    assert isinstance(out, tuple)
    k = spec.num_keypoints
    if spec.task == "detection":
        boxes, scores = out
        assert scores.shape == (1, ANCHORS, spec.num_classes)
    else:
        boxes, scores, keypoints = out
        assert scores.shape == (1, ANCHORS, 1)
        assert keypoints.shape == (1, ANCHORS, k, 3)
        assert ((keypoints[..., 2] > 0) & (keypoints[..., 2] < 1)).all()
    assert boxes.shape == (1, ANCHORS, 4)
    assert ((scores > 0) & (scores < 1)).all()
    # fresh heads predict ~1% scores (prior bias -log 99)
    assert abs(scores.mean().item() - 0.01) < 0.01
    # with BN in train mode the numbers differ; the decoding must be the same function
    reg = train_out["reg_dist"]
    assert torch.allclose(
        decode_boxes(reg, train_out["anchors"], train_out["strides"]), train_out["boxes"]
    )


def test_anchor_grid_values_and_cache() -> None:
    model = build_model(get_preset("yolo_nas_tiny")).eval()
    x = torch.zeros(1, 3, *SIZE)
    model(x)
    a1 = model.anchors(SIZE[0], SIZE[1], x)
    model(x)
    a2 = model.anchors(SIZE[0], SIZE[1], x)
    assert a1[0] is a2[0] and len(model._anchor_cache) == 1  # reused, not rebuilt
    model(torch.zeros(1, 3, 32, 32))
    assert len(model._anchor_cache) == 2  # one entry per input size
    anchors, strides, _ = a1
    # first anchor of each level is the centre of its top-left cell; row-major, x first
    assert anchors[0].tolist() == [4.0, 4.0] and anchors[1].tolist() == [12.0, 4.0]
    first16 = (SIZE[0] // 8) * (SIZE[1] // 8)
    assert anchors[first16].tolist() == [8.0, 8.0] and strides[first16].item() == 16.0
    assert anchors[SIZE[1] // 8].tolist() == [4.0, 12.0]  # second row of stride 8
    model.double()
    assert model._anchor_cache == {}  # dtype change drops cached grids
    assert model(x.double())[0].dtype == torch.float64


def test_decode_boxes_by_hand() -> None:
    anchors, strides = make_anchors(32, 32, (8, 16, 32))
    reg = torch.full((1, anchors.shape[0], 4, 17), -30.0)
    reg[0, 0, 0, 2] = 30.0  # left: bin 2
    reg[0, 0, 1, 0] = 30.0  # top: bin 0
    reg[0, 0, 2, 5] = 30.0  # right: bin 5
    reg[0, 0, 3, 16] = 30.0  # bottom: bin 16
    box = decode_boxes(reg, anchors, strides)[0, 0]
    # anchor (4, 4), stride 8
    assert torch.allclose(box, torch.tensor([4 - 16.0, 4.0, 4 + 40.0, 4 + 128.0]), atol=1e-4)


def test_pose_keypoints_decode_as_offset_plus_cell_times_stride() -> None:
    spec = get_preset("yolo_nas_pose_tiny")
    model = build_model(spec).eval()
    with torch.no_grad():
        for level in model.head.levels:
            level.pose_pred.weight.zero_()
            level.pose_pred.bias.copy_(torch.arange(2 * spec.num_keypoints) * 0.1)
            level.cls_pred.weight.zero_()
            level.cls_pred.bias.fill_(0.0)
    _, scores, kpts = model(torch.randn(1, 3, *SIZE))
    anchors, strides, _ = model.anchors(SIZE[0], SIZE[1], torch.zeros(1))
    cell = anchors / strides[:, None] - 0.5  # integer cell index (x, y)
    offsets = (torch.arange(2 * spec.num_keypoints) * 0.1).reshape(spec.num_keypoints, 2)
    want = (offsets[None] + cell[:, None, :]) * strides[:, None, None]
    assert torch.allclose(kpts[0, ..., :2], want, atol=1e-5)
    assert torch.allclose(kpts[..., 2], torch.full_like(kpts[..., 2], 0.5))
    assert torch.allclose(scores, torch.full_like(scores, 0.5))


def test_bn_settings_and_head_init() -> None:
    det = build_model(get_preset("yolo_nas_tiny"))
    pose = build_model(get_preset("yolo_nas_pose_tiny"))
    bns = [m for m in det.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.03 for m in bns)
    assert all(m.eps == 1e-6 for m in pose.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bias = det.head.levels[0].cls_pred.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(99)))


def test_build_model_rejects_non_specs() -> None:
    with pytest.raises(TypeError, match="ArchSpec"):
        build_model({"task": "detection"})  # type: ignore[arg-type]
