"""COCO AP with pycocotools: results in COCO format, ``bbox`` or ``keypoints`` evaluation.

pycocotools' printing is captured. No detections at all give zeros, not a crash.

Example:
    >>> import tempfile
    >>> from evaluators.synth import make_synthetic
    >>> from evaluators.data import load_coco
    >>> from evaluators.coco_eval import evaluate
    >>> yaml_path = make_synthetic(tempfile.mkdtemp(), "detection", images=8, image_size=96)
    >>> gt = load_coco(yaml_path.parent / "annotations/instances_val.json")
    >>> dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
    ...          "score": 1.0} for a in gt.dataset["annotations"]]
    >>> round(evaluate(gt, dets, "bbox")["ap"], 6)
    1.0
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from models.assigner import DEFAULT_SIGMA

IOU_TYPES = ("bbox", "keypoints")
# Order of COCOeval.stats for each iou type.
_STAT_KEYS = {
    "bbox": ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
             "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large"),
    "keypoints": ("ap", "ap50", "ap75", "ap_medium", "ap_large",
                  "ar", "ar50", "ar75", "ar_medium", "ar_large"),
}  # fmt: skip
# pycocotools' sigmas are used for 17 keypoints; other counts get a uniform DEFAULT_SIGMA, the
# same as the training loss (models.assigner.keypoint_sigmas).


def evaluate(
    coco_gt: Any,
    results: Sequence[dict[str, Any]],
    iou_type: str,
    image_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """Score COCO-format ``results`` against the ground truth ``coco_gt`` (a pycocotools COCO).

    ``image_ids`` restricts the evaluation (a val subset); by default all images of
    ``coco_gt``. Returns ``ap`` (mAP@[.5:.95]), ``ap50``, ``ap75`` and the other COCOeval
    stats (``ap_small`` ... ``ar100`` for bbox). Empty ``results`` -> all zeros.
    """
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type: expected one of {IOU_TYPES}, got {iou_type!r}")
    keys = _STAT_KEYS[iou_type]
    ids = sorted(int(i) for i in (image_ids if image_ids is not None else coco_gt.getImgIds()))
    if not results or not ids:
        return dict.fromkeys(keys, 0.0)
    results = [dict(r) for r in results]
    if iou_type == "keypoints":
        for r in results:  # pycocotools needs an area-like box for keypoint results
            r.setdefault("bbox", _kpt_box(r["keypoints"]))
    k = _num_keypoints(coco_gt) if iou_type == "keypoints" else 0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.params.imgIds = ids
        if iou_type == "keypoints" and k != 17:
            ev.params.kpt_oks_sigmas = np.full(k, DEFAULT_SIGMA)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval writes -1 where no ground truth exists (e.g. no small objects): report 0.
    return {key: max(0.0, float(v)) for key, v in zip(keys, ev.stats, strict=True)}


def _num_keypoints(coco_gt: Any) -> int:
    for cat in coco_gt.dataset.get("categories", []):
        if isinstance(cat.get("keypoints"), list):
            return len(cat["keypoints"])
    anns = coco_gt.dataset.get("annotations", [])
    return len(anns[0]["keypoints"]) // 3 if anns else 17


def _kpt_box(kpts: Sequence[float]) -> list[float]:
    arr = np.asarray(kpts, dtype=np.float64).reshape(-1, 3)
    x0, y0 = arr[:, :2].min(axis=0)
    x1, y1 = arr[:, :2].max(axis=0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def to_coco_results(
    predictions: Sequence[dict[str, torch.Tensor]],
    targets: Sequence[dict[str, torch.Tensor]],
    label_to_cat: dict[int, int],
) -> list[dict[str, Any]]:
    """Per-image predictions in letterboxed pixels -> COCO results in original pixels.

    ``predictions[i]`` has ``boxes`` [D, 4] xyxy, ``scores`` [D], ``labels`` [D] and, for pose,
    ``keypoints`` [D, K, 3]; ``targets[i]`` has ``image_id``, ``scale``, ``pad`` and
    ``orig_size`` (as made by `evaluators.data.CocoDataset`).
    """
    out: list[dict[str, Any]] = []
    for pred, tgt in zip(predictions, targets, strict=True):
        if not len(pred["scores"]):
            continue
        image_id = int(tgt["image_id"])
        scale = float(tgt["scale"])
        px, py = (float(v) for v in tgt["pad"])
        h, w = (int(v) for v in tgt["orig_size"])
        boxes = pred["boxes"].detach().double().cpu()
        boxes[:, 0::2] = ((boxes[:, 0::2] - px) / scale).clamp(0, w)
        boxes[:, 1::2] = ((boxes[:, 1::2] - py) / scale).clamp(0, h)
        wh = boxes[:, 2:] - boxes[:, :2]
        scores = pred["scores"].detach().double().cpu().tolist()
        labels = pred["labels"].detach().cpu().tolist()
        kpts = pred.get("keypoints")
        if kpts is not None:
            kpts = kpts.detach().double().cpu().clone()
            kpts[..., 0] = (kpts[..., 0] - px) / scale
            kpts[..., 1] = (kpts[..., 1] - py) / scale
        for d in range(len(scores)):
            category = label_to_cat.get(int(labels[d]))
            if category is None:  # a class the data set does not have: nothing to score
                continue
            rec: dict[str, Any] = {
                "image_id": image_id,
                "category_id": int(category),
                "bbox": [
                    round(float(boxes[d, 0]), 3),
                    round(float(boxes[d, 1]), 3),
                    round(float(wh[d, 0]), 3),
                    round(float(wh[d, 1]), 3),
                ],
                "score": round(float(scores[d]), 5),
            }
            if kpts is not None:
                rec["keypoints"] = [round(float(v), 3) for v in kpts[d].reshape(-1).tolist()]
            out.append(rec)
    return out


__all__ = ["DEFAULT_SIGMA", "IOU_TYPES", "evaluate", "to_coco_results"]
