"""Assigner and losses on hand-made tensors shaped like the training-mode forward contract."""

from __future__ import annotations

import math

import pytest
import torch

from models.assigner import TaskAlignedAssigner, pairwise_iou, pairwise_oks
from models.losses import (
    DetectionLoss,
    PoseLoss,
    box_to_ltrb,
    dfl_loss,
    focal_loss,
    varifocal_loss,
)

# Four anchors in a row (stride 8) and two objects; every box edge is a whole number of strides
# from the anchors that fall inside it, so the DFL targets are integers.
ANCHORS = torch.tensor([[12.0, 12.0], [20.0, 12.0], [28.0, 12.0], [36.0, 12.0]])
STRIDES = torch.full((4,), 8.0)
BOX_A = [4.0, 4.0, 20.0, 20.0]  # holds anchor 0
BOX_B = [12.0, 4.0, 44.0, 20.0]  # holds anchors 1, 2, 3
R = 16


def test_pairwise_iou_known_values() -> None:
    a = torch.tensor([[[0.0, 0, 10, 10]]])
    b = torch.tensor([[[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]])
    torch.testing.assert_close(pairwise_iou(a, b), torch.tensor([[[1.0, 1 / 3, 0.0]]]))


def test_assigner_topk_conflicts_and_targets() -> None:
    # Objects overlapping at anchor 1 (centre at x=12): A = [0, 16], B = [8, 32] (y in [0, 8]).
    anchors = torch.tensor([[4.0, 4.0], [12.0, 4.0], [20.0, 4.0], [28.0, 4.0]])
    gt = torch.tensor([[[0.0, 0, 16, 8], [8, 0, 32, 8], [0, 0, 64, 64]]])  # third is padding
    mask = torch.tensor([[True, True, False]])
    pred = torch.tensor([[[0.0, 0, 16, 8], [8, 0, 32, 8], [16, 0, 32, 8], [24, 0, 32, 8]]])
    scores = torch.full((1, 4, 3), 0.5)
    out = TaskAlignedAssigner(topk=2)(scores, pred, anchors, torch.tensor([[0, 1, 2]]), gt, mask)
    # A's top-2 are anchors 0 and 1, B's are 1 and 2; anchor 1 overlaps B best (IoU 1 vs 0.25).
    assert out.fg_mask.tolist() == [[True, True, True, False]]
    assert out.labels.tolist() == [[0, 1, 1, 3]]  # 3 = background (num_classes)
    assert out.gt_index.tolist() == [[0, 1, 1, 0]]
    torch.testing.assert_close(out.boxes[0, 2], gt[0, 1])
    # Normalised alignment: the best anchor of each object gets its best IoU (1.0); anchor 2
    # gets (0.5 * (2/3)**6) / 0.5 * 1.0.
    expected = torch.zeros(1, 4, 3)
    expected[0, 0, 0] = 1.0
    expected[0, 1, 1] = 1.0
    expected[0, 2, 1] = (2 / 3) ** 6
    torch.testing.assert_close(out.scores, expected)


def test_assigner_without_objects_and_untrained_predictions() -> None:
    empty = TaskAlignedAssigner()(
        torch.rand(2, 4, 3), torch.rand(2, 4, 4), ANCHORS, torch.zeros(2, 0, dtype=torch.long),
        torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool),
    )  # fmt: skip
    assert not empty.fg_mask.any() and (empty.labels == 3).all() and empty.scores.sum() == 0
    # Predicted boxes that overlap nothing: every object still gets its in-box anchors.
    far = torch.full((1, 4, 4), 1000.0)
    far[..., 2:] += 1
    gt = torch.tensor([[BOX_A, BOX_B]])
    out = TaskAlignedAssigner()(torch.full((1, 4, 1), 0.01), far, ANCHORS,
                                torch.zeros(1, 2, dtype=torch.long), gt, torch.ones(1, 2).bool())
    assert out.fg_mask.tolist() == [[True, True, True, True]]
    assert out.gt_index.tolist() == [[0, 1, 1, 1]]


def test_pairwise_oks_known_values() -> None:
    gt = torch.tensor([[[[10.0, 10, 2], [20, 20, 1], [0, 0, 0]]]])  # [1, 1, K=3, 3]
    sig = torch.tensor([0.1, 0.1, 0.1])
    area = torch.tensor([[100.0]])
    pred = torch.tensor([[[[10.0, 10], [20, 20], [50, 50]], [[13.0, 14], [20, 20], [0, 0]]]])
    oks = pairwise_oks(gt, pred, area, sig)
    e = 25 / (2 * (0.2**2) * 100)  # d^2 = 3^2 + 4^2 for the first joint of anchor 1
    torch.testing.assert_close(oks, torch.tensor([[[1.0, (math.exp(-e) + 1) / 2]]]))
    unlabelled = pairwise_oks(torch.zeros(1, 1, 3, 3), pred, area, sig)
    assert (unlabelled == 0).all()  # no labelled joint: OKS 0, as in the reference


def test_elementwise_losses_known_values() -> None:
    ln2 = math.log(2)
    z = torch.zeros(1)
    assert varifocal_loss(z, torch.tensor([0.5]), torch.ones(1)).item() == pytest.approx(0.5 * ln2)
    assert varifocal_loss(z, z, z).item() == pytest.approx(0.75 * 0.25 * ln2)
    assert focal_loss(z, torch.ones(1)).item() == pytest.approx(0.25 * ln2)
    confident = torch.tensor([30.0, -30.0])
    label = torch.tensor([1.0, 0.0])
    assert varifocal_loss(confident, label, label).item() < 1e-9
    # DFL: uniform logits -> log(R + 1); peaked at an integer target -> 0.
    assert dfl_loss(torch.zeros(1, 4, R + 1), torch.full((1, 4), 2.5)).item() == pytest.approx(
        math.log(R + 1)
    )
    peaked = torch.zeros(1, 4, R + 1)
    peaked[..., 3] = 50.0
    assert dfl_loss(peaked, torch.full((1, 4), 3.0)).item() < 1e-9
    ltrb = box_to_ltrb(torch.tensor([BOX_B]), ANCHORS[1:2], STRIDES[1:2], R)
    torch.testing.assert_close(ltrb, torch.tensor([[1.0, 1.0, 3.0, 1.0]]))


def _perfect_outputs(num_classes: int, labels: list[int]) -> dict[str, torch.Tensor]:
    """Training outputs that predict BOX_A at anchor 0 and BOX_B at anchors 1-3, exactly."""
    boxes = torch.tensor([[BOX_A, BOX_B, BOX_B, BOX_B]])
    ltrb = box_to_ltrb(boxes[0], ANCHORS, STRIDES, R).round().long()
    reg = torch.zeros(1, 4, 4, R + 1)
    reg.scatter_(-1, ltrb[None, ..., None], 50.0)
    cls = torch.full((1, 4, num_classes), -30.0)
    for a, lab in enumerate([labels[0], labels[1], labels[1], labels[1]]):
        cls[0, a, lab] = 30.0
    return {"cls_logits": cls, "reg_dist": reg, "boxes": boxes, "anchors": ANCHORS,
            "strides": STRIDES}


def test_detection_loss_zero_for_perfect_predictions_and_grows_with_errors() -> None:
    targets = [{"boxes": torch.tensor([BOX_A, BOX_B]), "labels": torch.tensor([2, 0])}]
    loss_fn = DetectionLoss(num_classes=3)
    out = _perfect_outputs(3, [2, 0])
    total, parts = loss_fn(out, targets)
    assert total.item() < 1e-6
    assert parts["iou"].item() < 1e-6 and parts["dfl"].item() < 1e-6 and parts["cls"] < 1e-6
    shifted = dict(out, boxes=out["boxes"] + torch.tensor([2.0, 0, 2, 0]))
    assert loss_fn(shifted, targets)[1]["iou"] > 0.05
    wrong_class = dict(out, cls_logits=out["cls_logits"].roll(1, dims=-1))
    assert loss_fn(wrong_class, targets)[1]["cls"] > 1.0
    # Gradients reach every prediction input.
    leaves = {k: v.clone().requires_grad_(True) for k, v in out.items()
              if k in ("cls_logits", "reg_dist", "boxes")}
    total, _ = loss_fn({**shifted, **leaves, "boxes": leaves["boxes"] + 1.0}, targets)
    total.backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in leaves.values())


def test_detection_loss_without_objects() -> None:
    out = _perfect_outputs(3, [0, 0])
    out["cls_logits"] = out["cls_logits"].clone().requires_grad_(True)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    total, parts = DetectionLoss(num_classes=3)(out, empty)
    assert torch.isfinite(total) and parts["iou"] == 0 and parts["dfl"] == 0
    total.backward()  # confident false positives are pushed down
    assert out["cls_logits"].grad[0, 0].max() > 0


def _pose_targets() -> list[dict[str, torch.Tensor]]:
    k = torch.zeros(2, 17, 3)
    k[0, :, 0], k[0, :, 1], k[0, :, 2] = 12.0, 12.0, 2  # all joints of A at its anchor
    k[1, :, 0], k[1, :, 1], k[1, :, 2] = 28.0, 12.0, 2
    k[1, :5, 2] = 0  # B's face not labelled
    return [{"boxes": torch.tensor([BOX_A, BOX_B]), "labels": torch.zeros(2, dtype=torch.long),
             "keypoints": k, "areas": torch.tensor([200.0, 300.0])}]


def _pose_outputs(targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out = _perfect_outputs(1, [0, 0])
    k = targets[0]["keypoints"]
    out["kpt_xy"] = torch.stack([k[0, :, :2], k[1, :, :2], k[1, :, :2], k[1, :, :2]])[None]
    vis = torch.stack([k[0, :, 2], k[1, :, 2], k[1, :, 2], k[1, :, 2]])[None] > 0
    out["kpt_vis_logits"] = torch.where(vis, 30.0, -30.0)
    return out


@pytest.mark.parametrize("oks_area", ["box", "segment"])
def test_pose_loss_zero_for_perfect_predictions(oks_area: str) -> None:
    targets = _pose_targets()
    out = _pose_outputs(targets)
    loss_fn = PoseLoss(num_keypoints=17, oks_area=oks_area)
    total, parts = loss_fn(out, targets)
    assert set(parts) == {"cls", "iou", "dfl", "pose", "vis"}
    assert total.item() < 1e-5, parts
    moved = dict(out, kpt_xy=(out["kpt_xy"] + 3.0).requires_grad_(True))
    total, parts = loss_fn(moved, targets)
    assert parts["pose"] > 0.05
    total.backward()
    assert moved["kpt_xy"].grad.abs().sum() > 0
    # Unlabelled joints (B's face) give no keypoint gradient.
    assert moved["kpt_xy"].grad[0, 1:, :5].abs().sum() == 0


def test_losses_on_real_model_outputs() -> None:
    from models.build import build_model
    from models.presets import get_preset

    for name, loss_fn in (("yolo_nas_tiny", DetectionLoss(4)),
                          ("yolo_nas_pose_tiny", PoseLoss(17))):
        model = build_model(get_preset(name))
        out = model(torch.rand(2, 3, 64, 64))
        targets = _pose_targets() * 2
        targets = [dict(t, labels=torch.tensor([1, 3]) if name == "yolo_nas_tiny" else t["labels"])
                   for t in targets]
        total, parts = loss_fn(out, targets)
        assert torch.isfinite(total) and all(torch.isfinite(v) for v in parts.values())
        total.backward()
        has_grad = {n: p.grad is not None and bool(p.grad.abs().sum() > 0)
                    for n, p in model.named_parameters()}
        assert all(v for n, v in has_grad.items() if not n.startswith("head"))
        # Head levels without positive anchors get no box / pose gradient: most still do.
        head = [v for n, v in has_grad.items() if n.startswith("head")]
        assert sum(head) >= 0.75 * len(head)
