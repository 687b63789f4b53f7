"""NMS post-processing and the pycocotools wrapper (including no detections at all)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluators.coco_eval import evaluate
from evaluators.data import load_coco, load_data_config
from models.postprocess import postprocess


def test_nms_per_class_threshold_topk_and_max() -> None:
    boxes = torch.tensor([[[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60],
                           [80, 80, 90, 90]]])
    scores = torch.zeros(1, 5, 2)
    scores[0, 0, 0] = 0.9  # kept
    scores[0, 1, 0] = 0.8  # same class, IoU 0.81 with box 0: suppressed
    scores[0, 2, 1] = 0.7  # same box, other class: kept (NMS is per class)
    scores[0, 3, 0] = 0.6  # kept
    scores[0, 4, 1] = 0.005  # under the score threshold
    det = postprocess((boxes, scores), score_threshold=0.01, iou_threshold=0.7)[0]
    assert det["scores"].tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert det["labels"].tolist() == [0, 1, 0]
    torch.testing.assert_close(det["boxes"][2], boxes[0, 3])
    # A looser IoU threshold keeps the overlapping box; max_detections and topk cut the list.
    assert len(postprocess((boxes, scores), iou_threshold=0.9)[0]["scores"]) == 4
    assert len(postprocess((boxes, scores), max_detections=2)[0]["scores"]) == 2
    assert postprocess((boxes, scores), topk=1)[0]["scores"].tolist() == pytest.approx([0.9])


def test_pose_keypoints_follow_their_boxes_and_empty_batches() -> None:
    boxes = torch.tensor([[[0.0, 0, 10, 10], [40, 40, 50, 50]], [[0.0, 0, 1, 1], [0, 0, 1, 1]]])
    scores = torch.tensor([[[0.3], [0.9]], [[0.0], [0.0]]])
    kpts = torch.arange(2 * 2 * 17 * 3, dtype=torch.float32).reshape(2, 2, 17, 3)
    dets = postprocess((boxes, scores, kpts))
    assert dets[0]["scores"].tolist() == pytest.approx([0.9, 0.3])
    torch.testing.assert_close(dets[0]["keypoints"][0], kpts[0, 1])
    assert dets[0]["labels"].tolist() == [0, 0]
    assert len(dets[1]["scores"]) == 0 and dets[1]["keypoints"].shape == (0, 17, 3)
    with pytest.raises(ValueError, match="expected"):
        postprocess((boxes,))


def _gt_results(coco, with_keypoints: bool = False) -> list[dict]:
    out = []
    for a in coco.dataset["annotations"]:
        r = {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 1.0}
        if with_keypoints:
            r["keypoints"] = a["keypoints"]
        out.append(r)
    return out


def test_evaluate_perfect_wrong_empty_and_quiet(det_data: Path, capsys) -> None:
    cfg = load_data_config(det_data, "detection")
    gt = load_coco(cfg.val_annotations)
    perfect = _gt_results(gt)
    m = evaluate(gt, perfect, "bbox")
    assert m["ap"] == pytest.approx(1.0) and m["ap50"] == pytest.approx(1.0)
    assert {"ap", "ap50", "ap75", "ap_small", "ar100"} <= set(m)
    # Right boxes, wrong (but existing) category: AP 0.
    cats = [1, 3, 5, 7]
    wrong = [dict(r, category_id=cats[(cats.index(r["category_id"]) + 1) % 4]) for r in perfect]
    assert evaluate(gt, wrong, "bbox")["ap"] == 0.0
    # No detections at all: zeros, no crash.
    assert evaluate(gt, [], "bbox") == dict.fromkeys(m, 0.0)
    assert evaluate(gt, [], "keypoints")["ap"] == 0.0
    # Restricting to a subset of images: detections on one image only score 1.0 there.
    first = gt.dataset["images"][0]["id"]
    only = [r for r in perfect if r["image_id"] == first]
    assert evaluate(gt, only, "bbox", image_ids=[first])["ap"] == pytest.approx(1.0)
    assert evaluate(gt, only, "bbox")["ap"] < 1.0
    assert capsys.readouterr().out == ""  # pycocotools' printing is captured
    with pytest.raises(ValueError, match="iou_type"):
        evaluate(gt, perfect, "segm")


def test_evaluate_keypoints(pose_data: Path) -> None:
    cfg = load_data_config(pose_data, "pose")
    gt = load_coco(cfg.val_annotations)
    res = _gt_results(gt, with_keypoints=True)
    assert evaluate(gt, res, "keypoints")["ap"] == pytest.approx(1.0)
    # Keypoints shifted by a quarter of the person's height: OKS collapses, AP drops.
    shifted = []
    for r in res:
        kp = list(r["keypoints"])
        for j in range(0, len(kp), 3):
            if kp[j + 2]:
                kp[j + 1] += r["bbox"][3] / 4
        shifted.append(dict(r, keypoints=kp))
    assert evaluate(gt, shifted, "keypoints")["ap"] < 0.2
    # The boxes alone are still perfect.
    assert evaluate(gt, shifted, "bbox")["ap"] == pytest.approx(1.0)
