"""Data YAML, COCO datasets, subsets, and the letterbox round trip scored by pycocotools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from evaluators.coco_eval import evaluate, to_coco_results
from evaluators.data import (
    CocoDataset,
    DataError,
    collate,
    load_data_config,
    make_loader,
    select_subset,
)


def _copy(data_yaml: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(data_yaml.parent, dst)
    return dst / "data.yaml"


# -- data YAML ---------------------------------------------------------------------------------
def test_load_from_dir_or_yaml(det_data: Path) -> None:
    a = load_data_config(det_data.parent, "detection")
    b = load_data_config(det_data, "detection")
    assert a == b
    assert a.train_images.is_dir() and a.val_annotations.is_file()


def test_yaml_errors_name_file_and_key(det_data: Path, tmp_path: Path) -> None:
    yaml_path = _copy(det_data, tmp_path)
    with pytest.raises(DataError, match="data file not found"):
        load_data_config(tmp_path / "nowhere", "detection")
    text = yaml_path.read_text()
    yaml_path.write_text(text.replace("val_annotations: annotations/instances_val.json", ""))
    with pytest.raises(DataError, match=r"data\.yaml: missing key 'val_annotations'"):
        load_data_config(yaml_path, "detection")
    yaml_path.write_text(text + "extra: 1\n")
    with pytest.raises(DataError, match=r"unknown key 'extra'"):
        load_data_config(yaml_path, "detection")
    yaml_path.write_text(text.replace("instances_train.json", "missing.json"))
    with pytest.raises(DataError, match=r"key 'train_annotations'.*missing\.json not found"):
        load_data_config(yaml_path, "detection")
    yaml_path.write_text(text)
    with pytest.raises(DataError, match="'task' is 'detection' but the model's task is 'pose'"):
        load_data_config(yaml_path, "pose")


def test_not_coco_json(det_data: Path, tmp_path: Path) -> None:
    cfg = load_data_config(_copy(det_data, tmp_path), "detection")
    cfg.val_annotations.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match=r"_val\.json: not a COCO file: key 'annotations'"):
        CocoDataset(cfg.val_images, cfg.val_annotations, "detection", 64)
    cfg.val_annotations.write_text("{not json")
    with pytest.raises(DataError, match=r"instances_val\.json: not a JSON file"):
        CocoDataset(cfg.val_images, cfg.val_annotations, "detection", 64)


def test_keypoint_count_mismatch(pose_data: Path) -> None:
    cfg = load_data_config(pose_data, "pose")
    with pytest.raises(DataError, match=r"person_keypoints_val\.json: key 'categories\[1\]\."
                                        r"keypoints' lists 17 keypoints but the model predicts 5"):
        CocoDataset(cfg.val_images, cfg.val_annotations, "pose", 64, num_keypoints=5)


def test_zero_area_boxes_warn_and_are_dropped(det_data: Path, tmp_path: Path) -> None:
    cfg = load_data_config(_copy(det_data, tmp_path), "detection")
    doc = json.loads(cfg.val_annotations.read_text())
    n_before = len(doc["annotations"])
    doc["annotations"][0]["bbox"][2] = 0.0
    doc["annotations"][1]["bbox"][3] = -3.0
    cfg.val_annotations.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=r"instances_val\.json: skipped 2 of \d+ annotation\(s\)"
                                         r": 2 with a zero-area box"):
        ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", 64)
    assert sum(len(ds[i][1]["boxes"]) for i in range(len(ds))) == n_before - 2


def test_crowd_left_out_of_targets_and_empty_images_kept(det_data: Path, tmp_path: Path) -> None:
    cfg = load_data_config(_copy(det_data, tmp_path), "detection")
    doc = json.loads(cfg.val_annotations.read_text())
    first_image = doc["images"][0]["id"]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != first_image]
    doc["annotations"][0]["iscrowd"] = 1
    cfg.val_annotations.write_text(json.dumps(doc))
    ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", 64)
    assert len(ds) == len(doc["images"])  # the image without annotations is kept
    by_id = {int(ds[i][1]["image_id"]): ds[i][1] for i in range(len(ds))}
    assert len(by_id[first_image]["boxes"]) == 0
    total = sum(len(t["boxes"]) for t in by_id.values())
    assert total == len(doc["annotations"]) - 1  # the crowd annotation is not a target


def test_category_mapping_round_trip(det_data: Path) -> None:
    cfg = load_data_config(det_data, "detection")
    ds = CocoDataset(cfg.train_images, cfg.train_annotations, "detection", 64)
    assert ds.cat_ids == [1, 3, 5, 7] and ds.num_classes == 4
    assert ds.cat_to_label == {1: 0, 3: 1, 5: 2, 7: 3}
    assert all(ds.label_to_cat[ds.cat_to_label[c]] == c for c in ds.cat_ids)


def test_subsets_are_deterministic() -> None:
    ids = list(range(100, 200))
    a = select_subset(ids, 10, seed=0)
    assert a == select_subset(list(reversed(ids)), 10, seed=0) and len(a) == 10
    assert a == sorted(a) and set(a) <= set(ids)
    assert a != select_subset(ids, 10, seed=1)
    assert len(select_subset(ids, 0.25)) == 25
    assert select_subset(ids, None) == ids and select_subset(ids, 1000) == ids
    with pytest.raises(ValueError, match="positive"):
        select_subset(ids, 0)


def test_items_and_collate(pose_data: Path) -> None:
    cfg = load_data_config(pose_data, "pose")
    ds = CocoDataset(cfg.train_images, cfg.train_annotations, "pose", 64, subset=8)
    assert len(ds) == 8
    images, targets = collate([ds[0], ds[1], ds[2]])
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.uint8
    assert all(t["keypoints"].shape[1:] == (17, 3) for t in targets)

    def order(epoch: int) -> list[int]:
        loader = make_loader(ds, 3, shuffle=True, seed=0, epoch=epoch)
        return [int(t["image_id"]) for _, ts in loader for t in ts]

    order1, order2, order3 = order(1), order(1), order(2)
    assert order1 == order2 and sorted(order1) == sorted(ds.image_ids) and order1 != order3


def test_augmented_items_reproducible(det_data: Path) -> None:
    from evaluators.transforms import Augment

    cfg = load_data_config(det_data, "detection")
    ds = CocoDataset(cfg.train_images, cfg.train_annotations, "detection", 64, train=True,
                     aug=Augment(mosaic=True), seed=5)
    ds.set_epoch(1)
    a_img, a_t = ds[3]
    b_img, b_t = ds[3]
    ds.set_epoch(2)
    c_img, _ = ds[3]
    assert torch.equal(a_img, b_img) and torch.equal(a_t["boxes"], b_t["boxes"])
    assert not torch.equal(a_img, c_img)


# -- must show: ground truth -> letterbox -> back, scored as detections = AP 1.0 ---------------
@pytest.mark.parametrize("task", ["detection", "pose"])
def test_letterbox_round_trip_scores_ap_one(task: str, det_data: Path, pose_data: Path) -> None:
    data_yaml = det_data if task == "detection" else pose_data
    cfg = load_data_config(data_yaml, task)
    # 96 px: letterbox scales 64-px images up, non-square images get padded.
    ds = CocoDataset(cfg.val_images, cfg.val_annotations, task, 96)
    preds, targets = [], []
    for i in range(len(ds)):
        _, t = ds[i]
        pred = {"boxes": t["boxes"], "scores": torch.ones(len(t["boxes"])),
                "labels": t["labels"]}
        if task == "pose":
            pred["keypoints"] = t["keypoints"]
        preds.append(pred)
        targets.append(t)
    assert any(float(t["pad"].max()) > 0 for t in targets)  # padding happened
    results = to_coco_results(preds, targets, ds.label_to_cat)
    assert {r["category_id"] for r in results} <= {1, 3, 5, 7}
    assert evaluate(ds.coco, results, "bbox")["ap"] == pytest.approx(1.0, abs=1e-9)
    if task == "pose":
        assert evaluate(ds.coco, results, "keypoints")["ap"] == pytest.approx(1.0, abs=1e-9)
    # And the round trip is what makes it 1.0: skipping the inverse letterbox breaks it.
    for t in targets:
        t["scale"] = torch.tensor(1.0, dtype=torch.float64)
        t["pad"] = torch.zeros(2, dtype=torch.float64)
    wrong = to_coco_results(preds, targets, ds.label_to_cat)
    assert evaluate(ds.coco, wrong, "bbox")["ap"] < 0.5


def test_detections_of_classes_the_data_lacks_are_left_out(det_data: Path) -> None:
    """An 80-class model on the 4-category synthetic set: a detection labelled 23 (no category)
    is dropped from the results instead of failing the whole evaluation with a KeyError."""
    cfg = load_data_config(det_data, "detection")
    ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", 96)
    _, t = ds[0]
    n = len(t["boxes"])
    pred = {"boxes": torch.cat([t["boxes"], t["boxes"][:1]]),
            "scores": torch.ones(n + 1), "labels": torch.cat([t["labels"], torch.tensor([23])])}
    results = to_coco_results([pred], [t], ds.label_to_cat)
    assert len(results) == n and {r["category_id"] for r in results} <= {1, 3, 5, 7}
