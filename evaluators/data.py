"""COCO-format data: the data YAML, datasets for detection and pose, subsets, collate.

A data YAML names the train and val image folders and annotation files, relative to itself::

    train_images: images/train
    train_annotations: annotations/instances_train.json
    val_images: images/val
    val_annotations: annotations/instances_val.json
    task: detection            # optional; checked against the model's task

Category ids are mapped to contiguous labels (sorted by id) and back. Crowd annotations are
left out of the training targets and kept in the ground truth that pycocotools scores against
(where COCO's evaluation ignores detections matched to them). Images without annotations are
kept. Boxes of zero width or height are dropped with one warning that gives their count.

Example:
    >>> import tempfile
    >>> from evaluators.synth import make_synthetic
    >>> from evaluators.data import CocoDataset, load_data_config
    >>> cfg = load_data_config(make_synthetic(tempfile.mkdtemp(), "detection", 8, 96), "detection")
    >>> ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", image_size=96)
    >>> image, target = ds[0]
    >>> tuple(image.shape), sorted(target)[:3]
    ((3, 96, 96), ['areas', 'boxes', 'image_id'])
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from evaluators.transforms import (
    PAD_VALUES,
    Augment,
    Sample,
    augment,
    flip_pairs_from_names,
    letterbox,
    letterbox_params,
    to_tensor,
)

DATA_KEYS = ("train_images", "train_annotations", "val_images", "val_annotations")
_OPTIONAL_KEYS = ("task",)


class DataError(ValueError):
    """Unusable data: the message names the file and the key."""


@dataclass(frozen=True)
class DataConfig:
    """Resolved, existing paths of a COCO-format data set."""

    train_images: Path
    train_annotations: Path
    val_images: Path
    val_annotations: Path
    task: str
    source: Path  # the data YAML


def load_data_config(dir_or_yaml: str | Path, task: str) -> DataConfig:
    """Read a data YAML (or the ``data.yaml`` in a directory) and check that its files exist."""
    path = Path(dir_or_yaml)
    if path.is_dir():
        path = path / "data.yaml"
    if not path.is_file():
        raise DataError(f"{path}: data file not found (expected a data YAML or a directory "
                        "holding data.yaml)")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a mapping with keys {', '.join(DATA_KEYS)}")
    unknown = sorted(set(doc) - set(DATA_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join(DATA_KEYS + _OPTIONAL_KEYS)
        raise DataError(f"{path}: unknown key {unknown[0]!r} (allowed: {allowed})")
    if task not in PAD_VALUES:
        raise DataError(f"task: expected 'detection' or 'pose', got {task!r}")
    if "task" in doc and doc["task"] != task:
        raise DataError(f"{path}: key 'task' is {doc['task']!r} but the model's task is {task!r}")
    resolved: dict[str, Path] = {}
    for key in DATA_KEYS:
        if key not in doc:
            raise DataError(f"{path}: missing key {key!r}")
        if not isinstance(doc[key], str) or not doc[key]:
            raise DataError(f"{path}: key {key!r}: expected a path, got {doc[key]!r}")
        p = Path(doc[key])
        p = p if p.is_absolute() else (path.parent / p)
        want_dir = key.endswith("_images")
        if want_dir and not p.is_dir():
            raise DataError(f"{path}: key {key!r}: image folder {p} not found")
        if not want_dir and not p.is_file():
            raise DataError(f"{path}: key {key!r}: annotation file {p} not found")
        resolved[key] = p.resolve()
    return DataConfig(**resolved, task=task, source=path.resolve())


def load_coco(path: str | Path) -> Any:
    """A pycocotools ``COCO`` index of an annotation file, checked and quiet."""
    from pycocotools.coco import COCO

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: not a COCO file (expected an object with 'images', "
                        "'annotations', 'categories')")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(f"{path}: not a COCO file: key {key!r} missing or not a list")
    for key, fields in (("images", ("id", "file_name")), ("categories", ("id",)),
                        ("annotations", ("id", "image_id", "category_id", "bbox"))):
        for i, item in enumerate(doc[key]):
            missing = [f for f in fields if not isinstance(item, dict) or f not in item]
            if missing:
                raise DataError(f"{path}: not a COCO file: {key}[{i}] has no {missing[0]!r}")
    coco = COCO()
    coco.dataset = doc
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def select_subset(ids: list[int], count: int | float | None, seed: int = 0) -> list[int]:
    """A deterministic subset of ``ids`` (sorted): ``count`` images, or a fraction in (0, 1].

    ``None`` keeps all. The same (ids, count, seed) always gives the same subset.
    """
    ids = sorted(ids)
    if count is None:
        return ids
    if isinstance(count, bool) or not isinstance(count, (int, float)) or count <= 0:
        raise ValueError(f"expected a positive image count or a fraction in (0, 1], got {count!r}")
    if isinstance(count, float) and count <= 1.0:
        n = max(1, int(round(count * len(ids))))
    else:
        n = int(count)
    if n >= len(ids):
        return ids
    order = np.random.default_rng(seed).permutation(len(ids))[:n]
    return sorted(ids[i] for i in order)


class CocoDataset(torch.utils.data.Dataset):
    """A COCO-format detection or pose data set, letterboxed to ``image_size``.

    Items are ``(image uint8 [3, S, S], target)``; ``target`` holds ``boxes`` [N, 4] xyxy in
    letterboxed pixels, ``labels`` [N] (contiguous), ``areas`` [N], pose: ``keypoints``
    [N, K, 3], and ``image_id``, ``scale``, ``pad`` [2] (output = original * scale + pad) for
    mapping predictions back to the original image. With ``train=True`` and an ``Augment``, the
    augmentations are applied, seeded by (``seed``, epoch, index); call ``set_epoch`` each epoch.
    """

    def __init__(
        self,
        images_dir: str | Path,
        annotations: str | Path,
        task: str,
        image_size: int,
        *,
        train: bool = False,
        aug: Augment | None = None,
        subset: int | float | None = None,
        subset_seed: int = 0,
        seed: int = 0,
        num_keypoints: int | None = None,
    ) -> None:
        if task not in PAD_VALUES:
            raise DataError(f"task: expected 'detection' or 'pose', got {task!r}")
        self.task = task
        self.images_dir = Path(images_dir)
        self.annotations = Path(annotations)
        self.image_size = int(image_size)
        self.train = train
        self.aug = aug if train else None
        self.seed = seed
        self.epoch = 0
        self.pad_value = PAD_VALUES[task]
        self.coco = load_coco(self.annotations)
        self._dropped = 0  # zero-area boxes left out by _record
        self._dropped_example: Any = None
        self._index_categories(num_keypoints)
        if self.aug is not None and self.task == "pose":
            # Flip pairs from the keypoint names (the COCO pairs for COCO's 17 keypoints).
            self.aug = replace(self.aug, flip_pairs=flip_pairs_from_names(self.keypoint_names))
        self.image_ids = select_subset(list(self.coco.imgs), subset, subset_seed)
        self._records = [self._record(i) for i in self.image_ids]
        self._warn_dropped()
        missing = [r["file"] for r in self._records if not r["file"].is_file()]
        if missing:
            raise DataError(
                f"{self.annotations}: {len(missing)} image file(s) not found under "
                f"{self.images_dir}, e.g. {missing[0].name}"
            )

    # -- indexing ------------------------------------------------------------------------------
    def _index_categories(self, num_keypoints: int | None) -> None:
        cats = self.coco.dataset["categories"]
        if self.task == "pose":
            with_kpts = [c for c in cats if isinstance(c.get("keypoints"), list)]
            if not with_kpts:
                raise DataError(
                    f"{self.annotations}: key 'categories': no category has 'keypoints' "
                    "(a pose data set needs person_keypoints annotations)"
                )
            cats = with_kpts[:1]
            k = len(cats[0]["keypoints"])
            if num_keypoints is not None and k != num_keypoints:
                raise DataError(
                    f"{self.annotations}: key 'categories[{cats[0]['id']}].keypoints' lists {k} "
                    f"keypoints but the model predicts {num_keypoints}"
                )
            self.num_keypoints = k
            self.keypoint_names = [str(n) for n in cats[0]["keypoints"]]
        else:
            self.num_keypoints = 0
            self.keypoint_names = []
        self.cat_ids = sorted(int(c["id"]) for c in cats)
        self.cat_to_label = {c: i for i, c in enumerate(self.cat_ids)}
        self.label_to_cat = dict(enumerate(self.cat_ids))
        self.num_classes = len(self.cat_ids)

    def _record(self, image_id: int) -> dict[str, Any]:
        info = self.coco.imgs[image_id]
        w, h = info.get("width"), info.get("height")
        boxes, labels, kpts, areas, crowd = [], [], [], [], []
        k = self.num_keypoints
        for ann in self.coco.imgToAnns.get(image_id, []):
            if ann["category_id"] not in self.cat_to_label:
                continue
            if ann.get("iscrowd", 0):  # not a target; its region travels with the image
                if isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
                    x, y, bw, bh = (float(v) for v in ann["bbox"])
                    crowd.append([x, y, x + bw, y + bh])
                continue
            bbox = ann["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise DataError(
                    f"{self.annotations}: annotations[id={ann['id']}].bbox: expected "
                    f"[x, y, width, height], got {bbox!r}"
                )
            x, y, bw, bh = (float(v) for v in bbox)
            if w and h:  # clip to the image, as COCO boxes may overhang by a pixel
                x0, y0 = max(0.0, x), max(0.0, y)
                x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
            else:
                x0, y0, x1, y1 = x, y, x + bw, y + bh
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                self._dropped += 1
                self._dropped_example = self._dropped_example or ann["id"]
                continue
            boxes.append([x0, y0, x1, y1])
            labels.append(self.cat_to_label[ann["category_id"]])
            areas.append(float(ann.get("area") or (x1 - x0) * (y1 - y0)))
            if self.task == "pose":
                kp = ann.get("keypoints") or [0] * (3 * k)
                if len(kp) != 3 * k:
                    raise DataError(
                        f"{self.annotations}: annotations[id={ann['id']}].keypoints: expected "
                        f"{3 * k} numbers ({k} keypoints x 3), got {len(kp)}"
                    )
                kpts.append(np.asarray(kp, dtype=np.float32).reshape(k, 3))
        return {
            "id": image_id,
            "file": self.images_dir / info["file_name"],
            "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            "labels": np.asarray(labels, dtype=np.int64),
            "areas": np.asarray(areas, dtype=np.float32),
            "crowd_boxes": np.asarray(crowd, dtype=np.float32).reshape(-1, 4),
            "keypoints": (
                np.stack(kpts).astype(np.float32) if kpts else np.zeros((0, k, 3), np.float32)
            )
            if self.task == "pose"
            else None,
        }

    def _warn_dropped(self) -> None:
        if self._dropped:
            warnings.warn(
                f"{self.annotations}: dropped {self._dropped} annotation(s) with a zero-area box "
                f"(width or height <= 0 inside the image), e.g. id {self._dropped_example}",
                stacklevel=3,
            )

    # -- items ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.image_ids)

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of epoch ``epoch`` (they differ per epoch, reproducibly)."""
        self.epoch = int(epoch)

    def load_sample(self, index: int) -> Sample:
        """The original image and annotations of item ``index`` (no letterbox)."""
        rec = self._records[index]
        with Image.open(rec["file"]) as im:
            image = np.array(im.convert("RGB"))
        kpts = rec["keypoints"]
        return Sample(
            image=image,
            boxes=rec["boxes"].copy(),
            labels=rec["labels"].copy(),
            keypoints=None if kpts is None else kpts.copy(),
            areas=rec["areas"].copy(),
            crowd_boxes=rec["crowd_boxes"].copy(),
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rec = self._records[index]
        sample = self.load_sample(index)
        h, w = sample.image.shape[:2]
        if self.aug is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            parts = [sample]
            if self.aug.mosaic and len(self) > 1:
                others = rng.integers(0, len(self), 3)
                parts += [self.load_sample(int(i)) for i in others]
            mix = None
            if self.aug.mixup and len(self) > 1:  # MixUp's partner, loaded only when used
                other = int(np.random.default_rng([self.seed, self.epoch, index, 1])
                            .integers(0, len(self)))  # fmt: skip
                mix = functools.partial(self.load_sample, other)
            out = augment(parts, self.image_size, self.pad_value, self.aug, rng, mix=mix)
            lb = letterbox_params(w, h, self.image_size)
        else:
            out, lb = letterbox(sample, self.image_size, self.pad_value)
        image, target = to_tensor(out)
        target["image_id"] = torch.tensor(rec["id"], dtype=torch.int64)
        target["scale"] = torch.tensor(lb.scale, dtype=torch.float64)
        target["pad"] = torch.tensor(lb.pad, dtype=torch.float64)
        target["orig_size"] = torch.tensor([h, w], dtype=torch.int64)
        return image, target


def collate(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Stack images into ``[B, 3, S, S]`` uint8; targets stay a list of per-image dicts."""
    images = torch.stack([b[0] for b in batch])
    return images, [b[1] for b in batch]


def make_loader(
    dataset: CocoDataset,
    batch: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    workers: int = 0,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader whose order is a pure function of (seed, epoch) when shuffled."""
    if shuffle:
        order = np.random.default_rng([seed, epoch, 7]).permutation(len(dataset)).tolist()
    else:
        order = list(range(len(dataset)))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=order,
        collate_fn=collate,
        num_workers=workers,
        drop_last=drop_last and len(dataset) >= batch,
        persistent_workers=False,
    )


__all__ = [
    "CocoDataset",
    "DATA_KEYS",
    "DataConfig",
    "DataError",
    "collate",
    "load_coco",
    "load_data_config",
    "make_loader",
    "select_subset",
]
