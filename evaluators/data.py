"""COCO-format data: the data YAML, datasets for detection and pose, subsets, collate.

A data YAML names the train and val image folders and annotation files, relative to itself::

    train_images: images/train
    train_annotations: annotations/instances_train.json
    val_images: images/val
    val_annotations: annotations/instances_val.json
    task: detection            # optional; checked against the model's task
    strict: false              # optional; true: a bad image or annotation is an error

Category ids are mapped to contiguous labels (sorted by id) and back. Crowd annotations are
left out of the training targets and kept in the ground truth that pycocotools scores against
(where COCO's evaluation ignores detections matched to them). Images without annotations are
kept. Bad items (`evaluators.data_check`: unknown image or category, zero-area box, keypoints of
the wrong length, non-numeric values, missing keys, duplicate ids, a missing image file) are
skipped with ONE `DataWarning` line per file that counts them and names their first ids
(lenient, the default), or are an error naming the file and the id (``strict: true``). An image
that does not decode is found when it is read: training uses the next image instead, evaluation
leaves it out of the scored images; each gives one warning line (lenient) or an error (strict).

Example:
    >>> import tempfile
    >>> from evaluators.synth import make_synthetic
    >>> from evaluators.data import CocoDataset, load_data_config
    >>> cfg = load_data_config(make_synthetic(tempfile.mkdtemp(), "detection", 8, 96), "detection")
    >>> ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", image_size=96)
    >>> image, target = ds[0]
    >>> tuple(image.shape), sorted(target)[:2]
    ((3, 96, 96), ['areas', 'boxes'])
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from evaluators.data_check import DataError, DataReport, DataWarning, check_coco, read_json
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
_OPTIONAL_KEYS = ("task", "strict")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass(frozen=True)
class DataConfig:
    """Resolved, existing paths of a COCO-format data set."""

    train_images: Path
    train_annotations: Path
    val_images: Path
    val_annotations: Path
    task: str
    source: Path  # the data YAML
    strict: bool = False  # bad images/annotations: error (True) or skipped with a warning


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
    strict = doc.get("strict", False)
    if not isinstance(strict, bool):
        raise DataError(f"{path}: key 'strict': expected true or false, got {strict!r}")
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
    return DataConfig(**resolved, task=task, source=path.resolve(), strict=strict)


def load_coco(path: str | Path, task: str | None = None, strict: bool = False) -> Any:
    """A pycocotools ``COCO`` index of an annotation file, checked and quiet; bad items are
    skipped with one `DataWarning` line (``strict``: a `DataError`), see `read_coco`."""
    coco, report = read_coco(path, task, strict)
    if report.skipped:
        warnings.warn(report.line(), DataWarning, stacklevel=2)
    return coco


def read_coco(
    path: str | Path, task: str | None = None, strict: bool = False,
) -> tuple[Any, DataReport]:
    """A pycocotools ``COCO`` index of the clean items of an annotation file and the report
    of what was left out (`evaluators.data_check.check_coco`); nothing is printed."""
    from pycocotools.coco import COCO

    path = Path(path)
    clean, report = check_coco(read_json(path), path, task, strict)
    coco = COCO()
    coco.dataset = clean
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco, report


# Parsed annotation files (and their subsets' records) of this process, by file version:
# building a data set again (the next trial on this worker, a seed repeat) reuses them.
_INDEX: dict[tuple[Any, ...], dict[Any, Any]] = {}
_INDEX_SIZE = 4  # files kept (a train and a val file of two data sets)


def _file_key(path: Path, task: str, strict: bool) -> tuple[Any, ...]:
    p = path.resolve()
    try:
        st = p.stat()
    except OSError:  # read_coco names the missing file
        return (str(p), None, None, task, strict)
    return (str(p), st.st_mtime_ns, st.st_size, task, strict)


def clear_index() -> None:
    """Forget the parsed annotation files of this process (tests, benchmarks)."""
    _INDEX.clear()


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
        strict: bool = False,
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
        self.strict = strict
        key = _file_key(self.annotations, task, strict)
        cached = _INDEX.get(key)
        if cached is None:
            cached = _INDEX[key] = {"coco": read_coco(self.annotations, task, strict)}
            while len(_INDEX) > _INDEX_SIZE:  # the oldest file goes first
                _INDEX.pop(next(iter(_INDEX)))
        self.coco, report = cached["coco"]
        self.report = copy.deepcopy(report)  # this data set's own counts from here on
        self.report.evaluation = not train
        self.corrupt_ids: set[int] = set()  # images that did not decode (this process)
        self._index_categories(num_keypoints)
        if self.aug is not None and self.task == "pose":
            # Flip pairs from the keypoint names (the COCO pairs for COCO's 17 keypoints).
            self.aug = replace(self.aug, flip_pairs=flip_pairs_from_names(self.keypoint_names))
        # The records of a subset (and which image files exist) are built once per process:
        # the trials of a sweep that a worker runs one after another share them.
        sub_key = (str(self.images_dir.resolve()), subset, subset_seed, self.num_keypoints)
        if sub_key not in cached:
            image_ids = select_subset(list(self.coco.imgs), subset, subset_seed)
            records = [self._record(i) for i in image_ids]
            missing = [r["id"] for r in records if not r["file"].is_file()]
            cached[sub_key] = (records, missing)
        records, missing = cached[sub_key]
        if missing:
            if strict:
                bad = next(r for r in records if r["id"] == missing[0])
                raise DataError(f"{self.annotations}: images[id={bad['id']}]: image file "
                                f"{bad['file']} not found")  # fmt: skip
            for image_id in missing:
                self.report.add("image_missing", image_id)
            gone = set(missing)
            records = [r for r in records if r["id"] not in gone]
        self._records = records  # shared, read-only (`load_sample` copies)
        self.image_ids = [r["id"] for r in self._records]
        if self.report.skipped:
            warnings.warn(self.report.line(), DataWarning, stacklevel=2)

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
        # Items were checked by read_coco: bbox is 4 finite numbers with area inside the image,
        # keypoints (when present) have 3 * k numbers.
        for ann in self.coco.imgToAnns.get(image_id, []):
            if ann["category_id"] not in self.cat_to_label:  # pose: a category without keypoints
                continue
            if ann.get("iscrowd", 0):  # not a target; its region travels with the image
                x, y, bw, bh = (float(v) for v in ann["bbox"])
                crowd.append([x, y, x + bw, y + bh])
                continue
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            if w and h:  # clip to the image, as COCO boxes may overhang by a pixel
                x0, y0 = max(0.0, x), max(0.0, y)
                x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
            else:
                x0, y0, x1, y1 = x, y, x + bw, y + bh
            boxes.append([x0, y0, x1, y1])
            labels.append(self.cat_to_label[ann["category_id"]])
            areas.append(float(ann.get("area") or (x1 - x0) * (y1 - y0)))
            if self.task == "pose":
                kp = ann.get("keypoints") or [0] * (3 * k)
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

    # -- items ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.image_ids)

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of epoch ``epoch`` (they differ per epoch, reproducibly)."""
        self.epoch = int(epoch)

    @property
    def scored_image_ids(self) -> list[int]:
        """The image ids an evaluation scores: all but those that did not decode."""
        return [i for i in self.image_ids if i not in self.corrupt_ids]

    def _decode(self, index: int) -> np.ndarray | None:
        """The RGB pixels of item ``index``; None (lenient) when the file does not decode."""
        rec = self._records[index]
        try:
            with Image.open(rec["file"]) as im:
                return np.array(im.convert("RGB"))
        except _DECODE_ERRORS as exc:
            if self.strict:
                raise DataError(f"{self.annotations}: images[id={rec['id']}]: {rec['file']} "
                                f"does not decode ({exc})") from None  # fmt: skip
            if rec["id"] not in self.corrupt_ids:
                self.corrupt_ids.add(rec["id"])
                what = ("left out of the scored images, so AP is not comparable with AP on the "
                        "full set" if not self.train else "the next image is used instead")
                warnings.warn(
                    f"{self.annotations}: skipped image id {rec['id']} ({rec['file']}): the "
                    f"file does not decode ({exc}); {what}; {len(self.corrupt_ids)} such "
                    "image(s) so far", DataWarning, stacklevel=3,
                )  # fmt: skip
            return None

    def load_sample(self, index: int) -> Sample:
        """The original image and annotations of item ``index`` (no letterbox).

        An image that does not decode (lenient mode): training gets the next image that does;
        evaluation gets a blank image without targets, and `scored_image_ids` leaves it out."""
        image = self._decode(index)
        if image is None and self.train:
            for step in range(1, len(self)):
                j = (index + step) % len(self)
                if self._records[j]["id"] not in self.corrupt_ids:
                    image = self._decode(j)
                    if image is not None:
                        index = j
                        break
            if image is None:
                raise DataError(f"{self.annotations}: no image under {self.images_dir} decodes")
        rec = self._records[index]
        if image is None:  # evaluation: a blank stand-in, never scored
            image = np.zeros((32, 32, 3), np.uint8)
            return Sample(image=image, boxes=np.zeros((0, 4), np.float32),
                          labels=np.zeros(0, np.int64),
                          keypoints=None if rec["keypoints"] is None
                          else np.zeros((0, self.num_keypoints, 3), np.float32),
                          areas=np.zeros(0, np.float32),
                          crowd_boxes=np.zeros((0, 4), np.float32))  # fmt: skip
        kpts = rec["keypoints"]
        return Sample(
            image=image,
            boxes=rec["boxes"].copy(),
            labels=rec["labels"].copy(),
            keypoints=None if kpts is None else kpts.copy(),
            areas=rec["areas"].copy(),
            crowd_boxes=rec["crowd_boxes"].copy(),
        )

    def __getitem__(
        self, index: int | tuple[int, int]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Item ``index`` augmented as in the current epoch (`set_epoch`), or ``(epoch,
        index)``: as in that epoch (what `EpochOrder` yields, so loader workers that live
        across epochs augment each epoch as a fresh loader would)."""
        epoch = self.epoch
        if isinstance(index, tuple):
            epoch, index = index
        rec = self._records[index]
        sample = self.load_sample(index)
        h, w = sample.image.shape[:2]
        if self.aug is not None:
            rng = np.random.default_rng([self.seed, epoch, index])
            parts = [sample]
            if self.aug.mosaic and len(self) > 1:
                others = rng.integers(0, len(self), 3)
                parts += [self.load_sample(int(i)) for i in others]
            mix = None
            if self.aug.mixup and len(self) > 1:  # MixUp's partner, loaded only when used
                other = int(np.random.default_rng([self.seed, epoch, index, 1])
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


class EpochOrder(torch.utils.data.Sampler):
    """The items of one epoch as ``(epoch, index)``, in an order that is a pure function of
    (seed, epoch) when shuffled; `set_epoch` moves it on (one loader for every epoch, so its
    worker processes stay up between epochs)."""

    def __init__(self, size: int, shuffle: bool, seed: int = 0, epoch: int = 0) -> None:
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.size)
        else:
            order = np.arange(self.size)
        return iter([(self.epoch, int(i)) for i in order])


def make_loader(
    dataset: CocoDataset,
    batch: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader whose order is a pure function of (seed, epoch) when shuffled, and whose
    samples do not depend on ``workers`` (augmentations are seeded per item). Its sampler is
    an `EpochOrder`: ``loader.sampler.set_epoch(e)`` reuses it (and its workers, which persist
    when ``workers`` > 0) for epoch ``e``. ``pin_memory``: page-locked batches (CUDA)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=EpochOrder(len(dataset), shuffle, seed, epoch),
        collate_fn=collate,
        num_workers=workers,
        drop_last=drop_last and len(dataset) >= batch,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )


__all__ = [
    "CocoDataset",
    "DATA_KEYS",
    "DataConfig",
    "DataError",
    "DataWarning",
    "EpochOrder",
    "clear_index",
    "collate",
    "load_coco",
    "read_coco",
    "load_data_config",
    "make_loader",
    "select_subset",
]
