"""Checking a COCO-format annotation file item by item: strict (error) or lenient (skip, count).

Real COCO-format sets contain bad items: annotations that point at unknown images or
categories, boxes of zero size or outside the image, keypoint arrays of the wrong length,
non-numeric values, missing keys, duplicate ids, image files that are missing or do not decode.
`check_coco` walks a loaded document once and returns a clean copy plus a `DataReport`:

- strict mode raises `DataError` at the first bad item, naming the file and the item's id;
- lenient mode (the default for training and evaluation) leaves the bad items out and the
  report's `line()` says, in one line, how many of each kind were skipped and their first ids.

Whole-file problems (not JSON, ``images``/``annotations``/``categories`` missing, a category
without an id or two categories with one id) are always errors: nothing sensible can be skipped.

Example:
    >>> doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
    ...        "categories": [{"id": 1, "name": "x"}],
    ...        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5]},
    ...                        {"id": 8, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5]}]}
    >>> clean, report = check_coco(doc, "ann.json", task="detection", strict=False)
    >>> len(clean["annotations"]), report.skipped
    (0, 2)
    >>> print(report.line())  # doctest: +NORMALIZE_WHITESPACE
    ann.json: skipped 2 of 2 annotation(s): 1 with a zero-area box (width or height <= 0, or
    outside the image) (id 7); 1 on an unknown or skipped image (id 8)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Unusable data: the message names the file and the key (or the item's id)."""


class DataWarning(UserWarning):
    """Bad items skipped in lenient mode (one line per file: counts and first ids)."""


# kind -> (what was skipped, the phrase after "N "); the catalogue's vocabulary.
KINDS: dict[str, tuple[str, str]] = {
    "image_keys": ("image", "without an integer 'id' and a 'file_name'"),
    "image_dup": ("image", "with a duplicate id (the first kept)"),
    "image_size": ("image", "whose width/height are not positive numbers"),
    "image_missing": ("image", "whose file is missing"),
    "image_corrupt": ("image", "whose file does not decode"),
    "ann_keys": ("annotation", "missing 'id', 'image_id', 'category_id' or 'bbox'"),
    "ann_dup": ("annotation", "with a duplicate id (the first kept)"),
    "ann_image": ("annotation", "on an unknown or skipped image"),
    "ann_category": ("annotation", "with an unknown category_id"),
    "ann_bbox": ("annotation", "whose bbox is not 4 finite numbers"),
    "ann_degenerate": ("annotation", "with a zero-area box (width or height <= 0, or outside "
                                     "the image)"),
    "ann_keypoints": ("annotation", "whose keypoints are not 3 x K finite numbers"),
    "ann_area": ("annotation", "whose area or iscrowd is not a number"),
}
SHOW_IDS = 3  # first ids named per kind


@dataclass
class DataReport:
    """What `check_coco` (and the dataset) left out, by kind, with the items' ids."""

    source: str
    totals: dict[str, int] = field(default_factory=dict)  # "image"/"annotation" -> count read
    found: dict[str, list[Any]] = field(default_factory=dict)  # kind -> ids (or "#index")
    evaluation: bool = False  # a val set: skipping changes what AP is scored against

    def add(self, kind: str, item_id: Any) -> None:
        self.found.setdefault(kind, []).append(item_id)

    @property
    def skipped(self) -> int:
        return sum(len(v) for v in self.found.values())

    def count(self, kind: str) -> int:
        return len(self.found.get(kind, ()))

    def line(self) -> str:
        """One line: counts per kind and their first ids ("" when nothing was skipped)."""
        if not self.found:
            return ""
        parts, per_item = [], {"image": 0, "annotation": 0}
        for kind, ids in self.found.items():
            item, phrase = KINDS[kind]
            per_item[item] += len(ids)
            shown = ", ".join(str(i) for i in ids[:SHOW_IDS]) + (", ..." if len(ids) > SHOW_IDS
                                                                 else "")
            parts.append(f"{len(ids)} {phrase} ({'id' if len(ids) == 1 else 'ids'} {shown})")
        heads = [f"{n} of {self.totals.get(item, n)} {item}(s)"
                 for item, n in per_item.items() if n]  # fmt: skip
        text = f"{self.source}: skipped {' and '.join(heads)}: {'; '.join(parts)}"
        if self.evaluation:
            text += ("; AP is scored against what remains, so it is not comparable with AP on "
                     "the full set")
        return text


def _ident(item: Any, i: int) -> Any:
    """An item's id for messages: its 'id' when it has a usable one, else its list position."""
    if isinstance(item, dict) and _is_int(item.get("id")):
        return item["id"]
    return f"#{i}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Checker:
    def __init__(self, source: str, strict: bool, report: DataReport) -> None:
        self.source, self.strict, self.report = source, strict, report

    def bad(self, kind: str, where: str, item_id: Any, detail: str) -> None:
        if self.strict:
            raise DataError(f"{self.source}: {where}[id={item_id}]: {detail}")
        self.report.add(kind, item_id)


def read_json(path: Path) -> Any:
    """The parsed JSON of an annotation file; DataError (naming it) when missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected an annotation file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a JSON file ({exc})") from None


def check_split(
    images_dir: Path, annotations: Path, task: str | None, decode: bool = False,
) -> DataReport:
    """Every problem of one split (lenient, so all are counted): the items of the annotation
    file, image files that are missing, and with ``decode`` those that do not decode."""
    from PIL import Image

    clean, report = check_coco(read_json(annotations), annotations, task, strict=False)
    for img in clean["images"]:
        file = images_dir / img["file_name"]
        if not file.is_file():
            report.add("image_missing", img["id"])
        elif decode:
            try:
                with Image.open(file) as im:
                    im.convert("RGB")
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                report.add("image_corrupt", img["id"])
    return report


def check_coco(
    doc: Any, source: str | Path, task: str | None = None, strict: bool = False,
    num_keypoints: dict[int, int] | None = None,
) -> tuple[dict[str, Any], DataReport]:
    """A clean copy of a loaded COCO document and the report of what was left out.

    ``task`` ``"pose"`` checks keypoints against each category's keypoint count (or the counts
    in ``num_keypoints``, category id -> K). Missing ``area`` is set to the box's area and
    missing ``iscrowd`` to 0 (pycocotools' evaluation needs both). ``strict`` raises `DataError`
    at the first bad item instead of skipping it.
    """
    source = str(source)
    if not isinstance(doc, dict):
        raise DataError(f"{source}: not a COCO file (expected an object with 'images', "
                        "'annotations', 'categories')")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(f"{source}: not a COCO file: key {key!r} missing or not a list")
    report = DataReport(source, {"image": len(doc["images"]),
                                 "annotation": len(doc["annotations"])})  # fmt: skip
    c = _Checker(source, strict, report)
    cats = _categories(doc["categories"], source)
    kpt_counts = num_keypoints or {
        cid: len(cat["keypoints"]) for cid, cat in cats.items()
        if isinstance(cat.get("keypoints"), list)
    }  # fmt: skip
    images: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(doc["images"]):
        ident = _ident(img, i)
        if not isinstance(img, dict) or not _is_int(img.get("id")) or not isinstance(
            img.get("file_name"), str
        ):
            c.bad("image_keys", "images", ident, "expected an integer 'id' and a 'file_name'")
            continue
        if img["id"] in images:
            c.bad("image_dup", "images", ident, "duplicate image id")
            continue
        if any(k in img and not (_is_num(img[k]) and img[k] > 0) for k in ("width", "height")):
            c.bad("image_size", "images", ident,
                  f"width/height: expected positive numbers, got {img.get('width')!r} x "
                  f"{img.get('height')!r}")  # fmt: skip
            continue
        images[img["id"]] = img
    anns: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, ann in enumerate(doc["annotations"]):
        ident = _ident(ann, i)
        keys = ("id", "image_id", "category_id", "bbox")
        if not isinstance(ann, dict) or any(k not in ann for k in keys) or not _is_int(ann["id"]):
            missing = [k for k in keys if not isinstance(ann, dict) or k not in ann]
            c.bad("ann_keys", "annotations", ident,
                  f"missing required key {missing[0]!r}" if missing
                  else f"id: expected an integer, got {ann['id']!r}")  # fmt: skip
            continue
        if ann["id"] in seen:
            c.bad("ann_dup", "annotations", ident, "duplicate annotation id")
            continue
        seen.add(ann["id"])
        clean = _check_annotation(ann, ident, images, cats, kpt_counts, task, c)
        if clean is not None:
            anns.append(clean)
    out = dict(doc)
    out["images"] = list(images.values())
    out["annotations"] = anns
    out["categories"] = list(cats.values())
    return out, report


def _categories(items: list[Any], source: str) -> dict[int, dict[str, Any]]:
    cats: dict[int, dict[str, Any]] = {}
    for i, cat in enumerate(items):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")):
            raise DataError(f"{source}: categories[{i}]: expected an integer 'id', got "
                            f"{cat.get('id') if isinstance(cat, dict) else cat!r}")
        if cat["id"] in cats:
            raise DataError(f"{source}: categories[{i}]: duplicate category id {cat['id']}")
        cats[cat["id"]] = cat
    return cats


def _check_annotation(
    ann: dict[str, Any], ident: Any, images: dict[int, dict[str, Any]],
    cats: dict[int, dict[str, Any]], kpt_counts: dict[int, int], task: str | None, c: _Checker,
) -> dict[str, Any] | None:
    where = "annotations"
    if ann["image_id"] not in images:
        return c.bad("ann_image", where, ident,
                     f"image_id {ann['image_id']!r} is not an image of the file (or was skipped)")
    if ann["category_id"] not in cats:
        return c.bad("ann_category", where, ident,
                     f"category_id {ann['category_id']!r} is not in 'categories' "
                     f"({', '.join(str(k) for k in sorted(cats))})")  # fmt: skip
    bbox = ann["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_num(v) for v in bbox):
        return c.bad("ann_bbox", where, ident,
                     f"bbox: expected [x, y, width, height] (4 finite numbers), got {bbox!r}")
    for key in ("area", "iscrowd"):
        if key in ann and not _is_num(ann[key]):
            return c.bad("ann_area", where, ident, f"{key}: expected a number, got {ann[key]!r}")
    crowd = bool(ann.get("iscrowd", 0))
    if not crowd and _zero_area(bbox, images[ann["image_id"]]):
        return c.bad("ann_degenerate", where, ident,
                     f"bbox {bbox!r} has zero area inside the image (width or height <= 0, or "
                     "outside it)")  # fmt: skip
    k = kpt_counts.get(ann["category_id"])
    if task == "pose" and k is not None and not crowd and "keypoints" in ann:
        kp = ann["keypoints"]
        if not isinstance(kp, list) or len(kp) != 3 * k or not all(_is_num(v) for v in kp):
            got = f"{len(kp)} values" if isinstance(kp, list) else repr(kp)
            if isinstance(kp, list) and len(kp) == 3 * k:
                got = "non-numeric values"
            return c.bad("ann_keypoints", where, ident,
                         f"keypoints: expected {3 * k} numbers ({k} keypoints x 3), got {got}")
    out = dict(ann)
    out.setdefault("iscrowd", 0)
    out.setdefault("area", float(bbox[2] * bbox[3]))
    return out


def _zero_area(bbox: list[float], image: dict[str, Any]) -> bool:
    x, y, bw, bh = (float(v) for v in bbox)
    if bw <= 0 or bh <= 0:
        return True
    w, h = image.get("width"), image.get("height")
    if w and h:  # clipped to the image (COCO boxes may overhang by a pixel)
        return min(float(w), x + bw) - max(0.0, x) <= 0 or min(float(h), y + bh) - max(0.0, y) <= 0
    return False


__all__ = [
    "DataError", "DataReport", "DataWarning", "KINDS", "check_coco", "check_split", "read_json",
]
