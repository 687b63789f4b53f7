"""Letterbox and training augmentations for images with boxes and keypoints.

All geometry is one 3x3 matrix from source-image pixels to output pixels (letterbox, random
affine, horizontal flip and 90-degree rotation compose into it), applied to the image with a
single PIL affine warp and to boxes and keypoints exactly. Pixel coordinates are continuous:
pixel ``i`` covers ``[i, i + 1)``, as in COCO boxes and PIL's warps.

Every random choice comes from a ``numpy.random.Generator`` passed in, so a sample is a pure
function of (image, annotations, seed, epoch, index).

Example:
    >>> import numpy as np
    >>> from evaluators.transforms import Sample, letterbox
    >>> s = Sample(np.zeros((60, 100, 3), np.uint8), np.array([[10, 10, 30, 40]], np.float32),
    ...            np.array([0]))
    >>> out, lb = letterbox(s, 64, pad_value=114)
    >>> out.image.shape, lb.scale, lb.pad
    ((64, 64, 3), 0.64, (0.0, 12.8))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

# COCO horizontal-flip pairs: index i takes the keypoint of COCO_FLIP_PAIRS[i] after a flip.
COCO_FLIP_PAIRS = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

PAD_VALUES = {"detection": 114, "pose": 127}


@dataclass
class Sample:
    """One image with its objects, in the image's pixel coordinates.

    ``image`` HxWx3 uint8 RGB; ``boxes`` [N, 4] xyxy float32; ``labels`` [N] int64 (contiguous
    class indices); ``keypoints`` [N, K, 3] (x, y, visibility 0/1/2) or None; ``areas`` [N]
    (COCO ``area``, scaled with the image; used by the OKS loss); ``crowd_boxes`` [C, 4] xyxy
    (crowd regions: not training targets, carried through every geometry).

    After `augment`: ``parts`` says where the output came from (one `Part` per source image:
    the primary one, mosaic's four, MixUp's extra one) and ``sources`` [N] which part each
    object belongs to; `to_source` maps an object back into its source image.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray | None = None
    areas: np.ndarray | None = None
    crowd_boxes: np.ndarray | None = None
    sources: np.ndarray | None = None
    parts: tuple[Part, ...] = ()

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        crowd = np.zeros((0, 4)) if self.crowd_boxes is None else self.crowd_boxes
        self.crowd_boxes = np.asarray(crowd, dtype=np.float32).reshape(-1, 4)
        src = np.zeros(len(self.boxes)) if self.sources is None else self.sources
        self.sources = np.asarray(src, dtype=np.int64).reshape(-1)
        if self.areas is None:
            wh = self.boxes[:, 2:] - self.boxes[:, :2]
            self.areas = (wh[:, 0] * wh[:, 1]).astype(np.float32)
        self.areas = np.asarray(self.areas, dtype=np.float32).reshape(-1)
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, dtype=np.float32)
            self.keypoints = kp if kp.ndim == 3 else kp.reshape(len(self.boxes), -1, 3)


@dataclass(frozen=True)
class Part:
    """One source image of an augmented sample: ``matrix`` maps its pixels to the output's;
    ``flip_pairs``: the re-indexing of its keypoints by a horizontal flip (None: not flipped);
    ``index``: its position in the ``samples`` given to `augment` (-1: MixUp's extra image)."""

    index: int
    matrix: np.ndarray
    flip_pairs: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Letterbox:
    """How an image was letterboxed: ``output = input * scale + pad``."""

    scale: float
    pad: tuple[float, float]  # (x, y) offset of the image inside the square canvas
    size: int

    def to_original_boxes(self, boxes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """xyxy boxes in letterboxed pixels -> original image pixels."""
        out = boxes.clone() if isinstance(boxes, torch.Tensor) else np.array(boxes, copy=True)
        out[..., 0::2] = (out[..., 0::2] - self.pad[0]) / self.scale
        out[..., 1::2] = (out[..., 1::2] - self.pad[1]) / self.scale
        return out

    def to_original_points(self, pts: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """[..., >=2] points (x, y, ...) in letterboxed pixels -> original image pixels."""
        out = pts.clone() if isinstance(pts, torch.Tensor) else np.array(pts, copy=True)
        out[..., 0] = (out[..., 0] - self.pad[0]) / self.scale
        out[..., 1] = (out[..., 1] - self.pad[1]) / self.scale
        return out


def letterbox_params(width: int, height: int, size: int) -> Letterbox:
    """Scale the longest side to ``size`` and centre the image on a ``size`` square."""
    scale = size / max(width, height)
    pad_x = (size - width * scale) / 2.0
    pad_y = (size - height * scale) / 2.0
    return Letterbox(scale=scale, pad=(pad_x, pad_y), size=size)


def letterbox(sample: Sample, size: int, pad_value: int) -> tuple[Sample, Letterbox]:
    """Letterbox an image and its annotations to a ``size`` x ``size`` square."""
    h, w = sample.image.shape[:2]
    lb = letterbox_params(w, h, size)
    m = _translate(*lb.pad) @ _scale(lb.scale)
    return _apply(sample, m, size, pad_value, drop=False), lb


@dataclass(frozen=True)
class Augment:
    """Training augmentations, each switchable. Magnitudes follow short-run recipes."""

    affine: bool = True
    scale: float = 0.25  # zoom factor drawn from [1 - scale, 1 + scale]
    translate: float = 0.1  # shift up to this fraction of the output size
    degrees: float = 5.0  # rotation drawn from [-degrees, degrees]
    flip: bool = True  # horizontal flip with probability 0.5 (keypoints swap left/right)
    hsv: bool = True
    hsv_gains: tuple[float, float, float] = (0.015, 0.5, 0.3)  # hue, saturation, value
    mosaic: bool = False  # 2x2 mosaic of four images
    mosaic_prob: float = 1.0
    mosaic_center: tuple[float, float] = (0.5, 1.5)  # centre range, x the output size
    rot90: bool = False  # rotate by a random multiple of 90 degrees (k in 0..3)
    rot90_prob: float = 1.0
    mixup: bool = False  # blend 50/50 with another (letterboxed, rescaled) image
    mixup_prob: float = 1.0
    mixup_scale: tuple[float, float] = (0.5, 1.5)  # the extra image's zoom range
    min_visible: float = 0.25  # drop boxes keeping less than this fraction of their area
    flip_pairs: tuple[int, ...] = field(default=COCO_FLIP_PAIRS)


def augment(
    samples: list[Sample],
    size: int,
    pad_value: int,
    aug: Augment,
    rng: np.random.Generator,
    mix: Sample | Callable[[], Sample] | None = None,
) -> Sample:
    """One training sample from ``samples[0]`` (and ``samples[1:4]`` for mosaic; ``mix`` is
    MixUp's extra image, or a function that loads it when MixUp happens)."""
    use_mosaic = aug.mosaic and len(samples) >= 4 and rng.random() < aug.mosaic_prob
    # Geometry shared by every part: random affine about the output centre, flip, rot90.
    post = np.eye(3)
    if aug.affine:
        s = rng.uniform(1 - aug.scale, 1 + aug.scale)
        a = math.radians(rng.uniform(-aug.degrees, aug.degrees))
        tx, ty = rng.uniform(-aug.translate, aug.translate, 2) * size
        c = size / 2.0
        post = _translate(c + tx, c + ty) @ _rotate(a) @ _scale(s) @ _translate(-c, -c)
    flipped = bool(aug.flip and rng.random() < 0.5)
    if flipped:
        post = _hflip(size) @ post
    if aug.rot90 and (aug.rot90_prob >= 1 or rng.random() < aug.rot90_prob):
        k = int(rng.integers(0, 4))
        post = _rot90(k, size) @ post  # a rotation: left and right keep their sides

    if use_mosaic:
        out = _mosaic(samples[:4], size, pad_value, post, aug, rng)
    else:
        src = samples[0]
        h, w = src.image.shape[:2]
        lb = letterbox_params(w, h, size)
        m = post @ _translate(*lb.pad) @ _scale(lb.scale)
        out = _apply(src, m, size, pad_value, drop=True, min_visible=aug.min_visible)
        out.parts = (Part(0, m),)
    if flipped:
        out.parts = tuple(dataclasses.replace(p, flip_pairs=aug.flip_pairs) for p in out.parts)
        if out.keypoints is not None and len(out.keypoints):
            pairs = _pairs(aug.flip_pairs, out.keypoints.shape[1])
            out.keypoints = out.keypoints[:, list(pairs)]
    if aug.hsv:
        out.image = hsv_jitter(out.image, aug.hsv_gains, rng)
    if aug.mixup and mix is not None and rng.random() < aug.mixup_prob:
        out = _mixup(out, mix() if callable(mix) else mix, size, pad_value, aug, rng)
    return out


def to_source(sample: Sample, part: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Boxes [n, 4] and keypoints [n, K, 3] (or None) of the objects of ``sample.parts[part]``,
    mapped back into that source image's pixels (flip re-indexing undone; a keypoint lost by
    the augmentation stays unlabelled). Exact for axis-aligned geometry (no free rotation)."""
    p = sample.parts[part]
    inv = np.linalg.inv(p.matrix)
    sel = sample.sources == part
    boxes, _ = _transform_boxes(sample.boxes[sel], inv, (-np.inf, -np.inf, np.inf, np.inf))
    if sample.keypoints is None:
        return boxes, None
    kpts = sample.keypoints[sel].copy()
    if p.flip_pairs is not None and len(kpts):
        # flip pairs are an involution: applying them again restores the source order
        kpts = kpts[:, list(p.flip_pairs)]
    lab = kpts[..., 2] > 0
    xy = _transform_points(kpts[..., :2].reshape(-1, 2), inv).reshape(kpts.shape[:-1] + (2,))
    kpts[..., :2] = np.where(lab[..., None], xy, 0.0)
    return boxes, kpts


def flip_pairs_from_names(names: list[str] | tuple[str, ...]) -> tuple[int, ...]:
    """Flip pairs from keypoint names: ``left_x`` <-> ``right_x``; other names map to themselves.

    >>> flip_pairs_from_names(["nose", "left_eye", "right_eye"])
    (0, 2, 1)
    """
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        if n.startswith("left_"):
            pairs.append(index.get("right_" + n[5:], i))
        elif n.startswith("right_"):
            pairs.append(index.get("left_" + n[6:], i))
        else:
            pairs.append(i)
    return tuple(pairs)


def hsv_jitter(
    image: np.ndarray, gains: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Random hue shift and saturation / brightness gains (torchvision functional ops)."""
    dh, ds, dv = (rng.uniform(-g, g) for g in gains)
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    t = TF.adjust_hue(t, float(dh))
    t = TF.adjust_saturation(t, float(1 + ds))
    t = TF.adjust_brightness(t, float(1 + dv))
    return t.permute(1, 2, 0).contiguous().numpy()


# -- geometry ----------------------------------------------------------------------------------
def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)


def _scale(s: float) -> np.ndarray:
    return np.array([[s, 0, 0], [0, s, 0], [0, 0, 1]], dtype=np.float64)


def _rotate(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def _hflip(size: int) -> np.ndarray:
    return np.array([[-1, 0, size], [0, 1, 0], [0, 0, 1]], dtype=np.float64)


def _rot90(k: int, size: int) -> np.ndarray:
    """Rotate a ``size`` square by k * 90 degrees (exact, about its centre)."""
    c = size / 2.0
    r = np.round(_rotate(k * math.pi / 2))
    return _translate(c, c) @ r @ _translate(-c, -c)


def _pairs(flip_pairs: tuple[int, ...], k: int) -> tuple[int, ...]:
    if len(flip_pairs) != k:
        raise ValueError(f"flip_pairs: {len(flip_pairs)} entries, but samples have {k} keypoints")
    return flip_pairs


def _warp(
    image: np.ndarray,
    m: np.ndarray,
    size: int,
    fill: int | tuple,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> Image.Image:
    inv = np.linalg.inv(m)
    pil = Image.fromarray(image)
    return pil.transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(inv[:2].reshape(-1)),
        resample=resample,
        fillcolor=fill,
    )


def _transform_points(pts: np.ndarray, m: np.ndarray) -> np.ndarray:
    return pts @ m[:2, :2].T + m[:2, 2]


def _transform_boxes(
    boxes: np.ndarray, m: np.ndarray, clip: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Box corners through ``m``, enclosing box, clipped; returns (boxes, kept area fraction)."""
    if not len(boxes):
        return boxes.reshape(0, 4), np.zeros(0, np.float32)
    x0, y0, x1, y1 = boxes.T
    corners = np.stack([x0, y0, x1, y0, x1, y1, x0, y1], axis=1).reshape(-1, 4, 2)
    t = _transform_points(corners.reshape(-1, 2), m).reshape(-1, 4, 2)
    full = np.concatenate([t.min(axis=1), t.max(axis=1)], axis=1)
    out = full.copy()
    out[:, 0::2] = out[:, 0::2].clip(clip[0], clip[2])
    out[:, 1::2] = out[:, 1::2].clip(clip[1], clip[3])
    area_full = np.prod(np.maximum(full[:, 2:] - full[:, :2], 0), axis=1)
    area_out = np.prod(np.maximum(out[:, 2:] - out[:, :2], 0), axis=1)
    frac = np.where(area_full > 0, area_out / np.maximum(area_full, 1e-9), 0.0)
    return out.astype(np.float32), frac.astype(np.float32)


def _apply(
    sample: Sample,
    m: np.ndarray,
    size: int,
    pad_value: int,
    drop: bool,
    min_visible: float = 0.25,
) -> Sample:
    """Warp one sample by ``m`` onto a ``size`` square. ``drop`` removes lost objects."""
    image = np.array(_warp(sample.image, m, size, (pad_value,) * 3))
    clip = (0.0, 0.0, float(size), float(size))
    boxes, frac = _transform_boxes(sample.boxes, m, clip)
    crowd, crowd_frac = _transform_boxes(sample.crowd_boxes, m, clip)
    det = abs(float(np.linalg.det(m[:2, :2])))
    areas = sample.areas * det
    kpts = None
    if sample.keypoints is not None:
        kpts = sample.keypoints.copy()
        if len(kpts):
            kpts[..., :2] = _transform_points(kpts[..., :2].reshape(-1, 2), m).reshape(
                kpts.shape[:-1] + (2,)
            )
            x, y = kpts[..., 0], kpts[..., 1]
            lost = (x < clip[0]) | (x >= clip[2]) | (y < clip[1]) | (y >= clip[3])
            kpts[lost | (sample.keypoints[..., 2] <= 0)] = 0.0
    keep = np.ones(len(boxes), dtype=bool)
    if drop and len(boxes):
        wh = boxes[:, 2:] - boxes[:, :2]
        keep = (wh[:, 0] > 2) & (wh[:, 1] > 2) & (frac >= min_visible)
        if kpts is not None:
            keep &= (kpts[..., 2] > 0).any(axis=1) | (sample.keypoints[..., 2] <= 0).all(axis=1)
    return Sample(
        image=image,
        boxes=boxes[keep],
        labels=sample.labels[keep],
        keypoints=None if kpts is None else kpts[keep],
        areas=areas[keep],
        crowd_boxes=crowd[crowd_frac > 0],
    )


def _mosaic(
    parts: list[Sample],
    size: int,
    pad_value: int,
    post: np.ndarray,
    aug: Augment,
    rng: np.random.Generator,
) -> Sample:
    """2x2 mosaic: four images around a random centre of a 2*size canvas, shrunk to size."""
    lo, hi = aug.mosaic_center
    xc, yc = rng.uniform(lo * size, hi * size, 2)
    # Canvas -> output: halve, then the shared random geometry.
    to_out = post @ _scale(0.5)
    out_img = np.full((size, size, 3), pad_value, dtype=np.uint8)
    pieces, placed = [], []
    for i, src in enumerate(parts):
        h, w = src.image.shape[:2]
        s = size / max(w, h)
        sw, sh = w * s, h * s
        # Quadrant i: top-left, top-right, bottom-left, bottom-right of the centre.
        x0 = xc - sw if i in (0, 2) else xc
        y0 = yc - sh if i in (0, 1) else yc
        place = _translate(x0, y0) @ _scale(s)
        m = to_out @ place
        warped = _apply(src, m, size, pad_value, drop=True, min_visible=aug.min_visible)
        # The part's footprint in the output (its placed rectangle through to_out).
        region = np.full((h, w), 255, dtype=np.uint8)
        mask = np.asarray(_warp(region, m, size, 0, Image.Resampling.NEAREST))
        out_img[mask > 0] = warped.image[mask > 0]
        warped.sources = np.full(len(warped.boxes), i, dtype=np.int64)
        pieces.append(warped)
        placed.append(Part(i, m))
    out = _concat(out_img, pieces)
    out.parts = tuple(placed)
    return out


def _mixup(
    out: Sample, mix: Sample, size: int, pad_value: int, aug: Augment, rng: np.random.Generator
) -> Sample:
    """Blend ``out`` 50/50 with ``mix``, letterboxed into the top-left corner, zoomed by a
    random factor in ``aug.mixup_scale``, randomly cropped back to ``size`` and flipped with
    p = 0.5 (the reference's detection MixUp); the objects of both are kept."""
    h, w = mix.image.shape[:2]
    jit = rng.uniform(*aug.mixup_scale)
    s = size / max(w, h) * jit
    span = max(0.0, jit * size - size)  # how far the zoomed canvas overhangs the output
    ox, oy = rng.uniform(0, span, 2) if span > 0 else (0.0, 0.0)
    m = _translate(-ox, -oy) @ _scale(s)
    flipped = bool(rng.random() < 0.5)
    if flipped:
        m = m @ _hflip(w)
    other = _apply(mix, m, size, pad_value, drop=True, min_visible=aug.min_visible)
    pairs = None
    if flipped and other.keypoints is not None:
        pairs = _pairs(aug.flip_pairs, other.keypoints.shape[1])
        other.keypoints = other.keypoints[:, list(pairs)]
    # Where the zoomed-out image does not reach, the blend partner is pad_value.
    image = ((out.image.astype(np.uint16) + other.image.astype(np.uint16)) // 2).astype(np.uint8)
    other.sources = np.full(len(other.boxes), len(out.parts), dtype=np.int64)
    mixed = _concat(image, [out, other])
    mixed.parts = (*out.parts, Part(-1, m, pairs))
    return mixed


def _concat(image: np.ndarray, pieces: list[Sample]) -> Sample:
    """One sample holding every object (and crowd region) of ``pieces`` on ``image``."""
    k = pieces[0].keypoints
    return Sample(
        image=image,
        boxes=np.concatenate([p.boxes for p in pieces]),
        labels=np.concatenate([p.labels for p in pieces]),
        keypoints=None if k is None else np.concatenate(
            [p.keypoints for p in pieces]).reshape(-1, k.shape[1], 3),  # fmt: skip
        areas=np.concatenate([p.areas for p in pieces]),
        crowd_boxes=np.concatenate([p.crowd_boxes for p in pieces]),
        sources=np.concatenate([p.sources for p in pieces]),
    )


def to_tensor(sample: Sample) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sample -> (uint8 image [3, H, W], target dict of tensors)."""
    image = torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1).contiguous()
    target = {
        "boxes": torch.from_numpy(sample.boxes.astype(np.float32)),
        "labels": torch.from_numpy(sample.labels.astype(np.int64)),
        "areas": torch.from_numpy(sample.areas.astype(np.float32)),
        "crowd_boxes": torch.from_numpy(sample.crowd_boxes.astype(np.float32)),
    }
    if sample.keypoints is not None:
        target["keypoints"] = torch.from_numpy(sample.keypoints.astype(np.float32))
    return image, target


__all__ = [
    "Augment",
    "COCO_FLIP_PAIRS",
    "Letterbox",
    "PAD_VALUES",
    "Part",
    "Sample",
    "augment",
    "flip_pairs_from_names",
    "hsv_jitter",
    "letterbox",
    "letterbox_params",
    "to_source",
    "to_tensor",
]
