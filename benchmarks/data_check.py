"""Cost of checking a COCO-format annotation file item by item (evaluators.data_check).

Builds an in-memory pose annotation document shaped like COCO person_keypoints_train2017
(``--images`` images, ``--per-image`` annotations each with 17 keypoints; 1 % of the
annotations broken in assorted ways), then times, ``--repeats`` times each: `check_coco`
(lenient), pycocotools' ``createIndex`` of the clean document (what loading did before), and
``json.loads`` of the file's text. Prints a table: median and min-max seconds, and the check's
share of a load (json + check + index).

    nice -n 10 .venv/bin/python benchmarks/data_check.py [--images 20000] [--per-image 5]
        [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the packages, not benchmarks/models.py, are `models`

from evaluators.data_check import check_coco  # noqa: E402


def make_doc(images: int, per_image: int) -> dict[str, Any]:
    names = [f"k{i}" for i in range(17)]
    doc: dict[str, Any] = {"images": [], "annotations": [],
                           "categories": [{"id": 1, "name": "person", "keypoints": names}]}
    aid = 0
    for i in range(images):
        doc["images"].append({"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480})
        for _ in range(per_image):
            aid += 1
            ann = {"id": aid, "image_id": i, "category_id": 1, "bbox": [10.0, 20.0, 50.0, 80.0],
                   "area": 4000.0, "iscrowd": 0, "keypoints": [30, 40, 2] * 17}
            if aid % 100 == 0:  # 1 % broken, four kinds in turn
                kind = (aid // 100) % 4
                if kind == 0:
                    ann["bbox"][2] = 0.0
                elif kind == 1:
                    ann["category_id"] = 99
                elif kind == 2:
                    ann["keypoints"] = ann["keypoints"][:-3]
                else:
                    ann["image_id"] = -1
            doc["annotations"].append(ann)
    return doc


def timed(fn: Any, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--per-image", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from pycocotools.coco import COCO

    doc = make_doc(args.images, args.per_image)
    text = json.dumps(doc)
    clean, report = check_coco(doc, "bench.json", "pose")

    def index() -> None:
        coco = COCO()
        coco.dataset = clean
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()

    rows = {
        "json.loads": timed(lambda: json.loads(text), args.repeats),
        "check_coco (lenient)": timed(lambda: check_coco(doc, "bench.json", "pose"),
                                      args.repeats),
        "pycocotools createIndex": timed(index, args.repeats),
    }
    n_ann = len(doc["annotations"])
    print(f"{args.images} images, {n_ann} annotations, {report.skipped} skipped; "
          f"{args.repeats} repeats")
    print(f"{'step':<26}{'median s':>10}{'min s':>9}{'max s':>9}{'us/ann':>9}")
    for name, ts in rows.items():
        med = statistics.median(ts)
        print(f"{name:<26}{med:>10.3f}{min(ts):>9.3f}{max(ts):>9.3f}{med / n_ann * 1e6:>9.2f}")
    total = sum(statistics.median(ts) for ts in rows.values())
    share = statistics.median(rows["check_coco (lenient)"]) / total
    print(f"check's share of a load (json + check + index): {share:.0%}")
    print(f"warning: {report.line()[:160]}...")


if __name__ == "__main__":
    main()
