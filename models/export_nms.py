"""Post-processing inside the ONNX graph: score threshold, top-k, per-class NMS, max detections.

`export_deployable` exports the fused model (optionally float16, optionally with the
post-processing) and checks the file against PyTorch in ONNX Runtime. `add_postprocess` appends
to an exported model (`models.export.export_onnx`) the same pipeline as `models.postprocess`:
the ``top_k`` best (anchor, class) candidates above the score threshold, ONNX
``NonMaxSuppression`` per class (exact per-class IoU, no coordinate offsets), then the
``max_det`` best per image. Pose keypoints are gathered with their boxes.

Outputs (``N`` = detections in the whole batch, ordered by image, then by score, best first):

- ``batch_index`` int64 ``[N]``: which image of the batch;
- ``boxes`` float32 ``[N, 4]`` xyxy in input pixels; ``scores`` float32 ``[N]``;
- ``labels`` int64 ``[N]``; pose models also ``keypoints`` float32 ``[N, K, 3]``
  (x, y, visibility).

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

# Published defaults (as models.postprocess): at most 300 detections, 30 for pose.
MAX_DETECTIONS = {"detection": 300, "pose": 30}
OUTPUTS_DETECTION = ("batch_index", "boxes", "scores", "labels")
OUTPUTS_POSE = (*OUTPUTS_DETECTION, "keypoints")
_PREFIX = "nms/"  # names of the appended nodes and tensors


@dataclass(frozen=True)
class NmsSettings:
    """Post-processing thresholds, as in `models.postprocess`.

    ``score``: candidates need a score above it; ``top_k``: candidates kept before NMS;
    ``iou``: per-class NMS threshold; ``max_det``: detections per image (``None``: 300 for
    detection, 30 for pose, the published settings).
    """

    iou: float = 0.7
    score: float = 0.25
    max_det: int | None = None
    top_k: int = 1000

    def __post_init__(self) -> None:
        for name in ("iou", "score"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (0.0 <= value <= 1.0)
            ):
                raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
        for name in ("max_det", "top_k"):
            value = getattr(self, name)
            if value is None and name == "max_det":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")

    def max_detections(self, task: str) -> int:
        """``max_det``, or the task's published default."""
        return self.max_det if self.max_det is not None else MAX_DETECTIONS[task]


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


def add_postprocess(
    model: Any,
    task: str,
    num_classes: int,
    num_keypoints: int = 0,
    settings: NmsSettings | None = None,
) -> Any:
    """Append the post-processing to an ``onnx.ModelProto`` whose outputs are ``boxes [B, A,
    4]``, ``scores [B, A, C]`` (and ``keypoints [B, A, K, 3]`` for pose); returns a new model."""
    import onnx
    from onnx import TensorProto, helper

    settings = settings or NmsSettings()
    if task not in ("detection", "pose"):
        raise ValueError(f"task: expected 'detection' or 'pose', got {task!r}")
    graph = model.graph
    outputs = [o.name for o in graph.output]
    want = ["boxes", "scores"] + (["keypoints"] if task == "pose" else [])
    if outputs != want:
        raise ValueError(f"expected a model with outputs {want}, got {outputs}")
    opset = _default_opset(model)
    if opset < 15:
        raise ValueError(f"post-processing needs opset >= 15, the model has {opset}")
    anchors = _static_dim(graph.output[0], 1)
    if anchors is None:
        raise ValueError("the model's 'boxes' output needs a static anchor dimension")
    b = _Builder()
    boxes = b.cast_float("boxes")  # [B, A, 4]; fp16 models are post-processed in fp32
    scores = b.cast_float("scores")  # [B, A, C]
    classes = 1 if task == "pose" else num_classes
    max_det = settings.max_detections(task)
    # Candidates are (anchor, class) pairs (multi-label): flat index = anchor * C + class.
    # The top_k best come first; those not above the score threshold are dropped by the NMS.
    flat = b.op("Reshape", [scores, b.const_i64([0, -1])])  # [B, A*C]
    k = min(settings.top_k, anchors * classes)
    cand_scores, flat_idx = b.op("TopK", [flat, b.const_i64([k])], 2, axis=-1)
    cand_anchor = b.op("Div", [flat_idx, b.const_i64([classes])])  # [B, k]
    cand_label = b.op("Mod", [flat_idx, b.const_i64([classes])])
    cand_boxes = b.gather_rows(boxes, cand_anchor, 4)  # [B, k, 4]
    # Per-class NMS in one op: class c's scores are the candidate scores where the candidate's
    # label is c, -1 elsewhere (always below the score threshold).
    onehot = b.op(
        "OneHot", [cand_label, b.const_i64([classes]), b.const_f32([0.0, 1.0])], axis=-1
    )  # [B, k, C]
    shifted = b.op("Add", [b.op("Reshape", [cand_scores, b.const_i64([0, -1, 1])]),
                           b.const_f32([1.0])])  # fmt: skip
    per_class = b.op("Sub", [b.op("Mul", [onehot, shifted]), b.const_f32([1.0])])
    per_class = b.op("Transpose", [per_class], perm=[0, 2, 1])  # [B, C, k]
    selected = b.op(
        "NonMaxSuppression",
        [
            cand_boxes,
            per_class,
            b.const_i64([max_det]),
            b.const_f32([settings.iou]),
            b.const_f32([settings.score]),
        ],
        center_point_box=0,
    )  # [N, 3]: (image, class, candidate)
    sel_image = b.column(selected, 0)  # [N]
    sel_cand = b.column(selected, 2)
    flat_cand = b.op("Add", [b.op("Mul", [sel_image, b.const_i64([k])]), sel_cand])
    det_scores = b.op("Gather", [b.op("Reshape", [cand_scores, b.const_i64([-1])]), flat_cand])
    # Order by image, then score (best first): sort ascending on image * 4 - score.
    key = b.op("Sub", [b.op("Mul", [b.op("Cast", [sel_image], to=TensorProto.FLOAT),
                                    b.const_f32([4.0])]), det_scores])  # fmt: skip
    count = b.op("Shape", [key])
    _, order = b.op("TopK", [key, count], 2, axis=0, largest=0, sorted=1)
    sorted_image = b.op("Gather", [sel_image, order])
    # Rank within its image = position - (number of detections of earlier images).
    images = b.op("Range", [b.const_i64(0, scalar=True),
                            b.op("Shape", [boxes], start=0, end=1, squeeze=True),
                            b.const_i64(1, scalar=True)])  # fmt: skip
    earlier = b.op(
        "Less",
        [
            b.op("Reshape", [sorted_image, b.const_i64([1, -1])]),
            b.op("Reshape", [images, b.const_i64([-1, 1])]),
        ],
    )  # [B, N]
    first = b.op("ReduceSum", [b.op("Cast", [earlier], to=TensorProto.INT64),
                               b.const_i64([1])], keepdims=0)  # fmt: skip
    position = b.op("Range", [b.const_i64(0, scalar=True), b.scalar_of(count),
                              b.const_i64(1, scalar=True)])  # fmt: skip
    rank = b.op("Sub", [position, b.op("Gather", [first, sorted_image])])
    keep = b.op("Less", [rank, b.const_i64([max_det])])
    order = b.op("Compress", [order, keep], axis=0)
    final = b.op("Gather", [flat_cand, order])  # flat candidate index, [N']
    b.output("batch_index", b.op("Gather", [sel_image, order]))
    b.output("boxes", b.op("Gather", [b.op("Reshape", [cand_boxes, b.const_i64([-1, 4])]),
                                      final], axis=0))  # fmt: skip
    b.output("scores", b.op("Gather", [det_scores, order]))
    b.output("labels", b.op("Gather", [b.op("Reshape", [cand_label, b.const_i64([-1])]),
                                       final]))  # fmt: skip
    if task == "pose":
        kpts = b.cast_float("keypoints")  # [B, A, K, 3]
        flat_k = b.op("Reshape", [kpts, b.const_i64([0, 0, num_keypoints * 3])])
        cand_k = b.gather_rows(flat_k, cand_anchor, num_keypoints * 3)  # [B, k, K*3]
        picked = b.op("Gather", [b.op("Reshape", [cand_k, b.const_i64([-1, num_keypoints * 3])]),
                                 final], axis=0)  # fmt: skip
        b.output("keypoints", b.op("Reshape", [picked, b.const_i64([-1, num_keypoints, 3])]))

    new = onnx.ModelProto()
    new.CopyFrom(model)
    old_outputs = {o.name for o in new.graph.output}
    # The network's outputs become internal tensors feeding the post-processing.
    renames = {name: f"{_PREFIX}raw_{name}" for name in old_outputs}
    for node in new.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    del new.graph.output[:]
    for node in b.nodes:
        node.input[:] = [renames.get(i, i) for i in node.input]
    new.graph.node.extend(b.nodes)
    new.graph.initializer.extend(b.initializers)
    dims = {"batch_index": ["N"], "boxes": ["N", 4], "scores": ["N"], "labels": ["N"],
            "keypoints": ["N", num_keypoints, 3]}  # fmt: skip
    types = {"batch_index": TensorProto.INT64, "labels": TensorProto.INT64}
    for name, tensor in b.outputs:
        new.graph.node.append(helper.make_node("Identity", [tensor], [name], name=_PREFIX + name))
        new.graph.output.append(
            helper.make_tensor_value_info(name, types.get(name, TensorProto.FLOAT), dims[name])
        )
    del new.graph.value_info[:]  # stale shapes of renamed tensors; ONNX Runtime infers its own
    onnx.checker.check_model(new)
    return new


def export_deployable(
    model_or_spec: Any,
    path: str | Path,
    image_size: int | tuple[int, int] = 640,
    batch: int = 1,
    nms: NmsSettings | None = None,
    fp16: bool = False,
    opset: int = 17,
    check: bool = True,
    check_images: np.ndarray | None = None,
) -> DeployReport:
    """Export the fused model to ONNX, optionally in float16 and with post-processing.

    With ``check``, ONNX Runtime runs the file on ``check_images`` (``[batch, 3, H, W]``, float
    pixels 0-255; default random): the network's outputs must match PyTorch's (relative error
    < 1e-4, or < 2e-2 in float16) and, with ``nms``, the detections of the graph must equal
    `models.postprocess` applied to those same network outputs (same count per image, same
    labels, boxes within 1e-3 px). Feeding both post-processings the same tensors tests the
    graph exactly, even where near-equal scores would let float rounding in the network pick
    another box. Raises `models.export.ExportError` when a check fails.
    """
    import onnx
    import torch

    from models.build import YoloNAS, build_model, fuse
    from models.export import ExportError, export_onnx
    from models.spec import ArchSpec

    if isinstance(model_or_spec, ArchSpec):
        model = fuse(build_model(model_or_spec))
    elif isinstance(model_or_spec, YoloNAS):
        model = fuse(model_or_spec)
    else:
        raise TypeError(
            f"export_deployable: expected a YoloNAS or an ArchSpec, got {model_or_spec!r}"
        )
    model = model.float().cpu().eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "network.onnx"
        # export_onnx checks float32 parity on its own random input
        report = export_onnx(model, raw, image_size=image_size, batch=batch, opset=opset,
                             check=check and not fp16)  # fmt: skip
        net = onnx.load(str(raw))
    if fp16:
        net = to_float16(net)
    full = net
    if nms is not None:
        full = add_postprocess(net, model.task, model.num_classes, model.num_keypoints, nms)
    onnx.save(full, str(path))
    names = tuple(o.name for o in full.graph.output)
    network_err, detections, box_err, note = report.max_rel_err, None, None, None
    if check:
        x = _check_input(check_images, report.input_shape)
        raw_types = [o.type.tensor_type.elem_type for o in net.graph.output]
        got_raw, got = _run_with_raw(full, x, raw_types, nms is not None)
        with torch.no_grad():
            want_raw = [o.numpy() for o in model(torch.from_numpy(x))]
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
            ties = tied_candidates(got_raw[1], nms)
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
        path, opset, report.input_shape, names, nms, fp16, network_err, detections, box_err, note
    )


def tied_candidates(scores: np.ndarray, settings: NmsSettings) -> int:
    """How many NMS candidates (the ``top_k`` best scores above the threshold, per image of
    ``scores [B, A, C]``) share their score with another candidate."""
    tied = 0
    for image in np.asarray(scores, dtype=np.float32):
        flat = image.ravel()
        cand = flat[flat > settings.score]
        if cand.size > settings.top_k:
            cand = np.partition(cand, cand.size - settings.top_k)[-settings.top_k :]
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
    raw_names = [f"{_PREFIX}raw_{n}" for n in ("boxes", "scores", "keypoints")[: len(raw_types)]]
    if has_nms:  # expose the network outputs that feed the post-processing
        for name, elem_type in zip(raw_names, raw_types, strict=True):
            probe.graph.output.append(helper.make_tensor_value_info(name, elem_type, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, {inp.name: x.astype(dtype)}), strict=True))
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


def _check_input(images: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if images is None:
        return np.random.default_rng(0).uniform(0.0, 255.0, size=shape).astype(np.float32)
    images = np.asarray(images, dtype=np.float32)
    if tuple(images.shape) != tuple(shape):
        raise ValueError(f"check_images: expected shape {tuple(shape)}, got {images.shape}")
    return images


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
    """Run an exported model with post-processing; per-image dicts like `models.postprocess`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    names = [o.name for o in session.get_outputs()]
    if "batch_index" not in names:
        raise ValueError(f"{path}: no post-processing in this model (outputs {names})")
    values = dict(zip(names, session.run(None, {inp.name: images.astype(dtype)}), strict=True))
    return _split_by_image(values, images.shape[0])


def torch_postprocess(outputs: Sequence[Any], task: str, settings: NmsSettings) -> list[dict]:
    """`models.postprocess` on eval outputs with ``settings``, as numpy per-image dicts."""
    from models import postprocess

    dets = postprocess.postprocess(
        list(outputs),
        score_threshold=settings.score,
        topk=settings.top_k,
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


# --------------------------------------------------------------------------- graph building


class _Builder:
    """Collects nodes and constants with unique names under the ``nms/`` prefix."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.outputs: list[tuple[str, str]] = []
        self._n = 0

    def _name(self, what: str) -> str:
        self._n += 1
        return f"{_PREFIX}{what}_{self._n}"

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        if op_type == "Shape" and attrs.pop("squeeze", False):
            shape = self.op("Shape", inputs, **attrs)
            return self.op("Reshape", [shape, self.const_i64([], scalar=False, shape=[0])])
        outs = [self._name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else tuple(outs)

    def const_i64(self, values: Any, scalar: bool = False, shape: list[int] | None = None) -> str:
        from onnx import numpy_helper

        arr = np.array(values, dtype=np.int64)
        if shape is not None:
            arr = arr.reshape(shape)
        elif not scalar:
            arr = arr.reshape(-1)
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def const_f32(self, values: Sequence[float]) -> str:
        from onnx import numpy_helper

        name = self._name("const")
        arr = np.array(values, dtype=np.float32).reshape(-1)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def cast_float(self, name: str) -> str:
        from onnx import TensorProto

        return self.op("Cast", [name], to=TensorProto.FLOAT)

    def column(self, matrix: str, index: int) -> str:
        """Column ``index`` of an ``[N, M]`` int tensor as ``[N]``."""
        col = self.op("Gather", [matrix, self.const_i64([index])], axis=1)  # [N, 1]
        return self.op("Reshape", [col, self.const_i64([-1])])

    def scalar_of(self, shape: str) -> str:
        """A 1-element shape vector as a scalar."""
        return self.op("Reshape", [shape, self.const_i64([], shape=[0])])

    def gather_rows(self, data: str, index: str, width: int) -> str:
        """``data [B, A, W]`` rows at ``index [B, k]`` -> ``[B, k, W]``."""
        idx = self.op("Reshape", [index, self.const_i64([0, -1, 1])])  # [B, k, 1]
        shape = self.op("Concat", [self.op("Shape", [index]), self.const_i64([width])], axis=0)
        idx = self.op("Expand", [idx, shape])
        return self.op("GatherElements", [data, idx], axis=1)

    def output(self, name: str, tensor: str) -> None:
        self.outputs.append((name, tensor))


def _default_opset(model: Any) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise ValueError("the model imports no default-domain opset")


def _static_dim(value: Any, axis: int) -> int | None:
    dims = value.type.tensor_type.shape.dim
    if len(dims) <= axis or not dims[axis].HasField("dim_value"):
        return None
    return int(dims[axis].dim_value)


__all__ = [
    "DeployReport",
    "MAX_DETECTIONS",
    "NmsSettings",
    "OUTPUTS_DETECTION",
    "OUTPUTS_POSE",
    "add_postprocess",
    "compare_detections",
    "export_deployable",
    "run_onnx",
    "tied_candidates",
    "to_float16",
]
