"""COCO AP of an exported ONNX model, run in ONNX Runtime exactly as documented for users.

Each validation image is letterboxed with `models.letterbox` (the pixels `opennac eval` scores
a checkpoint on), fed as the graph's input type (uint8 or float pixels 0-255), and the
detections are mapped back to the original image and scored with pycocotools. A graph without
post-processing gets `models.postprocess` with the evaluation thresholds; a graph with NMS is
scored on its own detections (its score threshold, if above the evaluation's 0.01, lowers AP:
the result says so in ``note``).

Example:
    >>> from evaluators.onnx_eval import evaluate_onnx                    # doctest: +SKIP
    >>> evaluate_onnx("m.onnx", "data/synth_det")["ap"]                   # doctest: +SKIP
    0.2263
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluators.coco_eval import evaluate, to_coco_results
from evaluators.data import CocoDataset, DataConfig, load_data_config
from models.letterbox import PAD_VALUES, LetterboxInfo, letterbox_image, to_batch
from models.postprocess import EVAL_SCORE_THRESHOLD


class OnnxModel:
    """An exported model in ONNX Runtime (CPU) with what its file says about its input."""

    def __init__(self, path: str | Path, num_threads: int | None = 1) -> None:
        import onnxruntime as ort

        from models.export import read_metadata

        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{self.path}: ONNX file not found")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if num_threads:
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types
            raise ValueError(f"{self.path}: ONNX Runtime cannot load it ({exc})") from None
        self.meta = read_metadata(self.path)
        inp = self.session.get_inputs()[0]
        self.input_name, self.input_type = inp.name, inp.type
        shape = inp.shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape):
            raise ValueError(f"{self.path}: expected a fixed input [B, 3, H, W], got {shape}")
        self.batch, self.size = int(shape[0]), (int(shape[2]), int(shape[3]))
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.has_nms = "batch_index" in self.outputs
        self.task = self.meta.get("opennac.task") or (
            "pose" if "keypoints" in self.outputs else "detection"
        )
        if "opennac.input_range" not in self.meta:
            raise ValueError(
                f"{self.path}: no opennac.input_range metadata: not exported by this OpenNAC "
                "(older files took other pixels); export it again with `opennac export`"
            )
        self.pad_value = int(self.meta.get("opennac.pad_value", PAD_VALUES[self.task]))
        self.nms = self.meta.get("opennac.nms", "none")

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, LetterboxInfo]:
        """One RGB image -> its letterboxed ``H x W x 3`` uint8 pixels and geometry."""
        return letterbox_image(image, self.size, self.pad_value)

    def predict(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Detections (letterboxed pixels) of up to ``batch`` letterboxed images; a short batch
        is padded with copies of its last image, whose detections are dropped."""
        from models.export_nms import as_input_type

        n = len(images)
        if not 0 < n <= self.batch:
            raise ValueError(f"predict: expected 1 to {self.batch} images, got {n}")
        x = to_batch(list(images) + [images[-1]] * (self.batch - n))
        values = self.session.run(None, {self.input_name: as_input_type(x, self.input_type)})
        out = dict(zip(self.outputs, values, strict=True))
        if self.has_nms:
            dets = []
            for i in range(n):
                sel = out["batch_index"] == i
                dets.append({k: v[sel] for k, v in out.items() if k != "batch_index"})
            return dets
        from models.postprocess import postprocess

        raw = [torch.from_numpy(np.asarray(out[k], dtype=np.float32))
               for k in ("boxes", "scores", "keypoints") if k in out]  # fmt: skip
        dets = postprocess(raw, score_threshold=EVAL_SCORE_THRESHOLD)
        return [{k: v.numpy() for k, v in d.items()} for d in dets[:n]]

    def score_threshold(self) -> float | None:
        """The graph's NMS score threshold, from its metadata (None without NMS)."""
        if not self.has_nms:
            return None
        text = self.nms.split(",")[0]
        try:
            return float(text.split(">")[1])
        except (IndexError, ValueError):
            return None


def evaluate_onnx(
    path: str | Path,
    data: DataConfig | str | Path,
    val_images: int | float | None = None,
    num_threads: int | None = 1,
) -> dict[str, Any]:
    """COCO AP of the ONNX model ``path`` on the val split of ``data`` (see the module
    docstring). Returns ``ap``, ``ap50``, ``ap75`` (+ ``box_ap``, ``box_ap50`` for pose) with
    ``image_size``, ``val_images``, ``task``, ``nms``, ``wall_s`` and a ``note`` when the
    graph's score threshold is above the evaluation's."""
    model = OnnxModel(path, num_threads)
    data = data if isinstance(data, DataConfig) else load_data_config(data, model.task)
    ds = CocoDataset(
        data.val_images, data.val_annotations, model.task, max(model.size), subset=val_images,
        num_keypoints=int(model.meta.get("opennac.num_keypoints", 17)) if model.task == "pose"
        else None, strict=data.strict,
    )  # fmt: skip
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    for indices in _chunks(len(ds), model.batch):
        samples = [ds.load_sample(i) for i in indices]
        boxed = [model.letterbox(s.image) for s in samples]
        dets = model.predict([b for b, _ in boxed])
        targets = [_target(ds.image_ids[i], lb) for i, (_, lb) in zip(indices, boxed, strict=True)]
        preds = [{k: torch.from_numpy(np.asarray(v)) for k, v in d.items()} for d in dets]
        results += to_coco_results(preds, targets, ds.label_to_cat)
    if model.task == "detection":
        m = evaluate(ds.coco, results, "bbox", ds.scored_image_ids)
        metrics: dict[str, Any] = {"ap": m["ap"], "ap50": m["ap50"], "ap75": m["ap75"]}
    else:
        kp = evaluate(ds.coco, results, "keypoints", ds.scored_image_ids)
        box = evaluate(ds.coco, results, "bbox", ds.scored_image_ids)
        metrics = {"ap": kp["ap"], "ap50": kp["ap50"], "ap75": kp["ap75"],
                   "box_ap": box["ap"], "box_ap50": box["ap50"]}  # fmt: skip
    metrics.update({
        "image_size": model.size[0] if model.size[0] == model.size[1] else list(model.size),
        "val_images": len(ds), "task": model.task, "nms": model.nms,
        "input_type": model.input_type.replace("tensor(", "").rstrip(")"),
        "wall_s": time.perf_counter() - start,
    })  # fmt: skip
    threshold = model.score_threshold()
    if threshold is not None and threshold > EVAL_SCORE_THRESHOLD:
        metrics["note"] = (
            f"the graph keeps scores > {threshold}; COCO AP is computed at "
            f"{EVAL_SCORE_THRESHOLD} (export with --score {EVAL_SCORE_THRESHOLD} to compare "
            "with `opennac eval` of the checkpoint)"
        )
    return metrics


def calibration_images(
    source: str | Path,
    task: str,
    size: tuple[int, int],
    count: int = 64,
    seed: int = 0,
) -> tuple[np.ndarray, DataConfig | None]:
    """Letterboxed pixels ``[N, 3, H, W]`` uint8 for INT8 calibration, and the data set when
    ``source`` is one (its train images calibrate, its val images score).

    ``source``: a COCO-format data set (data YAML or a folder holding data.yaml) or a folder
    of images; ``count`` images at most, a fixed subset (``seed``).
    """
    from evaluators.data import DataError, select_subset
    from models.letterbox import load_image

    path = Path(source)
    data: DataConfig | None = None
    try:
        data = load_data_config(path, task)
    except (DataError, OSError):
        data = None
    if data is not None:
        files = sorted(p for p in Path(data.train_images).rglob("*") if _is_image(p))
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if _is_image(p))
    else:
        raise ValueError(f"{path}: neither a COCO-format data set nor a folder of images")
    if not files:
        raise ValueError(f"{path}: no images to calibrate with")
    chosen = select_subset(list(range(len(files))), count, seed) if count < len(files) else None
    picked = [files[i] for i in sorted(chosen)] if chosen is not None else files
    pad = PAD_VALUES[task]
    return to_batch([letterbox_image(load_image(f), size, pad)[0] for f in picked]), data


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


def _target(image_id: int, lb: LetterboxInfo) -> dict[str, torch.Tensor]:
    return {
        "image_id": torch.tensor(int(image_id)),
        "scale": torch.tensor(lb.scale, dtype=torch.float64),
        "pad": torch.tensor(lb.pad, dtype=torch.float64),
        "orig_size": torch.tensor(lb.orig_size),
    }


__all__ = ["OnnxModel", "calibration_images", "evaluate_onnx"]
