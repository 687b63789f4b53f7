"""Deployable ONNX export: the fused model, optionally float16 and with post-processing.

`export_deployable` exports the fused model (optionally float16, optionally with the
post-processing of `models.onnx_postprocess.add_postprocess`) and checks the file against
PyTorch in ONNX Runtime; `run_onnx` runs such a file. The input is a batch of letterboxed RGB
images, ``[B, 3, H, W]``, pixels 0-255 as ``uint8`` (default) or float (``input_type``); the
graph divides by 255 (see `models.export` and `models.letterbox`). The graph's outputs are
described in `models.onnx_postprocess`; the names defined there are re-exported here.

Example:
    >>> import tempfile, pathlib
    >>> from models.presets import get_preset
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tiny_nms.onnx"
    >>> nms = NmsSettings(score=0.25)
    >>> report = export_deployable(get_preset("yolo_nas_tiny"), out, image_size=64, nms=nms)
    >>> report.output_names
    ('batch_index', 'boxes', 'scores', 'labels')
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import postprocess
from models.build import YoloNAS
from models.export import (
    ExportError,
    check_input_type,
    export_fused,
    fused_copy,
    input_metadata,
    input_shape,
    set_metadata,
)
from models.onnx_postprocess import MAX_DETECTIONS, PREFIX, NmsSettings, add_postprocess
from models.spec import ArchSpec


@dataclass(frozen=True)
class DeployReport:
    """What `export_deployable` wrote and how ONNX Runtime compared with PyTorch."""

    path: Path
    opset: int
    input_shape: tuple[int, int, int, int]
    output_names: tuple[str, ...]
    nms: NmsSettings | None
    fp16: bool
    network_max_rel_err: float | None  # raw network outputs, ONNX Runtime vs PyTorch fp32
    detections: int | None  # with NMS: detections on the check input, per ONNX Runtime
    max_box_err: float | None  # with NMS: graph vs models.postprocess on the same tensors, px
    note: str | None = None  # why a check could not be exact (tied scores), if so
    input_type: str = "uint8"  # the graph input's element type: uint8, float or float16


def export_deployable(
    model_or_spec: YoloNAS | ArchSpec,
    path: str | Path,
    image_size: int | tuple[int, int] = 640,
    batch: int = 1,
    nms: NmsSettings | None = None,
    fp16: bool = False,
    opset: int = 17,
    check: bool = True,
    check_images: np.ndarray | None = None,
    input_type: str = "uint8",
) -> DeployReport:
    """Export the fused model to ONNX, optionally in float16 and with post-processing.

    The graph's input ``images`` is RGB, NCHW, pixels 0-255 of letterboxed images, as
    ``input_type`` ``"uint8"`` or ``"float"`` (float32, or float16 with ``fp16``); the graph
    scales them to 0-1 itself. The file's metadata (``opennac.*``) says so.

    With ``check``, ONNX Runtime runs the file on ``check_images`` (``[batch, 3, H, W]``,
    pixels 0-255; default random): the network's outputs must match PyTorch's (relative error
    < 1e-4, or < 2e-2 in float16) and, with ``nms``, the detections of the graph must equal
    `models.postprocess` applied to those same network outputs (same count per image, same
    labels, boxes within 1e-3 px). Feeding both post-processings the same tensors tests the
    graph exactly, even where near-equal scores would let float rounding in the network pick
    another box. Raises `models.export.ExportError` when a check fails.
    """
    import onnx

    check_input_type(input_type)
    model = fused_copy(model_or_spec, "export_deployable")
    shape = input_shape(image_size, batch, opset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "network.onnx"
        # export_fused checks float32 parity on its own random input
        report = export_fused(model, raw, shape, opset, check and not fp16, input_type)
        net = onnx.load(str(raw))
    if fp16:
        net = to_float16(net)
    full = net
    if nms is not None:
        full = add_postprocess(net, model.task, model.num_classes, model.num_keypoints, nms)
    graph_input = "float16" if fp16 and input_type == "float" else input_type
    meta = input_metadata(model, shape, graph_input)
    meta["opennac.precision"] = "fp16" if fp16 else "fp32"
    meta["opennac.nms"] = _nms_metadata(nms, model.task)
    meta["opennac.outputs"] = ", ".join(o.name for o in full.graph.output)
    full.graph.input[0].doc_string = meta["opennac.input"]
    set_metadata(full, meta)
    onnx.save(full, str(path))
    names = tuple(o.name for o in full.graph.output)
    network_err, detections, box_err, note = report.max_rel_err, None, None, None
    if check:
        x = _check_input(check_images, report.input_shape, input_type)
        raw_types = [o.type.tensor_type.elem_type for o in net.graph.output]
        got_raw, got = _run_with_raw(full, x, raw_types, nms is not None)
        with torch.no_grad():
            want_raw = [o.numpy() for o in model(torch.from_numpy(x).float() / 255.0)]
        network_err = _relative_error(got_raw, want_raw)
        limit = 2e-2 if fp16 else 1e-4
        if network_err >= limit:
            raise ExportError(
                f"{path}: ONNX Runtime differs from PyTorch (relative error "
                f"{network_err:.2e} >= {limit:.0e})"
            )
        if nms is not None:
            detections = sum(len(d["scores"]) for d in got)
            raw_t = [torch.from_numpy(r.astype(np.float32)) for r in got_raw]
            want = torch_postprocess(raw_t, model.task, nms)
            box_err = compare_detections(got, want, box_tol=1e-3)
            ties = tied_candidates(got_raw[1], nms, model.task)
            if box_err is None and ties:
                # Equal scores: either order is a correct NMS, and the two implementations
                # break ties differently. Not an error; the caller is told.
                note = (
                    f"{ties} candidate scores tie exactly (typical of untrained or float16 "
                    "models), so the graph's detections may legitimately differ from "
                    "models.postprocess; compared counts only"
                )
                counts = [len(d["scores"]) for d in got], [len(d["scores"]) for d in want]
                if abs(sum(counts[0]) - sum(counts[1])) > ties:
                    raise ExportError(f"{path}: detection counts {counts[0]} vs {counts[1]}")
            elif box_err is None:
                counts = [len(d["scores"]) for d in got], [len(d["scores"]) for d in want]
                raise ExportError(
                    f"{path}: the graph's detections differ from models.postprocess on the "
                    f"same network outputs (per-image counts {counts[0]} vs {counts[1]}, or "
                    "boxes/labels)"
                )
    return DeployReport(
        path, opset, report.input_shape, names, nms, fp16, network_err, detections, box_err, note,
        graph_input,
    )


def _nms_metadata(nms: NmsSettings | None, task: str) -> str:
    if nms is None:
        return "none"
    return (f"score > {nms.score}, top-k {nms.pre_nms_top_k(task)}, per-class NMS IoU {nms.iou}, "
            f"max {nms.max_detections(task)} per image")


def tied_candidates(scores: np.ndarray, settings: NmsSettings, task: str = "detection") -> int:
    """How many NMS candidates (the ``top_k`` best scores above the threshold, per image of
    ``scores [B, A, C]``) share their score with another candidate."""
    top_k = settings.pre_nms_top_k(task)
    tied = 0
    for image in np.asarray(scores, dtype=np.float32):
        flat = image.ravel()
        cand = flat[flat > settings.score]
        if cand.size > top_k:
            cand = np.partition(cand, cand.size - top_k)[-top_k:]
        tied += int(cand.size - np.unique(cand).size)
    return tied


def _run_with_raw(
    model: Any, x: np.ndarray, raw_types: Sequence[int], has_nms: bool
) -> tuple[list[np.ndarray], list[dict[str, np.ndarray]]]:
    """Run ``model`` once, returning the network's outputs and (with NMS) the detections."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    raw_names = [f"{PREFIX}raw_{n}" for n in ("boxes", "scores", "keypoints")[: len(raw_types)]]
    if has_nms:  # expose the network outputs that feed the post-processing
        for name, elem_type in zip(raw_names, raw_types, strict=True):
            probe.graph.output.append(helper.make_tensor_value_info(name, elem_type, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    names = [o.name for o in session.get_outputs()]
    feed = {inp.name: as_input_type(x, inp.type)}
    values = dict(zip(names, session.run(None, feed), strict=True))
    if not has_nms:
        return [values[n] for n in names], []
    raw = [values.pop(n) for n in raw_names]
    return raw, _split_by_image(values, x.shape[0])


def _split_by_image(values: dict[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    out = []
    for i in range(batch):
        sel = values["batch_index"] == i
        out.append({k: v[sel] for k, v in values.items() if k != "batch_index"})
    return out


def _check_input(
    images: np.ndarray | None, shape: tuple[int, ...], input_type: str
) -> np.ndarray:
    """Check pixels 0-255 in the graph's input type (uint8 or float32)."""
    if images is None:
        rng = np.random.default_rng(0)
        if input_type == "uint8":
            return rng.integers(0, 256, size=shape, dtype=np.uint8)
        return rng.uniform(0.0, 255.0, size=shape).astype(np.float32)
    images = np.asarray(images)
    if tuple(images.shape) != tuple(shape):
        raise ValueError(f"check_images: expected shape {tuple(shape)}, got {images.shape}")
    if input_type == "uint8":
        return np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return images.astype(np.float32)


_ORT_TYPES = {
    "tensor(uint8)": np.uint8,
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
}


def as_input_type(images: np.ndarray, ort_type: str) -> np.ndarray:
    """Pixels 0-255 in the element type an ONNX Runtime input wants (``tensor(uint8)``, ...);
    float pixels for a uint8 input are rounded and clipped."""
    dtype = _ORT_TYPES.get(ort_type)
    if dtype is None:
        raise ValueError(f"unsupported model input type {ort_type}")
    images = np.asarray(images)
    if dtype is np.uint8 and images.dtype != np.uint8:
        images = np.clip(np.rint(images), 0, 255)
    return images.astype(dtype)


def _relative_error(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> float:
    """Max over outputs of max |got - want| / max |want|."""
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape:
            return float("inf")
        if not w.size:
            continue
        err = float(np.abs(g.astype(np.float32) - w).max())
        worst = max(worst, err / max(float(np.abs(w).max()), 1e-12))
    return worst


def run_onnx(path: str | Path, images: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Run an exported model with post-processing on ``images`` ``[B, 3, H, W]`` (letterboxed
    RGB pixels 0-255, uint8 or float; converted to the graph's input type); per-image dicts
    like `models.postprocess`, boxes in letterboxed pixels (`models.letterbox.to_original`)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    names = [o.name for o in session.get_outputs()]
    if "batch_index" not in names:
        raise ValueError(f"{path}: no post-processing in this model (outputs {names})")
    feed = {inp.name: as_input_type(images, inp.type)}
    values = dict(zip(names, session.run(None, feed), strict=True))
    return _split_by_image(values, images.shape[0])


def torch_postprocess(outputs: Sequence[Any], task: str, settings: NmsSettings) -> list[dict]:
    """`models.postprocess` on eval outputs with ``settings``, as numpy per-image dicts."""
    dets = postprocess.postprocess(
        list(outputs),
        score_threshold=settings.score,
        topk=settings.pre_nms_top_k(task),
        iou_threshold=settings.iou,
        max_detections=settings.max_detections(task),
    )
    return [{k: v.detach().cpu().numpy() for k, v in d.items()} for d in dets]


def compare_detections(
    got: Sequence[dict[str, np.ndarray]],
    want: Sequence[dict[str, np.ndarray]],
    box_tol: float = 1e-3,
    where: str = "model",
) -> float | None:
    """Largest box (and keypoint) difference between two detection lists if they match, else
    ``None``. They match when each image has the same number of detections and these pair up
    one to one with equal labels and boxes within ``box_tol`` (pairing ignores the order, so
    near-equal scores listed in another order still match)."""
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if len(g["scores"]) != len(w["scores"]):
            return None
        if not len(g["scores"]):
            continue
        diff = np.abs(g["boxes"][:, None, :] - w["boxes"][None, :, :]).max(axis=2)  # [n, n]
        if "keypoints" in g and "keypoints" in w:
            kd = np.abs(g["keypoints"][:, None] - w["keypoints"][None, :]).reshape(
                len(diff), len(diff), -1
            )
            diff = np.maximum(diff, kd.max(axis=2))
        diff = np.where(g["labels"][:, None] == w["labels"][None, :], diff, np.inf)
        for _ in range(len(diff)):  # greedy one-to-one pairing, closest pair first
            i, j = np.unravel_index(np.argmin(diff), diff.shape)
            if not diff[i, j] <= box_tol:
                return None
            worst = max(worst, float(diff[i, j]))
            diff[i, :] = np.inf
            diff[:, j] = np.inf
    return worst


def to_float16(model: Any) -> Any:
    """Weights, activations and the input in float16 (outputs are cast back in the graph)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    new = onnx.ModelProto()
    new.CopyFrom(model)
    for init in new.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float16), init.name))  # fmt: skip
    for node in new.graph.node:
        for attr in node.attribute:
            if attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))  # fmt: skip
    for value in (*new.graph.input, *new.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del new.graph.value_info[:]
    return new


__all__ = [
    "DeployReport",
    "as_input_type",
    "MAX_DETECTIONS",
    "NmsSettings",
    "add_postprocess",
    "compare_detections",
    "export_deployable",
    "run_onnx",
    "tied_candidates",
    "to_float16",
]
