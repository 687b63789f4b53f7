"""ONNX export of the fused (deployed) model, checked against ONNX Runtime.

The graph has one input ``images`` ``[batch, 3, H, W]`` (float32) and the eval outputs of
`models.build.YoloNAS`: ``boxes`` ``[batch, A, 4]`` (xyxy pixels) and ``scores``
``[batch, A, C]``; pose models add ``keypoints`` ``[batch, A, K, 3]``. Anchor grids are baked in
for the exported size.

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

import torch

from models.build import YoloNAS, build_model, fuse
from models.complexity import ImageSize, _hw
from models.spec import ArchSpec

MIN_OPSET = 17
TOLERANCE = 1e-4


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


def _torch_export(model: YoloNAS, x: torch.Tensor, path: Path, opset: int, names: tuple[str, ...]):
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


def check_onnx(path: Path | str, model: YoloNAS, x: torch.Tensor) -> tuple[float, float]:
    """Run ``path`` in ONNX Runtime (CPU) on ``x``; (max abs error, max relative error)."""
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
) -> ExportReport:
    """Fuse (if needed) and export to ONNX at a fixed input size; with ``check``, compare ONNX
    Runtime's outputs to PyTorch's on a random input (relative error must be < 1e-4).

    A spec is built with freshly initialised weights; pass a trained `YoloNAS` to export it.
    The given model is not changed.
    """
    shape = input_shape(image_size, batch, opset)
    model = fused_copy(model_or_spec, "export_onnx")
    return export_fused(model, path, shape, opset, check)


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
) -> ExportReport:
    """`export_onnx` of a model already made by `fused_copy`, at a checked `input_shape`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ("boxes", "scores") if model.task == "detection" else ("boxes", "scores", "keypoints")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(*shape, generator=gen) * 255.0
    exporter = _torch_export(model, x, path, opset, names)
    abs_err = rel_err = None
    if check:
        abs_err, rel_err = check_onnx(path, model, x)
        if rel_err >= TOLERANCE:
            raise ExportError(
                f"{path}: ONNX Runtime differs from PyTorch (relative error {rel_err:.2e} "
                f">= {TOLERANCE:.0e})"
            )
    return ExportReport(path, opset, shape, names, exporter, abs_err, rel_err)


__all__ = ["ExportError", "ExportReport", "check_onnx", "export_onnx"]
