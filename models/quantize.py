"""INT8 post-training quantization of an exported model with ONNX Runtime (static, QDQ).

`quantize_int8` calibrates activation ranges on letterboxed images (the graph's input: RGB
pixels 0-255, ``[B, 3, H, W]``) and writes a QDQ model: ``QuantizeLinear`` /
``DequantizeLinear`` pairs around the convolutions (weights int8 per output channel,
activations uint8), everything else (the pixel scaling, box and keypoint decoding, the NMS
post-processing) left in float32. ONNX Runtime runs it with int8 kernels on CPUs; TensorRT
builds an INT8 engine from the same QDQ file.

Example:
    >>> from models.quantize import quantize_int8                           # doctest: +SKIP
    >>> quantize_int8("m.onnx", "m.int8.onnx", calib_images)                # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

QUANTIZED_OPS = ("Conv",)  # decoding and NMS stay in float32


def quantize_int8(
    model_path: str | Path,
    out_path: str | Path,
    calib_images: np.ndarray,
    method: str = "minmax",
) -> Path:
    """Quantize ``model_path`` (an `models.export_nms.export_deployable` file) to ``out_path``.

    ``calib_images``: ``[N, 3, H, W]`` letterboxed RGB pixels 0-255 (any N >= 1; fed in the
    graph's batch size, the last batch padded by repetition). ``method``: ``minmax`` or
    ``percentile`` (99.999%) activation ranges. The file's ``opennac.*`` metadata is kept, with
    ``opennac.precision: int8`` added.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from models.export import read_metadata, set_metadata
    from models.export_nms import as_input_type

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"method: expected one of {', '.join(methods)}, got {method!r}")
    model = onnx.load(str(model_path))
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    images = np.asarray(calib_images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(dims[1:]) or not len(images):
        raise ValueError(
            f"calib_images: expected [N, {dims[1]}, {dims[2]}, {dims[3]}] with N >= 1, got "
            f"{images.shape}"
        )
    elem = {onnx.TensorProto.UINT8: "tensor(uint8)", onnx.TensorProto.FLOAT: "tensor(float)"}
    ort_type = elem.get(inp.type.tensor_type.elem_type)
    if ort_type is None:
        raise ValueError(f"{model_path}: INT8 needs a float32 model (uint8 or float32 input)")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = _batches(images, dims[0])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {inp.name: as_input_type(batch, ort_type)}

    exclude = [n.name for n in model.graph.node if n.name.startswith("nms/")]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        quantize_static(
            str(model_path),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=exclude,
            calibrate_method=methods[method],
        )
    quantized = onnx.load(str(out_path))
    meta = read_metadata(model)
    meta.update({"opennac.precision": "int8", "opennac.int8": f"static QDQ, {method} "
                 f"calibration on {len(images)} images, ops {', '.join(QUANTIZED_OPS)}"})
    onnx.save(set_metadata(quantized, meta), str(out_path))
    return out_path


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantizer prints progress and logs advice on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _batches(images: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        if len(chunk) < batch:
            pad = np.repeat(chunk[-1:], batch - len(chunk), axis=0)
            chunk = np.concatenate([chunk, pad])
        yield chunk


def count_qdq(model_path: str | Path) -> int:
    """How many ``QuantizeLinear`` nodes a model has (0 for a float model)."""
    import onnx

    return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(model_path)).graph.node)


__all__ = ["QUANTIZED_OPS", "count_qdq", "quantize_int8"]
