"""Detections on image files from a checkpoint or an exported ONNX model, drawn and as COCO
results.

`Predictor` letterboxes each image (`models.letterbox`), runs the fused PyTorch model (EMA
weights of an ``opennac-ckpt/1`` checkpoint) or the ONNX model in ONNX Runtime, keeps the
detections above a score and maps them back to the original image. `draw` paints boxes with
their class and score and, for pose, the keypoints joined by the skeleton (COCO's for 17
keypoints). `coco_results` turns them into COCO results records.

Example:
    >>> from evaluators.predict import Predictor, draw                  # doctest: +SKIP
    >>> predictor = Predictor.load("weights/trial_0004.pt", score=0.25)  # doctest: +SKIP
    >>> dets = predictor.predict(load_image("street.jpg"))              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.letterbox import PAD_VALUES, letterbox_image, to_batch, to_original

# COCO person keypoint skeleton (1-based keypoint indices, as in COCO's categories).
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
KEYPOINT_VISIBLE = 0.5  # draw keypoints whose visibility score reaches this
_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60))  # fmt: skip


class Predictor:
    """Runs a checkpoint (PyTorch, fused) or an ONNX model on single RGB images."""

    def __init__(self, run: Any, task: str, size: tuple[int, int], pad_value: int,
                 score: float, kind: str, num_keypoints: int) -> None:  # fmt: skip
        self._run = run
        self.task = task
        self.size = size
        self.pad_value = pad_value
        self.score = score
        self.kind = kind  # "checkpoint" or "onnx"
        self.num_keypoints = num_keypoints

    @classmethod
    def load(
        cls, weights: str | Path, score: float = 0.25, image_size: int | None = None,
        num_threads: int | None = 1,
    ) -> Predictor:  # fmt: skip
        """A checkpoint (``.pt``; its training image size unless ``image_size``) or an ONNX
        model (``.onnx``; its exported size)."""
        path = Path(weights)
        if path.suffix.lower() == ".onnx":
            from evaluators.onnx_eval import OnnxModel

            onnx_model = OnnxModel(path, num_threads)
            if image_size is not None and (image_size, image_size) != onnx_model.size:
                raise ValueError(f"{path}: exported at {onnx_model.size[0]}x"
                                 f"{onnx_model.size[1]}; image size {image_size} not possible")
            k = int(onnx_model.meta.get("opennac.num_keypoints", 0))
            return cls(onnx_model.predict, onnx_model.task, onnx_model.size,
                       onnx_model.pad_value, score, "onnx", k)  # fmt: skip
        return cls._from_checkpoint(path, score, image_size, num_threads)

    @classmethod
    def _from_checkpoint(cls, path: Path, score: float, image_size: int | None,
                         num_threads: int | None) -> Predictor:  # fmt: skip
        from evaluators.checkpoint import model_from_checkpoint
        from models.build import fuse
        from models.postprocess import postprocess

        model, doc = model_from_checkpoint(path, use_ema=True)
        fused = fuse(model).float().cpu()
        size = int(image_size or (doc.get("fidelity") or {}).get("image_size") or 640)
        if size % 32:
            raise ValueError(f"image_size: expected a multiple of 32, got {size}")
        threshold = min(score, 0.01)  # filtered by `predict`; low enough for any --score

        @torch.no_grad()
        def run(images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
            if num_threads:
                torch.set_num_threads(num_threads)
            x = torch.from_numpy(to_batch(images)).float() / 255.0  # as in training
            dets = postprocess(fused(x), score_threshold=threshold)
            return [{k: v.numpy() for k, v in d.items()} for d in dets]

        k = model.num_keypoints if model.task == "pose" else 0
        return cls(run, model.task, (size, size), PAD_VALUES[model.task], score, "checkpoint",
                   k)  # fmt: skip

    def predict(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Detections with a score >= ``score`` in the original image's pixels: ``boxes``
        [D, 4] xyxy, ``scores`` [D], ``labels`` [D] (+ ``keypoints`` [D, K, 3])."""
        boxed, lb = letterbox_image(image, self.size, self.pad_value)
        det = self._run([boxed])[0]
        keep = np.asarray(det["scores"]) >= self.score
        det = {k: np.asarray(v)[keep] for k, v in det.items()}
        return {k: np.asarray(v) for k, v in to_original(det, lb).items()}


def coco_results(
    image_id: int, det: dict[str, np.ndarray], label_to_cat: dict[int, int] | None = None
) -> list[dict[str, Any]]:
    """COCO results records of one image's detections (original pixels); category id =
    ``label_to_cat[label]``, or ``label + 1`` without a mapping."""
    out = []
    for d in range(len(det["scores"])):
        x0, y0, x1, y1 = (float(v) for v in det["boxes"][d])
        label = int(det["labels"][d])
        rec: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": int(label_to_cat[label]) if label_to_cat else label + 1,
            "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
            "score": round(float(det["scores"][d]), 5),
        }
        if "keypoints" in det:
            rec["keypoints"] = [round(float(v), 3) for v in det["keypoints"][d].reshape(-1)]
        out.append(rec)
    return out


def draw(
    image: np.ndarray,
    det: dict[str, np.ndarray],
    names: Sequence[str] | None = None,
    skeleton: Sequence[tuple[int, int]] | None = None,
    min_side: int = 0,
) -> Any:
    """A PIL image: ``image`` with the boxes (class name and score) and, for pose, the
    keypoints above `KEYPOINT_VISIBLE` joined by ``skeleton`` (1-based pairs; default COCO's
    when there are 17 keypoints). An image whose longest side is below ``min_side`` is drawn
    enlarged to it (legible labels on small images)."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    zoom = max(1.0, min_side / max(pil.size)) if min_side else 1.0
    if zoom > 1.0:
        pil = pil.resize((round(pil.width * zoom), round(pil.height * zoom)),
                         Image.Resampling.BILINEAR)  # fmt: skip
        det = dict(det, boxes=np.asarray(det["boxes"]) * zoom)
        if "keypoints" in det:
            det["keypoints"] = np.asarray(det["keypoints"]) * np.array([zoom, zoom, 1.0])
    canvas = ImageDraw.Draw(pil)
    width = max(1, round(max(pil.size) / 400))
    for d in range(len(det["scores"])):
        label = int(det["labels"][d])
        colour = _COLOURS[label % len(_COLOURS)]
        box = [float(v) for v in det["boxes"][d]]
        canvas.rectangle(box, outline=colour, width=width)
        name = names[label] if names and label < len(names) else f"class {label}"
        text = f"{name} {float(det['scores'][d]):.2f}"
        x = max(0.0, min(box[0] + 2, pil.width - canvas.textlength(text) - 1))  # stay inside
        canvas.text((x, max(0.0, box[1] - 11)), text, fill=colour)
        if "keypoints" not in det:
            continue
        kpts = np.asarray(det["keypoints"][d])
        pairs = skeleton if skeleton is not None else (COCO_SKELETON if len(kpts) == 17 else ())
        shown = kpts[:, 2] >= KEYPOINT_VISIBLE
        for a, b in pairs:
            if a - 1 < len(kpts) and b - 1 < len(kpts) and shown[a - 1] and shown[b - 1]:
                canvas.line([tuple(kpts[a - 1, :2]), tuple(kpts[b - 1, :2])], fill=colour,
                            width=width)  # fmt: skip
        r = width + 1
        for x, y, _ in kpts[shown]:
            canvas.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255), outline=colour)
    return pil


__all__ = ["COCO_SKELETON", "KEYPOINT_VISIBLE", "Predictor", "coco_results", "draw"]
