"""Decoded predictions -> final detections: score threshold, top-k, NMS, max detections.

Works on the eval-mode outputs of `models.build.YoloNAS` (or its ONNX export):
``(boxes [B, A, 4], scores [B, A, C])`` for detection, ``(boxes, scores [B, A, 1],
keypoints [B, A, K, 3])`` for pose. Detection is multi-label (an anchor may yield one detection
per class above the threshold); NMS is per class (torchvision ``batched_nms``).

Example:
    >>> import torch
    >>> from models.postprocess import postprocess
    >>> boxes = torch.tensor([[[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]])
    >>> scores = torch.tensor([[[0.9], [0.8], [0.7]]])
    >>> [d["boxes"].tolist() for d in postprocess((boxes, scores), iou_threshold=0.5)]
    [[[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms

# Published post-processing: NMS IoU 0.7, at most 300 (detection) / 30 (pose) detections;
# COCO evaluation uses score threshold 0.01. Before NMS the reference keeps the best 1000
# (detection, score > threshold) / 300 (pose, score >= threshold) candidates.
NMS_IOU = 0.7
MAX_DETECTIONS = {"detection": 300, "pose": 30}
PRE_NMS_TOPK = {"detection": 1000, "pose": 300}
EVAL_SCORE_THRESHOLD = 0.01


@torch.no_grad()
def postprocess(
    outputs: Sequence[Tensor],
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    topk: int | None = None,
    iou_threshold: float = NMS_IOU,
    max_detections: int | None = None,
) -> list[dict[str, Tensor]]:
    """Per-image dicts with ``boxes`` [D, 4] xyxy, ``scores`` [D], ``labels`` [D] and, for
    pose, ``keypoints`` [D, K, 3]; sorted by decreasing score.

    Order of operations: score threshold (detection: score > threshold, pose: score >=
    threshold, as in the reference) -> the ``topk`` best candidates (default 1000 for
    detection, 300 for pose) -> NMS at ``iou_threshold`` (per class) -> at most
    ``max_detections`` (default 300 for detection, 30 for pose).
    """
    if len(outputs) not in (2, 3):
        raise ValueError(
            f"outputs: expected (boxes, scores) or (boxes, scores, keypoints), got {len(outputs)}"
        )
    boxes, scores = outputs[0], outputs[1]
    keypoints = outputs[2] if len(outputs) == 3 else None
    task = "pose" if keypoints is not None else "detection"
    if max_detections is None:
        max_detections = MAX_DETECTIONS[task]
    if topk is None:
        topk = PRE_NMS_TOPK[task]
    results = []
    for i in range(boxes.shape[0]):
        s = scores[i].float()  # [A, C]
        passed = s >= score_threshold if task == "pose" else s > score_threshold
        anchor_idx, labels = passed.nonzero(as_tuple=True)
        cand_scores = s[anchor_idx, labels]
        if cand_scores.numel() > topk:
            cand_scores, order = cand_scores.topk(topk)
            anchor_idx, labels = anchor_idx[order], labels[order]
        cand_boxes = boxes[i][anchor_idx].float()
        keep = batched_nms(cand_boxes, cand_scores, labels, iou_threshold)[:max_detections]
        det = {
            "boxes": cand_boxes[keep],
            "scores": cand_scores[keep],
            "labels": labels[keep],
        }
        if keypoints is not None:
            det["keypoints"] = keypoints[i][anchor_idx[keep]].float()
        results.append(det)
    return results


__all__ = ["EVAL_SCORE_THRESHOLD", "MAX_DETECTIONS", "NMS_IOU", "PRE_NMS_TOPK", "postprocess"]
