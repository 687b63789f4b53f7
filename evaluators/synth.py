"""A small synthetic data set in COCO format: real JPEG files, COCO JSON and a ``data.yaml``.

Detection: four classes of filled shapes that differ in form and colour (disk, square,
triangle, cross) on textured backgrounds, one to three per image. Category ids are 1, 3, 5, 7
(not contiguous) so that the id mapping is exercised.

Pose: stick figures with the 17 COCO keypoints, one to three per image, seen from the front
(the person's left is on the image's right, as in COCO). With ``crowd=True``, two to six figures
per image of widely varied size (a quarter to nine tenths of the image height), placed freely:
nearer (larger) figures hide parts of farther ones, whose covered joints are labelled hidden
(visibility 1), and a figure mostly hidden is not labelled. A harder set, so that a short
training does not saturate and model capacity shows. Every figure is left/right symmetric in
appearance, so a horizontal flip with the keypoint flip pairs gives a figure that is labelled the
same way. Some joints are hidden behind an occluder (visibility 1), some ears are not labelled
(visibility 0, x = y = 0) and joints outside the image are not labelled.

Example:
    >>> import tempfile
    >>> from evaluators.synth import make_synthetic
    >>> path = make_synthetic(tempfile.mkdtemp(), "detection", images=8, image_size=96, seed=0)
    >>> path.name
    'data.yaml'
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SYNTH_FORMAT = "opennac-synth/1"

# Detection classes: (category id, name, RGB colour). Ids are deliberately not contiguous.
SHAPE_CLASSES = (
    (1, "disk", (225, 40, 40)),
    (3, "square", (40, 190, 60)),
    (5, "triangle", (45, 85, 230)),
    (7, "cross", (235, 205, 30)),
)

COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
# COCO skeleton (1-based keypoint indices, as in person_keypoints_*.json).
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip


def make_synthetic(
    out_dir: str | Path,
    task: str,
    images: int = 64,
    image_size: int = 128,
    seed: int = 0,
    val_fraction: float = 0.25,
    crowd: bool = False,
) -> Path:
    """Write a synthetic COCO-format data set and return the path of its ``data.yaml``.

    Layout: ``images/{train,val}/*.jpg``, ``annotations/instances_{train,val}.json``
    (detection) or ``annotations/person_keypoints_{train,val}.json`` (pose), ``data.yaml``.
    ``images`` is the total count; ``val_fraction`` of them (at least one) go to val. The
    longest side of every image is ``image_size``. The same arguments give the same files; if
    ``out_dir`` already holds a data set made with the same arguments it is reused as is.
    ``crowd``: a harder set, objects of widely varied size overlapping (pose: two to six
    figures; detection: two to six shapes whose colour no longer tells the class).
    """
    if task not in ("detection", "pose"):
        raise ValueError(f"task: expected 'detection' or 'pose', got {task!r}")
    if images < 2:
        raise ValueError(f"images: expected at least 2 (train and val), got {images}")
    if image_size < 32:
        raise ValueError(f"image_size: expected at least 32 pixels, got {image_size}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction}")
    out = Path(out_dir)
    params = {
        "format": SYNTH_FORMAT,
        "task": task,
        "images": images,
        "image_size": image_size,
        "seed": seed,
        "val_fraction": val_fraction,
    }
    if crowd:  # absent when off: sets made before the option existed are still reused
        params["crowd"] = True
    marker = out / "synth.json"
    yaml_path = out / "data.yaml"
    if marker.exists() and yaml_path.exists():
        try:
            if json.loads(marker.read_text()) == params:
                return yaml_path
        except json.JSONDecodeError:
            pass

    n_val = val_count(images, val_fraction)
    splits = {"train": images - n_val, "val": n_val}
    prefix = "instances" if task == "detection" else "person_keypoints"
    rng = np.random.default_rng(seed)
    ann_id = 1
    image_id = 1
    for split, count in splits.items():
        img_dir = out / "images" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        coco: dict[str, Any] = {
            "info": {"description": f"OpenNAC synthetic {task} data ({split})", "version": "1"},
            "licenses": [],
            "images": [],
            "annotations": [],
            "categories": _categories(task),
        }
        for _ in range(count):
            w, h = _image_shape(rng, image_size, task)
            if task == "detection":
                image, anns = (_draw_shape_crowd if crowd else _draw_detection)(rng, w, h)
            else:
                image, anns = (_draw_crowd if crowd else _draw_pose)(rng, w, h)
            file_name = f"{image_id:06d}.jpg"
            image.save(img_dir / file_name, quality=92)
            coco["images"].append(
                {"id": image_id, "file_name": file_name, "width": w, "height": h}
            )
            for ann in anns:
                ann.update({"id": ann_id, "image_id": image_id, "iscrowd": 0})
                coco["annotations"].append(ann)
                ann_id += 1
            image_id += 1
        ann_dir = out / "annotations"
        ann_dir.mkdir(parents=True, exist_ok=True)
        (ann_dir / f"{prefix}_{split}.json").write_text(json.dumps(coco))

    yaml_path.write_text(
        f"# Synthetic {task} data made by opennac (seed {seed}); paths relative to this file.\n"
        "task: " + task + "\n"
        "train_images: images/train\n"
        f"train_annotations: annotations/{prefix}_train.json\n"
        "val_images: images/val\n"
        f"val_annotations: annotations/{prefix}_val.json\n"
    )
    marker.write_text(json.dumps(params))
    return yaml_path


def val_count(images: int, val_fraction: float) -> int:
    """Images that `make_synthetic` puts in the val split: ``val_fraction`` of ``images``,
    at least one, leaving at least one for train.

    >>> val_count(64, 0.25), val_count(2, 0.25)
    (16, 1)
    """
    return min(images - 1, max(1, round(images * val_fraction)))


def _categories(task: str) -> list[dict[str, Any]]:
    if task == "detection":
        return [
            {"id": cid, "name": name, "supercategory": "shape"} for cid, name, _ in SHAPE_CLASSES
        ]
    return [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(COCO_KEYPOINT_NAMES),
            "skeleton": [list(p) for p in COCO_SKELETON],
        }
    ]


def _image_shape(rng: np.random.Generator, size: int, task: str) -> tuple[int, int]:
    """Longest side = size; the other side 70-100% of it (pose: mostly portrait)."""
    short = int(round(size * rng.uniform(0.7, 1.0)))
    portrait = rng.random() < (0.6 if task == "pose" else 0.4)
    return (short, size) if portrait else (size, short)


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Muted texture: a colour gradient, smooth blobs, fine noise and a few thin lines."""
    base = rng.uniform(70, 170, size=3)
    tilt = rng.uniform(-40, 40, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)[..., None]
    img = base[None, None, :] + tilt[None, None, :] * ramp
    # Low-frequency blobs: a coarse random grid upsampled bilinearly.
    coarse = rng.normal(0, 18, size=(4, 4, 3)).astype(np.float32)
    blobs = np.asarray(
        Image.fromarray(coarse[..., 0]).resize((w, h), Image.BILINEAR), dtype=np.float32
    )
    img = img + blobs[..., None]
    img = img + rng.normal(0, 9, size=(h, w, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = rng.uniform(0, w, 2)
        y0, y1 = rng.uniform(0, h, 2)
        colour = tuple(int(c) for c in np.clip(base + rng.normal(0, 30, 3), 0, 255))
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=1)
    return pil


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: float) -> tuple:
    return tuple(int(c) for c in np.clip(np.asarray(colour) + rng.normal(0, amount, 3), 0, 255))


def _mask_box(mask: Image.Image) -> tuple[list[float], float] | None:
    """Tight COCO box [x, y, w, h] and pixel area of a binary mask (None if empty)."""
    arr = np.asarray(mask) > 0
    if not arr.any():
        return None
    ys = np.flatnonzero(arr.any(axis=1))
    xs = np.flatnonzero(arr.any(axis=0))
    x0, x1, y0, y1 = int(xs[0]), int(xs[-1]) + 1, int(ys[0]), int(ys[-1]) + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], float(arr.sum())


def _shape_polygon(kind: str, cx: float, cy: float, r: float, rot: float) -> list:
    if kind == "square":
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        pts = [(x * 0.8, y * 0.8) for x, y in pts]
    elif kind == "triangle":
        pts = [(0, -1), (0.95, 0.75), (-0.95, 0.75)]
    else:  # cross: a plus sign
        a, b = 0.32, 1.0
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a),
               (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]  # fmt: skip
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in pts]


def _paint_shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str,
                 circle: tuple[float, float, float], fill: Any, size: tuple[int, int],
                 tilt: float) -> Image.Image:
    """Paint one shape (centre and radius ``circle``; polygons turned by up to +-``tilt``
    radians) on ``draw`` and return its own binary mask of the image's ``size``."""
    cx, cy, r = circle
    mask = Image.new("L", size, 0)
    mdraw = ImageDraw.Draw(mask)
    if kind == "disk":
        box = [cx - r, cy - r, cx + r, cy + r]
        draw.ellipse(box, fill=fill)
        mdraw.ellipse(box, fill=255)
    else:
        poly = _shape_polygon(kind, cx, cy, r, rng.uniform(-tilt, tilt))
        draw.polygon(poly, fill=fill)
        mdraw.polygon(poly, fill=255)
    return mask


def _draw_detection(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, list]:
    image = _background(rng, w, h)
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float]] = []  # (cx, cy, r) of shapes already drawn
    anns = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):
            r = rng.uniform(0.09, 0.2) * min(w, h)
            cx = rng.uniform(r, w - r)
            cy = rng.uniform(r, h - r)
            if all(math.hypot(cx - px, cy - py) > (r + pr) * 1.1 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        cid, kind, colour = SHAPE_CLASSES[int(rng.integers(0, len(SHAPE_CLASSES)))]
        fill = _jitter(rng, colour, 12)
        mask = _paint_shape(draw, rng, kind, (cx, cy, r), fill, (w, h), tilt=0.3)
        got = _mask_box(mask)
        if got is None:
            continue
        bbox, area = got
        anns.append({"category_id": cid, "bbox": bbox, "area": area, "segmentation": []})
    return image, anns


def _draw_shape_crowd(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, list]:
    """Two to six shapes of log-uniform size, overlapping, in random colours: the class is
    told by form alone; a shape with under 30% of its pixels in sight is not labelled."""
    image = _background(rng, w, h)
    draw = ImageDraw.Draw(image)
    n = int(rng.integers(2, 7))
    radii = np.sort(np.exp(rng.uniform(math.log(0.06), math.log(0.22), size=n)))[::-1]
    shapes: list[dict[str, Any]] = []
    for r in radii * min(w, h):  # large first: smaller shapes lie on top of larger ones
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        cid, kind, _ = SHAPE_CLASSES[int(rng.integers(0, len(SHAPE_CLASSES)))]
        fill = tuple(int(c) for c in rng.integers(20, 236, size=3))
        mask = _paint_shape(draw, rng, kind, (cx, cy, r), fill, (w, h), tilt=0.6)
        cover = np.asarray(mask) > 0
        for shape in shapes:
            shape["visible"] &= ~cover
        shapes.append({"cid": cid, "mask": mask, "visible": cover.copy(), "full": cover.sum()})
    anns = []
    for shape in shapes:
        got = _mask_box(shape["mask"])
        if got is None or shape["visible"].sum() < 0.3 * shape["full"]:
            continue
        bbox, area = got
        anns.append({"category_id": shape["cid"], "bbox": bbox, "area": area,
                     "segmentation": []})
    return image, anns


def _skeleton(rng: np.random.Generator, cx: float, top: float, height: float) -> np.ndarray:
    """17 joint positions [17, 2] of a standing figure facing the camera."""
    u = height
    sx = rng.uniform(0.85, 1.15)  # body width factor
    pts = np.zeros((17, 2), dtype=np.float64)
    head = np.array([0.0, 0.09 * u])
    pts[0] = head + [0.0, 0.012 * u]  # nose
    pts[1] = head + [0.028 * u, -0.012 * u]  # left eye (image right)
    pts[2] = head + [-0.028 * u, -0.012 * u]
    pts[3] = head + [0.06 * u, 0.0]  # left ear
    pts[4] = head + [-0.06 * u, 0.0]
    shoulder_y, hip_y = 0.22 * u, 0.55 * u
    pts[5] = [0.13 * u * sx, shoulder_y]
    pts[6] = [-0.13 * u * sx, shoulder_y]
    pts[11] = [0.08 * u * sx, hip_y]
    pts[12] = [-0.08 * u * sx, hip_y]
    upper, fore = 0.16 * u, 0.15 * u
    for side, (s, e, wr) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        a1 = math.radians(rng.uniform(-30, 100))  # 0 = arm down, 90 = arm out sideways
        a2 = a1 + math.radians(rng.uniform(-20, 70))
        pts[e] = pts[s] + [side * upper * math.sin(a1), upper * math.cos(a1)]
        pts[wr] = pts[e] + [side * fore * math.sin(a2), fore * math.cos(a2)]
    thigh, shin = 0.22 * u, 0.21 * u
    for side, (hp, k, an) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):
        a1 = math.radians(rng.uniform(-5, 30))
        a2 = a1 + math.radians(rng.uniform(-25, 5))
        pts[k] = pts[hp] + [side * thigh * math.sin(a1), thigh * math.cos(a1)]
        pts[an] = pts[k] + [side * shin * math.sin(a2), shin * math.cos(a2)]
    # A small lean of the whole figure around the hip centre.
    lean = math.radians(rng.uniform(-12, 12))
    c, s = math.cos(lean), math.sin(lean)
    centre = np.array([0.0, hip_y])
    d = pts - centre
    pts = centre + np.stack([d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c], axis=1)
    return pts + [cx, top]


_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16))


def _draw_figure(
    draw: ImageDraw.ImageDraw, pts: np.ndarray, u: float, colour: Any, joint: Any, dark: Any
) -> None:
    width = max(2, int(round(0.055 * u)))
    torso = [tuple(pts[i]) for i in (5, 6, 12, 11)]
    draw.polygon(torso, fill=colour)
    for a, b in _LIMBS:
        draw.line([tuple(pts[a]), tuple(pts[b])], fill=colour, width=width)
    neck_top = (pts[1] + pts[2]) / 2 + [0, 0.04 * u]
    neck_bottom = (pts[5] + pts[6]) / 2
    draw.line([tuple(neck_top), tuple(neck_bottom)], fill=colour, width=width)
    head = (pts[3] + pts[4]) / 2
    r = 0.065 * u
    draw.ellipse([head[0] - r, head[1] - r, head[0] + r, head[1] + r], fill=colour)
    jr = max(1.0, 0.022 * u)
    for i in range(5, 17):  # joint markers
        x, y = pts[i]
        draw.ellipse([x - jr, y - jr, x + jr, y + jr], fill=joint)
    er = max(1.0, 0.014 * u)
    for i in (0, 1, 2):  # eyes and nose
        x, y = pts[i]
        draw.ellipse([x - er, y - er, x + er, y + er], fill=dark)
    for i in (3, 4):  # ears
        x, y = pts[i]
        draw.ellipse([x - er * 1.3, y - er * 1.6, x + er * 1.3, y + er * 1.6], fill=joint)


def _draw_pose(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, list]:
    image = _background(rng, w, h)
    draw = ImageDraw.Draw(image)
    n = int(rng.integers(1, 4))
    slot_w = w / n
    anns = []
    for i in range(n):
        u = rng.uniform(0.5, 0.92) * h
        u = min(u, slot_w * 1.9)  # keep figures of a crowded image inside their slot
        cx = slot_w * (i + 0.5) + rng.uniform(-0.12, 0.12) * slot_w
        top = rng.uniform(-0.04 * u, max(-0.04 * u, h - 0.98 * u))
        pts = _skeleton(rng, cx, top, u)
        colour = _jitter(rng, (rng.integers(30, 226), rng.integers(30, 226), 200), 40)
        joint = (250, 250, 250) if sum(colour) < 380 else (15, 15, 15)
        _draw_figure(draw, pts, u, colour, joint, (20, 20, 20))
        mask = Image.new("L", (w, h), 0)
        _draw_figure(ImageDraw.Draw(mask), pts, u, 255, 255, 255)
        vis = np.full(17, 2, dtype=np.int64)
        # Occluder: a grey block over one wrist or ankle -> visibility 1 (labelled, hidden).
        if rng.random() < 0.35:
            j = int(rng.choice([9, 10, 15, 16]))
            s = 0.09 * u
            x, y = pts[j]
            shade = int(rng.integers(90, 170))
            draw.rectangle([x - s, y - s, x + s, y + s], fill=(shade, shade, shade))
            inside = (np.abs(pts[:, 0] - x) <= s) & (np.abs(pts[:, 1] - y) <= s)
            vis[inside] = 1
        if rng.random() < 0.3:  # unlabelled ears, as often in COCO
            vis[3:5] = 0
        outside = (pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)
        vis[outside] = 0
        got = _mask_box(mask)
        if got is None or (vis > 0).sum() == 0:
            continue
        bbox, area = got
        kpts = []
        for (x, y), v in zip(pts, vis, strict=True):
            kpts += [round(float(x), 2), round(float(y), 2), int(v)] if v else [0, 0, 0]
        anns.append(
            {
                "category_id": 1,
                "bbox": bbox,
                "area": area,
                "keypoints": kpts,
                "num_keypoints": int((vis > 0).sum()),
                "segmentation": [],
            }
        )
    return image, anns


def _draw_crowd(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, list]:
    """Two to six figures of log-uniform size placed freely, farther (smaller) ones first."""
    image = _background(rng, w, h)
    draw = ImageDraw.Draw(image)
    n = int(rng.integers(2, 7))
    sizes = np.sort(np.exp(rng.uniform(math.log(0.25), math.log(0.9), size=n))) * h
    figures: list[dict[str, Any]] = []
    for u in sizes:
        cx = rng.uniform(0.08, 0.92) * w
        top = rng.uniform(-0.04 * u, max(-0.04 * u, h - 0.98 * u))
        pts = _skeleton(rng, cx, top, float(u))
        colour = _jitter(rng, (rng.integers(30, 226), rng.integers(30, 226), 200), 40)
        joint = (250, 250, 250) if sum(colour) < 380 else (15, 15, 15)
        _draw_figure(draw, pts, float(u), colour, joint, (20, 20, 20))
        mask = Image.new("L", (w, h), 0)
        _draw_figure(ImageDraw.Draw(mask), pts, float(u), 255, 255, 255)
        cover = np.asarray(mask) > 0
        for fig in figures:  # this nearer figure hides parts of the ones drawn before it
            fig["visible"] &= ~cover
            xy = np.clip(np.round(fig["pts"]).astype(int), 0, [w - 1, h - 1])
            hidden = cover[xy[:, 1], xy[:, 0]] & (fig["vis"] == 2)
            fig["vis"][hidden] = 1
        vis = np.full(17, 2, dtype=np.int64)
        if rng.random() < 0.3:  # unlabelled ears, as often in COCO
            vis[3:5] = 0
        figures.append({"pts": pts, "vis": vis, "mask": mask, "visible": cover.copy()})
    anns = []
    for fig in figures:
        pts, vis = fig["pts"], fig["vis"]
        outside = (pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)
        vis[outside] = 0
        got = _mask_box(fig["mask"])
        full = float((np.asarray(fig["mask"]) > 0).sum())
        # Mostly hidden (under 30% of its pixels in sight) or no labelled joint: left out.
        if got is None or fig["visible"].sum() < 0.3 * full or (vis == 2).sum() == 0:
            continue
        bbox, area = got
        kpts = []
        for (x, y), v in zip(pts, vis, strict=True):
            kpts += [round(float(x), 2), round(float(y), 2), int(v)] if v else [0, 0, 0]
        anns.append({"category_id": 1, "bbox": bbox, "area": area, "keypoints": kpts,
                     "num_keypoints": int((vis > 0).sum()), "segmentation": []})  # fmt: skip
    return image, anns


__all__ = ["COCO_KEYPOINT_NAMES", "SHAPE_CLASSES", "make_synthetic", "val_count"]
