"""Inference backends for latency measurement and the rules for what each supports.

A backend turns a fused ``nn.Module`` plus example inputs into a `Runner`: a ``step()`` that runs
one forward pass on fixed inputs, and the timer to use (``events``: CUDA events on the current
stream; ``perf_counter``: host clock with device synchronisation).

| backend          | cpu          | cuda                     | how                               |
|------------------|--------------|--------------------------|-----------------------------------|
| torch            | fp32, bf16   | fp32, fp16, bf16 (Ampere+) | eager PyTorch, inference mode   |
| torch-cudagraph  | -            | fp32, fp16, bf16         | one CUDA graph captured, replayed |
| onnxruntime      | fp32, int8   | fp32, fp16               | ONNX export, CPU / CUDA provider  |
| tensorrt         | -            | fp32, fp16, bf16, int8   | engine built from the ONNX export |

fp16 on CPU is refused: PyTorch's CPU half kernels are slow or missing, so such a number would
describe no deployment. int8 on ONNX Runtime is the static QDQ model of `models.quantize`
(convolutions int8), calibrated on the harness's own input: its ranges decide accuracy, not
speed, so the latency is that of the deployed INT8 model.

Backends register themselves (`register_backend`, like search spaces): a `Backend` names the
precisions it runs per device kind, builds the `Runner`, and says what it needs installed. A
name registered twice is refused.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.latency.result import LatencyError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Backend:
    """An inference backend: ``support`` maps a device kind (cpu, cuda) to the precisions it
    runs; ``make(module, inputs, device, precision, num_threads)`` returns a `Runner`;
    ``requires(device_kind)`` raises LatencyError when a package it needs is missing."""

    name: str
    support: dict[str, tuple[str, ...]]
    make: Callable[[nn.Module, tuple[Any, ...], torch.device, str, int], Runner]
    requires: Callable[[str], None] | None = None
    hints: dict[str, str] = field(default_factory=dict)  # device kind -> refusal hint


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Add a backend; a name already registered is refused (ValueError)."""
    if backend.name in _BACKENDS:
        raise ValueError(f"latency backend {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """A registered backend; LatencyError lists the known ones."""
    if name not in _BACKENDS:
        raise LatencyError(f"unknown backend {name!r} (choose from {', '.join(_BACKENDS)})")
    return _BACKENDS[name]


def list_backends() -> list[str]:
    """Registered backend names, in registration order."""
    return list(_BACKENDS)


def parse_device(device: str) -> torch.device:
    """ "cpu", "cuda" or "cuda:N" -> torch.device, refusing CUDA when no GPU is visible."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise LatencyError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LatencyError(
                f"device {device!r}: no CUDA GPU is visible to PyTorch "
                "(torch.cuda.is_available() is False); use --device cpu"
            )
        dev = torch.device(device)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LatencyError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
        return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_support(backend: str, device_kind: str, precision: str) -> None:
    """Raise LatencyError (one line) when ``backend`` cannot run ``precision`` on the device."""
    entry = get_backend(backend)
    if precision not in PRECISIONS:
        raise LatencyError(
            f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})"
        )
    kinds = entry.support
    if device_kind not in kinds:
        raise LatencyError(f"backend {backend!r} needs a CUDA device (--device cuda)")
    if precision not in kinds[device_kind]:
        hint = entry.hints.get(device_kind, f"supported: {', '.join(kinds[device_kind])}")
        raise LatencyError(
            f"backend {backend!r} on {device_kind} cannot run precision {precision!r} ({hint})"
        )
    if entry.requires is not None:
        entry.requires(device_kind)


def _needs_tensorrt(device_kind: str) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise LatencyError(
            "backend 'tensorrt' needs the TensorRT Python package, which is not installed "
            "(pip install tensorrt); use torch, torch-cudagraph or onnxruntime"
        ) from None


def _needs_onnxruntime(device_kind: str) -> None:
    try:
        import onnxruntime
    except ImportError:
        raise LatencyError(
            "backend 'onnxruntime' needs the onnxruntime package, which is not installed"
        ) from None
    if device_kind == "cuda" and "CUDAExecutionProvider" not in (
        onnxruntime.get_available_providers()
    ):
        raise LatencyError(
            "backend 'onnxruntime' on cuda needs onnxruntime-gpu (CUDAExecutionProvider is "
            f"not available; providers: {', '.join(onnxruntime.get_available_providers())})"
        )


@dataclass
class Runner:
    """One forward pass on fixed inputs (``step``) and how to time it."""

    step: Callable[[], Any]
    timer: str  # "events" | "perf_counter"
    device: torch.device
    grad_mode: Callable[[], contextlib.AbstractContextManager[Any]] = torch.inference_mode
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    keep_alive: list[Any] = field(default_factory=list)  # buffers the step reads or writes
    inputs: Any = None  # static inputs read by ``step`` (CUDA graph: copy new data into them)
    outputs: Any = None  # static outputs written by ``step`` (CUDA graph), else None

    def close(self) -> None:
        for fn in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                fn()
        self.cleanup.clear()
        self.keep_alive.clear()
        self.inputs = self.outputs = None


def to_device(obj: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    """Move tensors (in nested lists/tuples/dicts) to ``device``; floating ones to ``dtype``."""
    if isinstance(obj, torch.Tensor):
        if dtype is not None and obj.is_floating_point():
            return obj.to(device=device, dtype=dtype)
        return obj.to(device=device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device, dtype) for k, v in obj.items()}
    return obj


def make_runner(
    module: nn.Module,
    inputs: tuple[Any, ...],
    backend: str,
    device: torch.device,
    precision: str,
    num_threads: int,
) -> Runner:
    """A `Runner` for ``module(*inputs)``; ``module`` is consumed (moved, cast, captured)."""
    check_support(backend, device.type, precision)
    return get_backend(backend).make(module, inputs, device, precision, num_threads)


def _torch_runner(module: nn.Module, inputs: tuple[Any, ...], device: torch.device,
                  precision: str, num_threads: int) -> Runner:
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise LatencyError(f"precision 'bf16' is not supported by {name}")
    dtype = DTYPES[precision]
    model = module.to(device=device, dtype=dtype).eval()
    args = to_device(inputs, device, dtype)
    timer = "events" if device.type == "cuda" else "perf_counter"
    return Runner(step=lambda: model(*args), timer=timer, device=device)


def _graph_runner(module: nn.Module, inputs: tuple[Any, ...], device: torch.device,
                  precision: str, num_threads: int) -> Runner:
    dtype = DTYPES[precision]
    model = module.to(device=device, dtype=dtype).eval()
    return _cudagraph_runner(model, to_device(inputs, device, dtype), device)


def _cudagraph_runner(model: nn.Module, args: tuple[Any, ...], device: torch.device) -> Runner:
    """Capture one forward pass in a CUDA graph (after warm-up on a side stream)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.device(device), torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # cuDNN autotuning, allocator and anchor caches before capture
                model(*args)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize(device)
        try:
            with torch.cuda.graph(graph):
                outputs = model(*args)
        except Exception as exc:
            raise LatencyError(
                f"backend 'torch-cudagraph': capturing the model failed: {exc}".splitlines()[0]
            ) from None
    runner = Runner(step=graph.replay, timer="events", device=device, grad_mode=torch.no_grad)
    runner.keep_alive += [graph, model]
    runner.inputs, runner.outputs = args, outputs
    return runner


def export_module(module: nn.Module, inputs: tuple[Any, ...], path: Path) -> None:
    """The fused fp32 model as ONNX: a ``YoloNAS`` through ``models.export.export_onnx``, any
    other single-input module through ``torch.onnx.export``."""
    if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor) or inputs[0].dim() != 4:
        raise LatencyError("the ONNX backends take a model with one image input [B, 3, H, W]")
    batch, _, height, width = inputs[0].shape
    try:
        from models.build import YoloNAS

        if isinstance(module, YoloNAS):
            from models.export import export_onnx

            export_onnx(
                module, path, image_size=(int(height), int(width)), batch=int(batch), check=False
            )
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    inputs,
                    str(path),
                    dynamo=False,
                    opset_version=17,
                    input_names=["images"],
                )
    except LatencyError:
        raise
    except Exception as exc:
        raise LatencyError(f"ONNX export failed: {str(exc).splitlines()[0]}") from None


def _onnxruntime_runner(
    module: nn.Module,
    inputs: tuple[Any, ...],
    device: torch.device,
    precision: str,
    num_threads: int,
) -> Runner:
    import numpy as np
    import onnxruntime as ort

    tmp = tempfile.TemporaryDirectory(prefix="opennac-ort-")
    path = Path(tmp.name) / "model.onnx"
    try:
        export_module(module.float().cpu().eval(), inputs, path)
        if precision == "fp16":
            path = _to_fp16(path)
        elif precision == "int8":
            path = _to_int8(path, inputs[0])
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if device.type == "cpu":
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
            providers: list[Any] = ["CPUExecutionProvider"]
        else:
            providers = [("CUDAExecutionProvider", {"device_id": device.index or 0})]
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except LatencyError:
        tmp.cleanup()
        raise
    except Exception as exc:
        tmp.cleanup()
        raise LatencyError(f"backend 'onnxruntime': {str(exc).splitlines()[0]}") from None
    name = session.get_inputs()[0].name
    dtype = torch.float16 if precision == "fp16" else torch.float32
    x = inputs[0].to(dtype=dtype)
    if device.type == "cpu":
        feed = {name: x.numpy()}
        runner = Runner(step=lambda: session.run(None, feed), timer="perf_counter", device=device)
    else:
        x = x.to(device)
        binding = session.io_binding()
        binding.bind_input(
            name,
            "cuda",
            device.index or 0,
            np.float16 if precision == "fp16" else np.float32,
            tuple(x.shape),
            x.data_ptr(),
        )
        for out in session.get_outputs():
            binding.bind_output(out.name, "cuda", device.index or 0)

        def step() -> None:
            session.run_with_iobinding(binding)

        runner = Runner(step=step, timer="perf_counter", device=device)
        runner.keep_alive += [x, binding]
    runner.keep_alive.append(session)
    runner.cleanup.append(tmp.cleanup)
    return runner


def _to_fp16(path: Path) -> Path:
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise LatencyError(f"onnxruntime fp16 needs the onnx package: {exc}") from None
    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=False)
    out = path.with_name("model_fp16.onnx")
    onnx.save(model, str(out))
    return out


def _to_int8(path: Path, x: torch.Tensor) -> Path:
    """The static QDQ INT8 model (`models.quantize`), calibrated on the harness's input and
    three perturbed copies of it (the ranges decide accuracy, not speed)."""
    import numpy as np

    from models.quantize import quantize_int8

    base = x.detach().float().cpu().numpy()
    rng = np.random.default_rng(0)
    calib = np.concatenate([base, *(np.clip(base + rng.normal(0, 8, base.shape), 0, 255)
                                    for _ in range(3))]).astype(np.float32)
    out = path.with_name("model_int8.onnx")
    try:
        quantize_int8(path, out, calib)
    except Exception as exc:  # noqa: BLE001 - the quantizer raises many types
        raise LatencyError(f"int8 quantization failed: {str(exc).splitlines()[0]}") from None
    return out


def _tensorrt_runner(
    module: nn.Module, inputs: tuple[Any, ...], device: torch.device, precision: str,
    num_threads: int = 1,
) -> Runner:  # pragma: no cover - needs TensorRT and a GPU
    """Build a TensorRT engine from the ONNX export and run it on torch-owned buffers."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    with tempfile.TemporaryDirectory(prefix="opennac-trt-") as tmp:
        path = Path(tmp) / "model.onnx"
        export_module(module.float().cpu().eval(), inputs, path)
        if precision == "int8":  # TensorRT builds INT8 from the QDQ model's scales
            path = _to_int8(path, inputs[0].cpu())
        builder = trt.Builder(logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise LatencyError(f"backend 'tensorrt': ONNX parse failed: {errors}")
        config = builder.create_builder_config()
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        elif precision == "int8":  # the QDQ layers int8, the rest may run fp16
            config.set_flag(trt.BuilderFlag.INT8)
            config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise LatencyError("backend 'tensorrt': building the engine failed")
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    context = engine.create_execution_context()
    buffers: dict[str, torch.Tensor] = {}
    x = inputs[0].to(device=device, dtype=torch.float32)
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            buffers[name] = x
        else:
            shape = tuple(engine.get_tensor_shape(name))
            dtype = {trt.float16: torch.float16, trt.float32: torch.float32}.get(
                engine.get_tensor_dtype(name), torch.float32
            )
            buffers[name] = torch.empty(shape, device=device, dtype=dtype)
        context.set_tensor_address(name, buffers[name].data_ptr())

    def step() -> None:
        context.execute_async_v3(torch.cuda.current_stream(device).cuda_stream)

    runner = Runner(step=step, timer="events", device=device)
    runner.keep_alive += [engine, context, buffers]
    return runner


register_backend(Backend("torch", {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16", "bf16")},
                         _torch_runner,
                         hints={"cpu": "fp16 is not supported on CPU; use fp32 or bf16"}))
register_backend(Backend("torch-cudagraph", {"cuda": ("fp32", "fp16", "bf16")}, _graph_runner))
register_backend(Backend(
    "onnxruntime", {"cpu": ("fp32", "int8"), "cuda": ("fp32", "fp16")}, _onnxruntime_runner,
    requires=_needs_onnxruntime,
    hints={"cpu": "ONNX Runtime on CPU runs fp32 or int8; fp16 needs CUDA"},
))
register_backend(Backend("tensorrt", {"cuda": ("fp32", "fp16", "bf16", "int8")}, _tensorrt_runner,
                         requires=_needs_tensorrt))


__all__ = [
    "Backend",
    "DTYPES",
    "PRECISIONS",
    "Runner",
    "check_support",
    "get_backend",
    "list_backends",
    "register_backend",
    "export_module",
    "make_runner",
    "parse_device",
    "to_device",
]
