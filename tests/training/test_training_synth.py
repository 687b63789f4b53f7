"""Synthetic COCO-format data: files, COCO structure, keypoint flags, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluators.data import load_coco, load_data_config
from evaluators.synth import make_synthetic


def _ann(data_yaml: Path, prefix: str, split: str) -> dict:
    return json.loads((data_yaml.parent / f"annotations/{prefix}_{split}.json").read_text())


def test_detection_files_and_structure(det_data: Path) -> None:
    cfg = load_data_config(det_data, "detection")
    train = _ann(det_data, "instances", "train")
    val = _ann(det_data, "instances", "val")
    assert len(train["images"]) == 12 and len(val["images"]) == 4  # 25% val
    cat_ids = sorted(c["id"] for c in train["categories"])
    assert cat_ids == [1, 3, 5, 7]  # not contiguous on purpose
    used = {a["category_id"] for a in train["annotations"] + val["annotations"]}
    assert used <= set(cat_ids) and len(used) >= 3
    ids = [i["id"] for i in train["images"] + val["images"]]
    assert len(set(ids)) == len(ids)
    for img in train["images"]:
        path = cfg.train_images / img["file_name"]
        with Image.open(path) as im:  # real JPEGs of the declared size
            assert im.format == "JPEG"
            assert im.size == (img["width"], img["height"])
            assert max(im.size) == 64
    for a in train["annotations"]:
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and 0 < a["area"] <= w * h + 1e-6
        assert a["iscrowd"] == 0
    load_coco(cfg.train_annotations)  # pycocotools indexes it


def test_boxes_enclose_the_coloured_shapes(det_data: Path) -> None:
    """Pixels inside a box are mostly the class colour; a ring just outside is not."""
    from evaluators.synth import SHAPE_CLASSES

    colours = {cid: np.array(rgb) for cid, _, rgb in SHAPE_CLASSES}
    train = _ann(det_data, "instances", "train")
    files = {i["id"]: i["file_name"] for i in train["images"]}
    checked = 0
    for a in train["annotations"]:
        img = np.asarray(Image.open(det_data.parent / "images/train" / files[a["image_id"]]))
        x, y, w, h = (int(round(v)) for v in a["bbox"])
        inside = img[y : y + h, x : x + w].reshape(-1, 3).astype(float)
        near = np.linalg.norm(inside - colours[a["category_id"]], axis=1) < 60
        fill = a["area"] / (w * h)  # share of the box the shape covers
        assert near.mean() > 0.5 * fill, a
        # A 2-pixel ring around the box holds (almost) none of the colour: the box is tight.
        x0, y0 = max(0, x - 2), max(0, y - 2)
        ring = img[y0 : y + h + 2, x0 : x + w + 2].astype(float)
        ring_near = np.linalg.norm(ring - colours[a["category_id"]], axis=2) < 60
        ring_near[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = False
        assert ring_near.sum() <= 0.1 * near.sum() + 2, a
        checked += 1
    assert checked >= 10


def test_pose_keypoints(pose_data: Path) -> None:
    train = _ann(pose_data, "person_keypoints", "train")
    val = _ann(pose_data, "person_keypoints", "val")
    cat = train["categories"][0]
    assert len(cat["keypoints"]) == 17 and cat["name"] == "person"
    anns = train["annotations"] + val["annotations"]
    per_image: dict[int, int] = {}
    flags: set[int] = set()
    for a in anns:
        kp = np.asarray(a["keypoints"]).reshape(17, 3)
        flags |= set(kp[:, 2].astype(int).tolist())
        assert a["num_keypoints"] == int((kp[:, 2] > 0).sum())
        assert (kp[kp[:, 2] == 0, :2] == 0).all()  # unlabelled: x = y = 0
        x, y, w, h = a["bbox"]
        lab = kp[kp[:, 2] > 0]
        assert (lab[:, 0] >= x - 2).all() and (lab[:, 0] <= x + w + 2).all()
        assert a["area"] > 0 and a["iscrowd"] == 0
        # Facing the camera: the person's left shoulder is on the image's right.
        if kp[5, 2] and kp[6, 2]:
            assert kp[5, 0] > kp[6, 0]
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    assert flags == {0, 1, 2}  # unlabelled, occluded and visible joints all occur
    assert set(per_image.values()) <= {1, 2, 3} and max(per_image.values()) >= 2


def test_same_seed_same_files_other_seed_differs(tmp_path: Path) -> None:
    a = make_synthetic(tmp_path / "a", "pose", 6, 64, seed=3)
    b = make_synthetic(tmp_path / "b", "pose", 6, 64, seed=3)
    c = make_synthetic(tmp_path / "c", "pose", 6, 64, seed=4)
    ja = (a.parent / "annotations/person_keypoints_train.json").read_text()
    assert ja == (b.parent / "annotations/person_keypoints_train.json").read_text()
    assert ja != (c.parent / "annotations/person_keypoints_train.json").read_text()
    img = "images/train/000001.jpg"
    assert (a.parent / img).read_bytes() == (b.parent / img).read_bytes()
    # Same arguments again: the existing set is reused, not rewritten.
    mtime = (a.parent / img).stat().st_mtime_ns
    assert make_synthetic(tmp_path / "a", "pose", 6, 64, seed=3) == a
    assert (a.parent / img).stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "segmentation"}, "task"),
        ({"images": 1}, "images"),
        ({"image_size": 16}, "image_size"),
        ({"val_fraction": 1.5}, "val_fraction"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"task": "detection", "images": 4, "image_size": 64, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_synthetic(tmp_path, **args)


def test_crowd_overlapping_figures_of_varied_size(tmp_path: Path) -> None:
    """crowd=True: 2-6 figures per image, sizes from a quarter of the image up, joints hidden by
    a nearer figure labelled visibility 1; the default layout's files are untouched by it."""
    plain = make_synthetic(tmp_path / "plain", "pose", 24, 96, seed=0)
    crowd = make_synthetic(tmp_path / "crowd", "pose", 24, 96, seed=0, crowd=True)
    anns = [a for split in ("train", "val")
            for a in _ann(crowd, "person_keypoints", split)["annotations"]]
    images = {i["id"]: i for split in ("train", "val")
              for i in _ann(crowd, "person_keypoints", split)["images"]}
    per_image: dict[int, int] = {}
    heights = []
    for a in anns:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        heights.append(a["bbox"][3] / images[a["image_id"]]["height"])
        kp = np.asarray(a["keypoints"]).reshape(17, 3)
        assert a["num_keypoints"] == int((kp[:, 2] > 0).sum()) and (kp[:, 2] == 2).any()
    assert max(per_image.values()) >= 4 and set(per_image.values()) <= set(range(1, 7))
    assert min(heights) < 0.35 and max(heights) > 0.7  # small and large figures
    # Boxes of one image overlap (a crowd), which the plain layout's slots avoid.
    def overlaps(b1: list, b2: list) -> bool:
        return (min(b1[0] + b1[2], b2[0] + b2[2]) > max(b1[0], b2[0])
                and min(b1[1] + b1[3], b2[1] + b2[3]) > max(b1[1], b2[1]))
    boxes: dict[int, list] = {}
    for a in anns:
        boxes.setdefault(a["image_id"], []).append(a["bbox"])
    assert sum(overlaps(b[i], b[j]) for b in boxes.values()
               for i in range(len(b)) for j in range(i)) >= 5
    # The marker records the option; the plain set's marker has no crowd key (older sets reuse).
    assert json.loads((crowd.parent / "synth.json").read_text())["crowd"] is True
    assert "crowd" not in json.loads((plain.parent / "synth.json").read_text())
    assert (crowd.parent / "images/train/000001.jpg").read_bytes() != (
        plain.parent / "images/train/000001.jpg").read_bytes()


def test_crowd_shapes_overlap_and_colour_does_not_tell_the_class(tmp_path: Path) -> None:
    """Detection crowd: 2-6 shapes per image of varied size; the plain set's colours are fixed
    per class, the crowd's are not (the class must be told by form)."""
    data = make_synthetic(tmp_path / "d", "detection", 16, 96, seed=0, crowd=True)
    cfg = load_data_config(data, "detection")
    train = _ann(data, "instances", "train")
    per_image: dict[int, int] = {}
    colours: dict[int, set] = {}
    for a in train["annotations"]:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        image = next(i for i in train["images"] if i["id"] == a["image_id"])
        x, y, w, h = (int(round(v)) for v in a["bbox"])
        with Image.open(cfg.train_images / image["file_name"]) as im:
            px = np.asarray(im.convert("RGB"))[y + h // 2, x + w // 2]
        colours.setdefault(a["category_id"], set()).add(tuple(int(c) // 64 for c in px))
    assert max(per_image.values()) >= 4 and set(per_image.values()) <= set(range(1, 7))
    assert max(len(c) for c in colours.values()) >= 4  # one class, many colours
    sizes = [a["bbox"][2] for a in train["annotations"]]
    assert min(sizes) < 15 and max(sizes) > 30
