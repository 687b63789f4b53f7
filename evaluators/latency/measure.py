"""`measure_latency`: time a fused model on a device, with its context.

How a measurement runs: the model is fused (see `prepare_model`), moved to the device and
precision, and fed a fixed synthetic batch. Under the device lock (one measurement at a time per
device, across processes) it runs ``warmup`` passes, then ``iters`` timed passes, each timed by
its runner's clock (`evaluators.latency.backends.Runner.timer`): CUDA events around the pass
for the torch and TensorRT backends on a GPU, ``time.perf_counter`` with a device
synchronisation for ONNX Runtime (which does not run on PyTorch's stream) and on a CPU; every
pass starts from an idle device. A round whose coefficient of variation exceeds ``cv_threshold``
is repeated, up to ``max_repeats`` rounds; the steadiest round is reported, flagged unstable if
even that one is over the threshold.

Example:
    >>> from models.presets import get_preset
    >>> r = measure_latency(get_preset("yolo_nas_tiny"), image_size=64, warmup=1, iters=3)
    >>> r.device, r.backend, r.precision, r.samples
    ('cpu', 'torch', 'fp32', 3)
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.latency.backends import Runner, check_support, make_runner, parse_device
from evaluators.latency.lock import HeldLock, device_lock
from evaluators.latency.result import LatencyError, LatencyResult
from evaluators.latency.telemetry import (
    Nvml,
    cpu_name,
    cpu_telemetry,
    library_versions,
)

_COUNT = {"measurements": 0}


def measurement_count() -> int:
    """How many timed measurements this process has made (cache tests read it)."""
    return _COUNT["measurements"]


@dataclass(frozen=True)
class Timing:
    """Statistics of the reported round, in milliseconds."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    cv: float
    samples: int
    repeats: int = 1
    stable: bool = True


def summarize(times_ms: list[float]) -> Timing:
    """Median, p90 (linear interpolation), mean, min and coefficient of variation."""
    if not times_ms:
        raise LatencyError("no timed runs to summarize")
    xs = sorted(times_ms)
    mean = statistics.fmean(xs)
    std = statistics.pstdev(xs) if len(xs) > 1 else 0.0
    pos = 0.9 * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    p90 = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return Timing(
        median_ms=statistics.median(xs),
        p90_ms=p90,
        mean_ms=mean,
        min_ms=xs[0],
        cv=std / mean if mean > 0 else 0.0,
        samples=len(xs),
    )


def is_fused(module: nn.Module) -> bool:
    """A module counts as fused when it says so (``fused = True``, set by ``models.build.fuse``)
    or holds no BatchNorm layer."""
    if getattr(module, "fused", False) is True:
        return True
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def prepare_model(model_or_spec: Any) -> tuple[nn.Module, str | None, bool]:
    """(fused eval-mode module on its original device, arch_id or None, fused?).

    An ArchSpec is built and fused. A module is never changed: a fused one is copied; a
    ``YoloNAS`` is fused with ``models.build.fuse``; any other module is copied and fused with
    ``models.blocks.fuse_modules`` (the project's ConvBNAct / QARepVGG blocks). A module that
    still holds BatchNorm after that is measured as it is and reported with ``fused=False``.
    """
    from models.spec import ArchSpec

    if isinstance(model_or_spec, ArchSpec):
        from models.build import build_model, fuse

        return fuse(build_model(model_or_spec)), model_or_spec.arch_id, True
    if not isinstance(model_or_spec, nn.Module):
        raise LatencyError(
            f"measure_latency: expected an ArchSpec or an nn.Module, got "
            f"{type(model_or_spec).__name__}"
        )
    spec = getattr(model_or_spec, "spec", None)
    arch_id = spec.arch_id if isinstance(spec, ArchSpec) else None
    if is_fused(model_or_spec):
        return copy.deepcopy(model_or_spec).eval(), arch_id, True
    if isinstance(spec, ArchSpec):
        from models.build import fuse

        fused = fuse(model_or_spec)
    else:
        from models.blocks import fuse_modules

        fused = copy.deepcopy(model_or_spec).eval()
        fuse_modules(fused)
    return fused, arch_id, is_fused(fused)


def device_key(dev: torch.device) -> str:
    """The lock name of a device: "cpu", or "cuda-<uuid>" (else "cuda-<index>")."""
    if dev.type != "cuda":
        return "cpu"
    uuid = None
    with contextlib.suppress(Exception):
        uuid = getattr(torch.cuda.get_device_properties(dev), "uuid", None)
    return f"cuda-{uuid}" if uuid is not None else f"cuda-{dev.index or 0}"


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set PyTorch's intra-op threads for the block (restored after)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def cudnn_benchmark(on: bool) -> Iterator[None]:
    """Turn cuDNN autotuning on for the block (GPU measurements: deployments tune too)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on or before
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


@contextlib.contextmanager
def measuring(
    dev: torch.device,
    threads: int | None,
    lock_dir: str | Path | None = None,
    lock_timeout: float | None = None,
    lock: bool = True,
) -> Iterator[HeldLock | None]:
    """The setting of a timed measurement on ``dev``: PyTorch threads, cuDNN autotuning on a
    GPU and (with ``lock``) the device's inter-process lock, whose `HeldLock` it yields."""
    locker = (
        device_lock(device_key(dev), lock_dir, lock_timeout)
        if lock
        else contextlib.nullcontext(None)
    )
    with torch_threads(threads), cudnn_benchmark(dev.type == "cuda"), locker as held:
        yield held


def synthetic_batch(batch_size: int, image_size: int) -> torch.Tensor:
    """The fixed input of every measurement: uniform noise, seed 0, on the CPU."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch_size, 3, image_size, image_size, generator=gen)


@contextlib.contextmanager
def running(runner: Runner, warmup: int) -> Iterator[None]:
    """Hold the runner's device and grad mode for the block, after ``warmup`` steps (the
    device synchronised after them)."""
    with contextlib.ExitStack() as stack:
        if runner.device.type == "cuda":
            stack.enter_context(torch.cuda.device(runner.device))
        stack.enter_context(runner.grad_mode())
        for _ in range(warmup):
            runner.step()
        if runner.device.type == "cuda":
            torch.cuda.synchronize(runner.device)
        yield


def _time_round(runner: Runner, iters: int) -> list[float]:
    dev = runner.device
    times: list[float] = []
    if runner.timer == "events":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        for _ in range(iters):
            start.record()
            runner.step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return times
    cuda = dev.type == "cuda"
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        runner.step()
        if cuda:
            torch.cuda.synchronize(dev)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def time_runner(
    runner: Runner, warmup: int, iters: int, cv_threshold: float, max_repeats: int
) -> Timing:
    """Warm up, then timed rounds until one is steady (cv <= threshold) or rounds run out."""
    best: Timing | None = None
    rounds = 0
    with running(runner, warmup):
        while rounds < max_repeats:
            rounds += 1
            stats = summarize(_time_round(runner, iters))
            if best is None or stats.cv < best.cv:
                best = stats
            if stats.cv <= cv_threshold:
                break
    assert best is not None
    return Timing(**{**best.__dict__, "repeats": rounds, "stable": best.cv <= cv_threshold})


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LatencyError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def measure_latency(
    model_or_spec: Any,
    device: str = "cpu",
    precision: str = "fp32",
    batch_size: int = 1,
    image_size: int = 640,
    backend: str = "torch",
    warmup: int = 10,
    iters: int = 50,
    cv_threshold: float = 0.1,
    max_repeats: int = 3,
    num_threads: int | None = None,
    lock: bool = True,
    lock_dir: str | Path | None = None,
    lock_timeout: float | None = None,
) -> LatencyResult:
    """Latency of the fused model of ``model_or_spec`` (an ArchSpec or an ``nn.Module``).

    ``device``: "cpu", "cuda" or "cuda:N". ``backend``: torch, torch-cudagraph, onnxruntime,
    tensorrt (see `evaluators.latency.backends`). ``num_threads``: PyTorch / ONNX Runtime
    intra-op threads on CPU (default 1: trials run side by side); on GPU it is left as it is.
    ``lock``: take the per-device inter-process lock (in ``lock_dir``) around the measurement.
    Raises LatencyError (one line) for a request that cannot be served.
    """
    t_wall = time.perf_counter()
    dev = parse_device(device)
    check_support(backend, dev.type, precision)
    _check_int("batch_size", batch_size, 1)
    _check_int("image_size", image_size, 32)
    if image_size % 32:
        raise LatencyError(f"image_size: expected a multiple of 32, got {image_size}")
    _check_int("warmup", warmup, 0)
    _check_int("iters", iters, 2)
    _check_int("max_repeats", max_repeats, 1)
    if num_threads is not None:
        _check_int("num_threads", num_threads, 1)
    if not isinstance(cv_threshold, (int, float)) or cv_threshold <= 0:
        raise LatencyError(f"cv_threshold: expected a positive number, got {cv_threshold!r}")

    module, arch_id, fused = prepare_model(model_or_spec)
    threads = (num_threads or 1) if dev.type == "cpu" else num_threads
    x = synthetic_batch(batch_size, image_size)
    nvml = Nvml(dev.index or 0) if dev.type == "cuda" else None
    try:
        # the GPU's name from NVML, else from PyTorch (as `telemetry.gpu_name`)
        name = (nvml.name() or torch.cuda.get_device_name(dev.index or 0)) if nvml else cpu_name()
        telemetry: dict[str, Any] = nvml.static() if nvml else {}
        with measuring(dev, threads, lock_dir, lock_timeout, lock) as held:
            started = time.time()
            runner = make_runner(module, (x,), backend, dev, precision, threads or 1)
            try:
                before = {**cpu_telemetry(), **(nvml.sample() if nvml else {})}
                timing = time_runner(runner, warmup, iters, cv_threshold, max_repeats)
                after = {**cpu_telemetry(), **(nvml.sample() if nvml else {})}
            finally:
                runner.close()
            finished = time.time()
            used_threads = torch.get_num_threads()
        _COUNT["measurements"] += 1
    finally:
        if nvml:
            nvml.close()
    telemetry.update(after)
    for key in ("sm_clock_mhz", "temperature_c", "loadavg_1m"):
        if key in before:
            telemetry[key + "_start"] = before[key]
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return LatencyResult(
        median_ms=timing.median_ms,
        p90_ms=timing.p90_ms,
        mean_ms=timing.mean_ms,
        min_ms=timing.min_ms,
        cv=timing.cv,
        stable=timing.stable,
        repeats=timing.repeats,
        samples=timing.samples,
        device=dev.type,
        device_name=str(name),
        backend=backend,
        precision=precision,
        batch_size=batch_size,
        image_size=image_size,
        num_threads=threads if threads is not None else used_threads,
        warmup=warmup,
        iters=iters,
        cv_threshold=float(cv_threshold),
        fused=fused,
        arch_id=arch_id,
        lock_wait_s=held.wait_s if held is not None else 0.0,
        started_unix=started,
        finished_unix=finished,
        wall_s=time.perf_counter() - t_wall,
        telemetry=telemetry,
        versions=library_versions(("tensorrt",) if backend == "tensorrt" else ()),
    )


__all__ = [
    "Timing",
    "cudnn_benchmark",
    "device_key",
    "is_fused",
    "measure_latency",
    "measurement_count",
    "measuring",
    "prepare_model",
    "running",
    "summarize",
    "synthetic_batch",
    "time_runner",
    "torch_threads",
]
