"""Letterbox for deployment: images in, network-sized RGB arrays out, detections mapped back.

An exported model (``opennac export``, `models.export_nms.export_deployable`) takes a batch of
letterboxed images: the longest side scaled to the input size, the image centred and the rest
padded with a grey value (114 for detection, 127 for pose, `PAD_VALUES`), RGB, ``[B, 3, H, W]``,
pixels 0-255. Its boxes and keypoints are in those letterboxed pixels; `to_original` maps them
back onto the original image. The geometry is exactly the one used for evaluation
(`evaluators.transforms.letterbox`): ``letterboxed = original * scale + pad``.

Example:
    >>> import numpy as np
    >>> image = np.zeros((60, 100, 3), np.uint8)          # H x W x 3 RGB
    >>> boxed, lb = letterbox_image(image, 64, pad_value=114)
    >>> boxed.shape, lb.scale, lb.pad
    ((64, 64, 3), 0.64, (0.0, 12.8))
    >>> batch = to_batch([boxed])                           # [1, 3, 64, 64] uint8
    >>> dets = {"boxes": np.array([[0.0, 12.8, 64.0, 51.2]]), "scores": np.array([0.9])}
    >>> to_original(dets, lb)["boxes"].round(3).tolist()
    [[0.0, 0.0, 100.0, 60.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Grey of the letterbox border per task (the training recipes' values).
PAD_VALUES = {"detection": 114, "pose": 127}


@dataclass(frozen=True)
class LetterboxInfo:
    """How one image was letterboxed: ``letterboxed = original * scale + pad``.

    ``pad`` is the (x, y) offset of the image inside the canvas, ``size`` the canvas (H, W) and
    ``orig_size`` the original image's (H, W).
    """

    scale: float
    pad: tuple[float, float]
    size: tuple[int, int]
    orig_size: tuple[int, int]


def letterbox_params(
    orig_size: tuple[int, int], size: int | tuple[int, int]
) -> LetterboxInfo:
    """The letterbox of an image of ``orig_size`` (H, W) onto a ``size`` canvas (int or H, W):
    the image scaled to fit, centred."""
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    h, w = int(orig_size[0]), int(orig_size[1])
    if h < 1 or w < 1:
        raise ValueError(f"orig_size: expected a positive (height, width), got {orig_size!r}")
    scale = min(out_w / w, out_h / h)
    return LetterboxInfo(
        scale=scale,
        pad=((out_w - w * scale) / 2.0, (out_h - h * scale) / 2.0),
        size=(out_h, out_w),
        orig_size=(h, w),
    )


def letterbox_image(
    image: Any, size: int | tuple[int, int], pad_value: int = PAD_VALUES["detection"]
) -> tuple[np.ndarray, LetterboxInfo]:
    """Letterbox one RGB image (``H x W x 3`` uint8 array or a PIL image) onto a ``size``
    canvas; returns the ``size`` x 3 uint8 array and its `LetterboxInfo`.

    Bilinear resampling through one affine warp, as in evaluation, so an exported model sees
    the pixels that `opennac eval` scored.
    """
    from PIL import Image

    pil = image if isinstance(image, Image.Image) else Image.fromarray(_rgb_array(image))
    pil = pil.convert("RGB")
    lb = letterbox_params((pil.height, pil.width), size)
    m = np.array([[lb.scale, 0.0, lb.pad[0]], [0.0, lb.scale, lb.pad[1]], [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(m)
    out = pil.transform(
        (lb.size[1], lb.size[0]),
        Image.Transform.AFFINE,
        data=tuple(inv[:2].reshape(-1)),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(int(pad_value),) * 3,
    )
    return np.asarray(out, dtype=np.uint8), lb


def load_image(path: str | Path) -> np.ndarray:
    """An image file as an ``H x W x 3`` uint8 RGB array."""
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def to_batch(images: Sequence[np.ndarray], dtype: str = "uint8") -> np.ndarray:
    """Letterboxed ``H x W x 3`` arrays -> the model input ``[B, 3, H, W]`` (RGB, pixels 0-255)
    as ``uint8`` or ``float32`` (``dtype``: ``"uint8"`` or ``"float"``)."""
    if dtype not in ("uint8", "float"):
        raise ValueError(f"dtype: expected 'uint8' or 'float', got {dtype!r}")
    batch = np.stack([np.asarray(i, dtype=np.uint8) for i in images]).transpose(0, 3, 1, 2)
    batch = np.ascontiguousarray(batch)
    return batch if dtype == "uint8" else batch.astype(np.float32)


def to_original(
    detections: dict[str, Any], info: LetterboxInfo, clip: bool = True
) -> dict[str, Any]:
    """One image's detections (``boxes`` [D, 4] xyxy, optional ``keypoints`` [D, K, 3], other
    keys copied) from letterboxed pixels to the original image's pixels; boxes are clipped to
    the image with ``clip``. Works on numpy arrays and torch tensors."""
    out = dict(detections)
    px, py = info.pad
    h, w = info.orig_size
    boxes = _copy(detections["boxes"])
    boxes[..., 0::2] = (boxes[..., 0::2] - px) / info.scale
    boxes[..., 1::2] = (boxes[..., 1::2] - py) / info.scale
    if clip:
        boxes[..., 0::2] = boxes[..., 0::2].clip(0, w)
        boxes[..., 1::2] = boxes[..., 1::2].clip(0, h)
    out["boxes"] = boxes
    if detections.get("keypoints") is not None:
        kpts = _copy(detections["keypoints"])
        kpts[..., 0] = (kpts[..., 0] - px) / info.scale
        kpts[..., 1] = (kpts[..., 1] - py) / info.scale
        out["keypoints"] = kpts
    return out


def _copy(values: Any) -> Any:
    if hasattr(values, "clone"):  # torch
        return values.detach().double().clone()
    return np.array(values, dtype=np.float64, copy=True)


def _rgb_array(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image: expected an H x W x 3 RGB array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 pixels 0-255, got {arr.dtype}")
    return arr


__all__ = [
    "LetterboxInfo",
    "PAD_VALUES",
    "letterbox_image",
    "letterbox_params",
    "load_image",
    "to_batch",
    "to_original",
]
