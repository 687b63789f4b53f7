"""Letterbox and augmentations: boxes and keypoints stay on their objects; flip swaps sides."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.synth import COCO_KEYPOINT_NAMES
from evaluators.transforms import (
    COCO_FLIP_PAIRS,
    Augment,
    Sample,
    augment,
    flip_pairs_from_names,
    letterbox,
    letterbox_params,
)

RED, BLUE, GREEN, YELLOW = (230, 20, 20), (20, 20, 230), (20, 230, 20), (240, 240, 20)
GEOMETRY = Augment(affine=True, scale=0.3, translate=0.15, degrees=8.0, flip=True, hsv=False,
                   rot90=True, flip_pairs=(0,))


def _scene(w: int = 120, h: int = 80) -> Sample:
    """Two coloured rectangles (objects) with one keypoint each, marked by a small square."""
    img = np.full((h, w, 3), 128, np.uint8)
    boxes = np.array([[10, 10, 50, 45], [65, 30, 110, 75]], np.float32)
    for (x0, y0, x1, y1), c in zip(boxes.astype(int), (RED, BLUE), strict=True):
        img[y0:y1, x0:x1] = c
    kpts = np.zeros((2, 1, 3), np.float32)
    for i, (x, y, c) in enumerate(((30, 27, GREEN), (88, 52, YELLOW))):
        img[y - 3 : y + 3, x - 3 : x + 3] = c
        kpts[i, 0] = (x, y, 2)
    return Sample(img, boxes, np.array([0, 1]), keypoints=kpts)


def _colour_box(img: np.ndarray, colour: tuple) -> np.ndarray | None:
    mask = np.linalg.norm(img.astype(float) - colour, axis=2) < 60
    if mask.sum() < 4:
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


def test_letterbox_geometry() -> None:
    lb = letterbox_params(120, 80, 96)
    assert lb.scale == pytest.approx(0.8) and lb.pad == pytest.approx((0.0, 16.0))
    out, lb = letterbox(_scene(), 96, pad_value=114)
    assert out.image.shape == (96, 96, 3)
    assert (out.image[:15] == 114).all() and (out.image[-15:] == 114).all()  # padding rows
    np.testing.assert_allclose(out.boxes[0], [8, 24, 40, 52], atol=1e-4)
    np.testing.assert_allclose(lb.to_original_boxes(out.boxes), _scene().boxes, atol=1e-4)
    np.testing.assert_allclose(lb.to_original_points(out.keypoints[..., :2]),
                               _scene().keypoints[..., :2], atol=1e-4)
    assert out.areas[0] == pytest.approx(40 * 35 * 0.64)


@pytest.mark.parametrize("seed", range(8))
def test_boxes_and_keypoints_stay_on_objects(seed: int) -> None:
    out = augment([_scene()], 96, 114, GEOMETRY, np.random.default_rng(seed))
    assert len(out.boxes) == len(out.labels) == len(out.keypoints)
    for box, label, kp in zip(out.boxes, out.labels, out.keypoints, strict=True):
        colour = (RED, BLUE)[label]
        seen = _colour_box(out.image, colour)
        assert seen is not None
        assert _iou(seen, box) > 0.8, (seed, box, seen)  # the box encloses the object tightly
        if kp[0, 2] > 0:  # the keypoint still sits on its marker
            x, y = int(kp[0, 0]), int(kp[0, 1])
            pix = out.image[y, x].astype(float)
            assert np.linalg.norm(pix - (GREEN, YELLOW)[label]) < 80, (seed, kp, pix)


def test_same_rng_same_output_and_hsv_keeps_geometry() -> None:
    a = augment([_scene()], 96, 114, GEOMETRY, np.random.default_rng(1))
    b = augment([_scene()], 96, 114, GEOMETRY, np.random.default_rng(1))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    plain = augment([_scene()], 96, 114, Augment(affine=False, flip=False, hsv=False),
                    np.random.default_rng(2))
    hsv = augment([_scene()], 96, 114, Augment(affine=False, flip=False, hsv=True),
                  np.random.default_rng(2))
    assert np.array_equal(plain.boxes, hsv.boxes)
    assert not np.array_equal(plain.image, hsv.image)


def test_flip_swaps_left_and_right_keypoints() -> None:
    img = np.full((100, 100, 3), 128, np.uint8)
    img[10:20, 0:10] = RED  # a marker that tells whether the output is mirrored
    kpts = np.zeros((1, 17, 3), np.float32)
    kpts[0, :, :2] = 50.0
    kpts[0, :, 2] = 2
    kpts[0, 1] = (80, 30, 2)  # left eye on the image's right (person faces the camera)
    kpts[0, 2] = (40, 30, 1)  # right eye, labelled but occluded
    sample = Sample(img, np.array([[20, 20, 90, 90]], np.float32), np.array([0]), keypoints=kpts)
    aug = Augment(affine=False, flip=True, hsv=False)
    flipped = unflipped = 0
    for seed in range(12):
        out = augment([sample], 100, 127, aug, np.random.default_rng(seed))
        left, right = out.keypoints[0, 1], out.keypoints[0, 2]
        if out.image[15, 95, 0] > 200:  # marker now on the right: mirrored
            flipped += 1
            # The left-eye slot takes the mirrored right eye (and its visibility flag).
            np.testing.assert_allclose(left, (60, 30, 1))
            np.testing.assert_allclose(right, (20, 30, 2))
            np.testing.assert_allclose(out.boxes[0], (10, 20, 80, 90))
        else:
            unflipped += 1
            np.testing.assert_allclose(left, (80, 30, 2))
        assert left[0] > right[0]  # the person's left stays on the image's right
    assert flipped and unflipped
    assert COCO_FLIP_PAIRS[1] == 2 and COCO_FLIP_PAIRS[5] == 6 and COCO_FLIP_PAIRS[16] == 15
    assert flip_pairs_from_names(COCO_KEYPOINT_NAMES) == COCO_FLIP_PAIRS
    assert flip_pairs_from_names(["head", "left_hand", "right_hand"]) == (0, 2, 1)


def test_keypoints_leaving_the_image_become_unlabelled() -> None:
    sample = _scene()
    corner = np.array([[[12, 12, 2]], [[100, 70, 2]]], np.float32)  # near opposite corners
    sample.keypoints = np.concatenate([sample.keypoints, corner], axis=1)
    aug = Augment(affine=True, scale=0.0, translate=0.4, degrees=0.0, flip=False, hsv=False,
                  flip_pairs=(0, 1))
    lost = 0
    for seed in range(10):
        out = augment([sample], 96, 114, aug, np.random.default_rng(seed))
        kp = out.keypoints[..., :2]
        labelled = out.keypoints[..., 2] > 0
        assert ((kp >= 0) & (kp < 96)).all(axis=-1)[labelled].all()
        assert (out.keypoints[~labelled] == 0).all()
        lost += int((~labelled).sum())
        assert ((out.boxes >= 0) & (out.boxes <= 96)).all()
    assert lost > 0


def test_mosaic_combines_four_images() -> None:
    colours = (RED, BLUE, GREEN, YELLOW)
    parts = []
    for label, c in enumerate(colours):
        img = np.full((60, 60, 3), 128, np.uint8)
        img[10:50, 10:50] = c
        parts.append(Sample(img, np.array([[10, 10, 50, 50]], np.float32), np.array([label])))
    aug = Augment(affine=False, flip=False, hsv=False, mosaic=True)
    labels_seen: set[int] = set()
    for seed in range(4):
        out = augment(parts, 96, 114, aug, np.random.default_rng(seed))
        assert out.image.shape == (96, 96, 3)
        for box, label in zip(out.boxes, out.labels, strict=True):
            seen = _colour_box(out.image, colours[label])
            assert seen is not None and _iou(seen, box) > 0.8
        labels_seen |= set(out.labels.tolist())
    assert labels_seen == {0, 1, 2, 3}
