"""ONNX export of the fused (deployed) model, checked against ONNX Runtime.

The graph has one input ``images`` ``[batch, 3, H, W]``: RGB pixels 0-255 of letterboxed images
(`models.letterbox`), ``uint8`` or ``float32`` (``input_type``); the graph divides by 255 itself,
as training does before the network. Its outputs are the eval outputs of `models.build.YoloNAS`:
``boxes`` ``[batch, A, 4]`` (xyxy pixels) and ``scores`` ``[batch, A, C]``; pose models add
``keypoints`` ``[batch, A, K, 3]``. Anchor grids are baked in for the exported size. The file's
metadata (``opennac.*`` keys, `input_metadata`) states this input contract.

Example:
    >>> import tempfile, pathlib
    >>> from models.presets import get_preset
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tiny.onnx"
    >>> report = export_onnx(get_preset("yolo_nas_tiny"), out, image_size=64)
    >>> report.max_rel_err < 1e-4
    True
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.build import YoloNAS, build_model, fuse
from models.complexity import ImageSize, _hw
from models.letterbox import PAD_VALUES
from models.spec import ArchSpec

MIN_OPSET = 17
TOLERANCE = 1e-4
INPUT_TYPES = ("uint8", "float")  # the graph input's element type; pixels 0-255 either way
ONNX_FORMAT = "opennac-onnx/1"  # version of the metadata written into exported files


class ExportError(RuntimeError):
    """The export failed or ONNX Runtime disagrees with PyTorch."""


@dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and how well ONNX Runtime matched PyTorch."""

    path: Path
    opset: int
    input_shape: tuple[int, int, int, int]
    output_names: tuple[str, ...]
    exporter: str  # "torchscript" or "dynamo"
    max_abs_err: float | None  # None when check=False
    max_rel_err: float | None  # max |ort - torch| / max |torch|, per output
    input_type: str = "float"


class PixelInput(nn.Module):
    """The exported graph's first step: RGB pixels 0-255 (uint8 or float) -> the 0-1 floats
    the network was trained on (``x.float() / 255``, as in `evaluators.trainer`)."""

    def __init__(self, model: YoloNAS) -> None:
        super().__init__()
        self.model = model
        self.dtype = next(model.parameters()).dtype

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model(x.to(self.dtype) / 255.0)


def pixel_input(shape: tuple[int, ...], input_type: str, seed: int = 0) -> torch.Tensor:
    """A random input of ``shape`` in the graph's type: uint8 or float pixels 0-255."""
    check_input_type(input_type)
    gen = torch.Generator().manual_seed(seed)
    if input_type == "uint8":
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return torch.rand(*shape, generator=gen) * 255.0


def check_input_type(input_type: str) -> str:
    if input_type not in INPUT_TYPES:
        raise ValueError(
            f"input_type: expected one of {', '.join(INPUT_TYPES)}, got {input_type!r}"
        )
    return input_type


def input_metadata(
    model: YoloNAS, shape: tuple[int, int, int, int], input_type: str
) -> dict[str, str]:
    """The ``opennac.*`` metadata of an exported file: its input contract and what it predicts.

    ``input_type`` is the graph input's element type (``uint8``, ``float`` or ``float16``).
    """
    b, _, h, w = shape
    pad = PAD_VALUES[model.task]
    kind = {"uint8": "uint8", "float": "float32", "float16": "float16"}[input_type]
    return {
        "opennac.format": ONNX_FORMAT,
        "opennac.input": (
            f"images [{b}, 3, {h}, {w}] {kind}: RGB, NCHW, pixels 0-255 (not normalised; the "
            f"graph divides by 255), letterboxed: longest side scaled to fit {h}x{w}, centred, "
            f"padded with {pad} (models.letterbox)"
        ),
        "opennac.input_type": input_type,
        "opennac.input_range": "0-255",
        "opennac.input_layout": "NCHW",
        "opennac.color": "RGB",
        "opennac.image_size": f"{h}x{w}",
        "opennac.batch": str(b),
        "opennac.pad_value": str(pad),
        "opennac.task": model.task,
        "opennac.num_classes": str(model.num_classes),
        "opennac.num_keypoints": str(model.num_keypoints if model.task == "pose" else 0),
        "opennac.arch_id": model.spec.arch_id,
    }


def set_metadata(onnx_model: Any, values: dict[str, str]) -> Any:
    """Set (replace) ``metadata_props`` entries of an ``onnx.ModelProto`` in place."""
    keep = [(p.key, p.value) for p in onnx_model.metadata_props if p.key not in values]
    del onnx_model.metadata_props[:]
    for key, value in [*keep, *values.items()]:
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return onnx_model


def read_metadata(path_or_model: Any) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (or ``ModelProto``) as a dict."""
    import onnx

    model = path_or_model
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(path_or_model), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _torch_export(
    model: nn.Module, x: torch.Tensor, path: Path, opset: int, names: tuple[str, ...]
) -> str:
    kwargs = dict(input_names=["images"], output_names=list(names), opset_version=opset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation + tracer notes about the fixed input size
        try:
            torch.onnx.export(model, (x,), str(path), dynamo=False, **kwargs)
            return "torchscript"
        except (TypeError, NotImplementedError, RuntimeError) as exc:
            legacy_error = exc
        try:  # torch builds without the TorchScript exporter
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(model, (x,), str(path), dynamo=True, **kwargs)
            return "dynamo"
        except Exception as exc:  # noqa: BLE001 - report both failures
            raise ExportError(
                f"ONNX export failed (torchscript: {legacy_error}; dynamo: {exc})"
            ) from exc


def check_onnx(path: Path | str, model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Run ``path`` in ONNX Runtime (CPU) on ``x``; (max abs error, max relative error) against
    ``model(x)``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = model(x)
    max_abs = max_rel = 0.0
    for g, w in zip(got, want, strict=True):
        w = w.numpy()
        if g.shape != w.shape:
            raise ExportError(f"{path}: ONNX output shape {g.shape} != PyTorch {w.shape}")
        err = float(abs(g - w).max())
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(float(abs(w).max()), 1e-12))
    return max_abs, max_rel


def export_onnx(
    model_or_spec: YoloNAS | ArchSpec,
    path: Path | str,
    image_size: ImageSize = 640,
    batch: int = 1,
    opset: int = 17,
    check: bool = True,
    input_type: str = "float",
) -> ExportReport:
    """Fuse (if needed) and export to ONNX at a fixed input size; with ``check``, compare ONNX
    Runtime's outputs to PyTorch's on a random input (relative error must be < 1e-4).

    The input is RGB pixels 0-255, ``input_type`` ``"uint8"`` or ``"float"`` (float32); the
    graph divides by 255. A spec is built with freshly initialised weights; pass a trained
    `YoloNAS` to export it. The given model is not changed.
    """
    shape = input_shape(image_size, batch, opset)
    model = fused_copy(model_or_spec, "export_onnx")
    return export_fused(model, path, shape, opset, check, input_type)


def input_shape(image_size: ImageSize, batch: int, opset: int) -> tuple[int, int, int, int]:
    """The checked export arguments as the input shape ``(batch, 3, H, W)``."""
    height, width = _hw(image_size)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: expected a positive integer, got {batch!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset: expected an integer >= {MIN_OPSET}, got {opset!r}")
    return (batch, 3, height, width)


def fused_copy(model_or_spec: YoloNAS | ArchSpec, caller: str) -> YoloNAS:
    """A fused, float32, CPU, eval-mode copy of a model (or of a freshly built spec)."""
    if isinstance(model_or_spec, ArchSpec):
        model = fuse(build_model(model_or_spec))
    elif isinstance(model_or_spec, YoloNAS):
        # fuse() copies; an already fused model is copied too (eval, float, cpu change it)
        model = fuse(model_or_spec)
    else:
        raise TypeError(f"{caller}: expected a YoloNAS or an ArchSpec, got {model_or_spec!r}")
    return model.float().cpu()


def export_fused(
    model: YoloNAS,
    path: Path | str,
    shape: tuple[int, int, int, int],
    opset: int,
    check: bool,
    input_type: str = "float",
) -> ExportReport:
    """`export_onnx` of a model already made by `fused_copy`, at a checked `input_shape`."""
    import onnx

    check_input_type(input_type)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ("boxes", "scores") if model.task == "detection" else ("boxes", "scores", "keypoints")
    graph = PixelInput(model).eval()
    x = pixel_input(shape, input_type)
    exporter = _torch_export(graph, x, path, opset, names)
    proto = onnx.load(str(path))
    proto.graph.input[0].doc_string = input_metadata(model, shape, input_type)["opennac.input"]
    onnx.save(set_metadata(proto, input_metadata(model, shape, input_type)), str(path))
    abs_err = rel_err = None
    if check:
        abs_err, rel_err = check_onnx(path, graph, x)
        if rel_err >= TOLERANCE:
            raise ExportError(
                f"{path}: ONNX Runtime differs from PyTorch (relative error {rel_err:.2e} "
                f">= {TOLERANCE:.0e})"
            )
    return ExportReport(path, opset, shape, names, exporter, abs_err, rel_err, input_type)


__all__ = [
    "ExportError",
    "ExportReport",
    "INPUT_TYPES",
    "PixelInput",
    "check_onnx",
    "export_onnx",
    "input_metadata",
    "read_metadata",
    "set_metadata",
]
