"""Post-processing appended to an exported ONNX graph: score threshold, top-k, per-class NMS,
max detections.

`add_postprocess` appends to an exported model (`models.export.export_onnx`) the same pipeline as
`models.postprocess`: the ``top_k`` best (anchor, class) candidates above the score threshold,
ONNX ``NonMaxSuppression`` per class (exact per-class IoU, no coordinate offsets), then the
``max_det`` best per image. Pose keypoints are gathered with their boxes. `models.export_nms`
exports, checks and runs such models.

Outputs (``N`` = detections in the whole batch, ordered by image, then by score, best first):

- ``batch_index`` int64 ``[N]``: which image of the batch;
- ``boxes`` float32 ``[N, 4]`` xyxy in input pixels; ``scores`` float32 ``[N]``;
- ``labels`` int64 ``[N]``; pose models also ``keypoints`` float32 ``[N, K, 3]``
  (x, y, visibility).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.postprocess import MAX_DETECTIONS, NMS_IOU, PRE_NMS_TOPK

PREFIX = "nms/"  # names of the appended nodes and tensors


@dataclass(frozen=True)
class NmsSettings:
    """Post-processing thresholds, as in `models.postprocess`.

    ``score``: candidates need a score above it; ``top_k``: candidates kept before NMS
    (``None``: 1000 for detection, 300 for pose, as `models.postprocess`); ``iou``: per-class
    NMS threshold; ``max_det``: detections per image (``None``: 300 for detection, 30 for pose,
    the published settings).
    """

    iou: float = NMS_IOU
    score: float = 0.25
    max_det: int | None = None
    top_k: int | None = None

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
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")

    def max_detections(self, task: str) -> int:
        """``max_det``, or the task's published default."""
        return self.max_det if self.max_det is not None else MAX_DETECTIONS[task]

    def pre_nms_top_k(self, task: str) -> int:
        """``top_k``, or the task's default (the same as `models.postprocess`)."""
        return self.top_k if self.top_k is not None else PRE_NMS_TOPK[task]


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
    k = min(settings.pre_nms_top_k(task), anchors * classes)
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
                            b.scalar_of(b.op("Shape", [boxes], start=0, end=1)),
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
    renames = {name: f"{PREFIX}raw_{name}" for name in old_outputs}
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
        new.graph.node.append(helper.make_node("Identity", [tensor], [name], name=PREFIX + name))
        new.graph.output.append(
            helper.make_tensor_value_info(name, types.get(name, TensorProto.FLOAT), dims[name])
        )
    del new.graph.value_info[:]  # stale shapes of renamed tensors; ONNX Runtime infers its own
    onnx.checker.check_model(new)
    return new


class _Builder:
    """Collects nodes and constants with unique names under the ``nms/`` prefix."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.outputs: list[tuple[str, str]] = []
        self._n = 0

    def _name(self, what: str) -> str:
        self._n += 1
        return f"{PREFIX}{what}_{self._n}"

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

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


__all__ = ["MAX_DETECTIONS", "NmsSettings", "PREFIX", "add_postprocess"]
