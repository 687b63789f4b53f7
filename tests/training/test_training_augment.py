"""Must show: mosaic, 90-degree rotation, flip and MixUp keep every box and keypoint on its object.

The round trip: augment real synthetic COCO images (four per mosaic, plus a MixUp partner for
detection), map every augmented object back into its own source image with `to_source`, and
score those as detections with pycocotools against the original ground truth: box AP and
keypoint AP are 1.0 only if every object survived and every box and joint (left/right included)
went back exactly. Geometry that keeps objects whole is chosen for this (mosaic centre fixed at
the canvas centre, no free zoom or shift); the cropping cases are covered by
``test_training_transforms.py``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from evaluators.coco_eval import evaluate, to_coco_results
from evaluators.data import CocoDataset, load_data_config
from evaluators.synth import make_synthetic
from evaluators.transforms import Augment, Sample, augment, to_source

SIZE = 128
WHOLE = Augment(
    affine=False, flip=True, hsv=False, mosaic=True, mosaic_center=(1.0, 1.0), rot90=True,
    mixup_scale=(0.6, 1.0),
)  # fmt: skip


def _round_trip(
    ds: CocoDataset, aug: Augment, group: int, undo_flip: bool = True
) -> tuple[list[dict[str, Any]], list[int], int]:
    """COCO results of every augmented object mapped back; the image ids used; flips seen."""
    results: list[dict[str, Any]] = []
    used: list[int] = []
    flips = 0
    for start in range(0, len(ds) - group + 1, group):
        idx = list(range(start, start + group))
        parts = [ds.load_sample(i) for i in idx[:4]]
        mix = ds.load_sample(idx[4]) if group > 4 else None
        rng = np.random.default_rng([7, start])
        out = augment(parts, SIZE, ds.pad_value, aug, rng, mix=mix)
        assert len(out.parts) == (5 if mix is not None else 4)  # MixUp happened (p = 1)
        for j, part in enumerate(out.parts):
            src = idx[part.index] if part.index >= 0 else idx[4]
            boxes, kpts = to_source(out, j)
            if kpts is not None and part.flip_pairs is not None:
                flips += 1
                if not undo_flip:  # control: forget that the flip re-indexed the joints
                    kpts = kpts[:, list(part.flip_pairs)]
            h, w = ds.load_sample(src).image.shape[:2]
            pred = {"boxes": torch.from_numpy(boxes).float(),
                    "scores": torch.ones(len(boxes)),
                    "labels": torch.from_numpy(out.labels[out.sources == j])}  # fmt: skip
            if kpts is not None:
                pred["keypoints"] = torch.from_numpy(kpts).float()
            target = {"image_id": torch.tensor(ds.image_ids[src]), "scale": torch.tensor(1.0),
                      "pad": torch.zeros(2), "orig_size": torch.tensor([h, w])}  # fmt: skip
            results += to_coco_results([pred], [target], ds.label_to_cat)
        used += [ds.image_ids[i] for i in idx]
    return results, used, flips


def _dataset(root: Path, task: str) -> CocoDataset:
    data = load_data_config(make_synthetic(root, task, images=28, image_size=64, seed=3), task)
    return CocoDataset(data.train_images, data.train_annotations, task, SIZE)


def test_mosaic_rot90_flip_mixup_round_trip_detection(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, "detection")
    aug = dataclasses.replace(WHOLE, mixup=True)
    results, used, _ = _round_trip(ds, aug, group=5)
    assert len(used) >= 15
    assert evaluate(ds.coco, results, "bbox", used)["ap"] == pytest.approx(1.0, abs=1e-9)
    # Control: the objects as augmented (not mapped back) do not score.
    rng = np.random.default_rng(0)
    wrong = [dict(r, bbox=[v + float(rng.uniform(8, 16)) for v in r["bbox"]]) for r in results]
    assert evaluate(ds.coco, wrong, "bbox", used)["ap"] < 0.5


def test_mosaic_rot90_flip_round_trip_pose(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, "pose")
    results, used, flips = _round_trip(ds, WHOLE, group=4)
    assert len(used) >= 16 and flips > 0
    assert evaluate(ds.coco, results, "bbox", used)["ap"] == pytest.approx(1.0, abs=1e-9)
    assert evaluate(ds.coco, results, "keypoints", used)["ap"] == pytest.approx(1.0, abs=1e-9)
    # Control: a flip whose left/right re-indexing is not undone loses keypoint AP.
    swapped, _, _ = _round_trip(ds, WHOLE, group=4, undo_flip=False)
    assert evaluate(ds.coco, swapped, "keypoints", used)["ap"] < 0.9


def test_crowd_regions_travel_with_the_image(tmp_path: Path) -> None:
    """A crowd annotation is no target, and its region goes through mosaic and rot90."""
    yaml = make_synthetic(tmp_path, "detection", images=8, image_size=64, seed=1)
    data = load_data_config(yaml, "detection")
    doc = json.loads(Path(data.train_annotations).read_text())
    crowd = doc["annotations"][0]
    crowd["iscrowd"] = 1
    Path(data.train_annotations).write_text(json.dumps(doc))
    ds = CocoDataset(data.train_images, data.train_annotations, "detection", 64)
    index = ds.image_ids.index(crowd["image_id"])
    _, target = ds[index]
    x, y, w, h = crowd["bbox"]
    lb_scale = float(target["scale"])
    assert len(target["crowd_boxes"]) == 1
    np.testing.assert_allclose(
        target["crowd_boxes"][0].numpy(),
        np.array([x, y, x + w, y + h]) * lb_scale + np.tile(target["pad"].numpy(), 2),
        atol=1e-3,
    )
    n_objects = sum(1 for a in doc["annotations"] if a["image_id"] == crowd["image_id"])
    assert len(target["boxes"]) == n_objects - 1
    # Through mosaic + rot90 + flip: the crowd box maps back onto its source region.
    parts = [ds.load_sample((index + i) % len(ds)) for i in range(4)]
    for seed in range(4):
        out = augment(parts, 64, 114, WHOLE, np.random.default_rng(seed))
        assert len(out.crowd_boxes) == 1
        inv = np.linalg.inv(out.parts[0].matrix)
        corners = np.array([out.crowd_boxes[0][[0, 1]], out.crowd_boxes[0][[2, 3]]])
        back = corners @ inv[:2, :2].T + inv[:2, 2]
        got = np.concatenate([back.min(0), back.max(0)])
        np.testing.assert_allclose(got, [x, y, x + w, y + h], atol=1e-3)


def test_mixup_blends_and_keeps_both_sets_of_objects() -> None:
    a = Sample(np.full((64, 64, 3), 200, np.uint8), np.array([[8, 8, 40, 40]]), np.array([0]))
    b = Sample(np.full((32, 64, 3), 0, np.uint8), np.array([[0, 0, 32, 16]]), np.array([1]))
    aug = Augment(affine=False, flip=False, hsv=False, mixup=True, mixup_scale=(1.0, 1.0))
    out = augment([a], 64, 114, aug, np.random.default_rng(0), mix=b)
    assert out.labels.tolist() == [0, 1] and out.sources.tolist() == [0, 1]
    assert out.image[5, 5].tolist() == [100] * 3  # (200 + 0) / 2 where b lies
    assert out.image[50, 50].tolist() == [(200 + 114) // 2] * 3  # b's letterbox padding
    flipped = {tuple(augment([a], 64, 114, aug, np.random.default_rng(s), mix=b).boxes[1])
               for s in range(8)}  # fmt: skip
    assert flipped == {(0.0, 0.0, 32.0, 16.0), (32.0, 0.0, 64.0, 16.0)}  # MixUp's own flip
    off = augment([a], 64, 114, dataclasses.replace(aug, mixup_prob=0.0),
                  np.random.default_rng(0), mix=b)  # fmt: skip
    assert off.labels.tolist() == [0]


def _handedness(kpts: np.ndarray) -> np.ndarray:
    """Sign of the (left shoulder, right shoulder, left hip) triangle per person; 0 where a
    joint is unlabelled. Rotations keep it, a mirror flips it, the flip re-indexing restores
    it: a labelled skeleton keeps its handedness through every augmentation."""
    ls, rs, lh = kpts[:, 5], kpts[:, 6], kpts[:, 11]
    u, v = rs[:, :2] - ls[:, :2], lh[:, :2] - ls[:, :2]
    sign = np.sign(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])
    return np.where((ls[:, 2] > 0) & (rs[:, 2] > 0) & (lh[:, 2] > 0), sign, 0)


def test_flip_rot90_mosaic_mixup_keep_left_and_right(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, "pose")
    aug = dataclasses.replace(WHOLE, mixup=True, mosaic_prob=0.5, rot90_prob=0.5)
    checked = 0
    for start in range(0, len(ds) - 4, 5):
        idx = list(range(start, start + 5))
        parts = [ds.load_sample(i) for i in idx[:4]]
        for seed in range(4):
            rng = np.random.default_rng([seed, start])
            out = augment(parts, SIZE, 127, aug, rng, mix=ds.load_sample(idx[4]))
            for j, part in enumerate(out.parts):
                src = idx[part.index] if part.index >= 0 else idx[4]
                _, back = to_source(out, j)
                got = _handedness(out.keypoints[out.sources == j])
                # match each augmented person to its source person by the mapped-back joints
                source = ds.load_sample(src).keypoints
                for g, person in zip(got, back, strict=True):
                    lab = person[:, 2] > 0
                    d = np.abs(source[:, :, :2] - person[None, :, :2]).sum(-1)
                    k = int(np.argmin(np.where(lab[None], d, 0).sum(-1)))
                    want = _handedness(source[k : k + 1])[0]
                    if g != 0 and want != 0:
                        assert g == want, (start, seed, j)
                        checked += 1
    assert checked > 20


def test_dataset_mixup_adds_a_seeded_partner(tmp_path: Path) -> None:
    yaml = make_synthetic(tmp_path, "detection", images=12, image_size=64, seed=2)
    data = load_data_config(yaml, "detection")
    aug = Augment(affine=False, hsv=False, mixup=True, mixup_scale=(0.8, 1.0))
    ds = CocoDataset(data.train_images, data.train_annotations, "detection", 64, train=True,
                     aug=aug, seed=3)  # fmt: skip
    ds.set_epoch(1)
    grew = 0
    for i in range(len(ds)):
        _, t = ds[i]
        grew += len(t["boxes"]) > len(ds.load_sample(i).boxes)
        _, again = ds[i]
        assert torch.equal(t["boxes"], again["boxes"])  # the partner is seeded
    assert grew >= len(ds) // 2
