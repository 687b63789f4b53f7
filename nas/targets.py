"""Latency targets: measuring a candidate on one target of an experiment.

An experiment has one or several latency targets (``latency:``, `nas.experiment`), each a
`LatencySection`: device, backend, precision, batch, image size. `measure` times the fused
model on one of them (checked against the device it names, serialized by the per-device lock,
kept quiet from this machine's trainings on a CPU, cached in ``RUN_DIR/latency_cache`` under a
key that holds the backend and precision, so each target has its own entries).
`measure_target` is the ``latency_ms`` objective's measuring function (`nas.objectives`);
`peak_memory_mb` the ``peak_mem_mb`` one's.

Example:
    >>> from nas.experiment import LatencySection
    >>> cv_threshold(LatencySection(device="cuda"))
    0.05
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from evaluators.latency.quiet import QuietCpu


def quiet_cpu(lat: Any, lock_dir: str | Path | None = None) -> QuietCpu | None:
    """The QuietCpu of a latency section when it asks for exclusive CPU measurements
    (``exclusive``; None: on for device ``cpu``)."""
    exclusive = lat.exclusive
    if exclusive is None:
        exclusive = lat.device == "cpu"
    if not exclusive:
        return None
    from evaluators.latency import default_lock_dir

    return QuietCpu(lock_dir or default_lock_dir())


def cv_threshold(lat: Any) -> float:
    """The latency section's CV threshold (None: 0.05 on a GPU, 0.10 on a CPU)."""
    if lat.cv_threshold is not None:
        return float(lat.cv_threshold)
    from nas.experiment import DEFAULT_CV_THRESHOLD

    return DEFAULT_CV_THRESHOLD.get(lat.device, 0.10)


def measure(spec: Any, lat: Any, cache_dir: str | Path, fresh: bool = False) -> Any:
    """The latency of ``spec``'s fused model on target ``lat`` (cached in ``cache_dir``).

    A timed round whose CV exceeds the target's threshold (`cv_threshold`) is re-measured, up
    to ``lat.max_repeats`` rounds; the steadiest is kept, ``stable`` false if none settles.
    ``fresh``: measure again even when cached (and replace the cached one).
    """
    from evaluators.latency import LatencyCache, cache_key, check_target
    from evaluators.latency.telemetry import device_name

    check_target(lat.target, device_name(lat.device), lat.allow_device_mismatch, lat.device)
    kwargs: dict[str, Any] = {
        "device": lat.device,
        "backend": lat.backend,
        "precision": lat.precision,
        "batch_size": lat.batch,
        "image_size": lat.image_size,
    }
    for key in ("warmup", "iters", "max_repeats"):
        if getattr(lat, key) is not None:
            kwargs[key] = getattr(lat, key)
    kwargs["cv_threshold"] = cv_threshold(lat)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    cache = LatencyCache(cache_dir)
    quiet = quiet_cpu(lat)
    if fresh:
        from evaluators.latency import measure_latency

        with quiet.measuring() if quiet else contextlib.nullcontext():
            result = measure_latency(spec, **kwargs)
        cache.put(result)
        return result
    if quiet is None:
        return cache.get_or_measure(spec, **kwargs)
    key = cache_key(spec.arch_id, device_name(lat.device), lat.backend, lat.precision,
                    lat.batch, lat.image_size)
    found = cache.get(key)
    if found is not None:  # a cached result needs no quiet machine
        return found
    with quiet.measuring():
        return cache.get_or_measure(spec, **kwargs)


def latency_fields(result: Any) -> dict[str, Any]:
    """Trials-table latency columns from a LatencyResult (unsuffixed)."""
    return {
        "latency_ms": round(float(result.median_ms), 6),
        "lat_p90_ms": round(float(result.p90_ms), 6),
        "lat_cv": round(float(result.cv), 6),
        "latency_stable": bool(result.stable),
        "lat_repeats": int(result.repeats),
        "lat_device": result.device_name,
        "lat_backend": result.backend,
        "lat_precision": result.precision,
        "lat_batch": int(result.batch_size),
        "lat_image_size": int(result.image_size),
    }


def measure_target(ctx: Any) -> dict[str, Any]:
    """The ``latency_ms`` objective: `measure` on the context's target, with its columns."""
    t = time.perf_counter()
    result = measure(ctx.spec, ctx.latency, ctx.settings.latency_cache)
    out = latency_fields(result)
    out["latency_s"] = round(time.perf_counter() - t, 3)
    return out


def peak_memory_mb(spec: Any, lat: Any) -> float:
    """Peak inference memory of ``spec``'s fused model on target ``lat``, in MB.

    CUDA: ``torch.cuda.max_memory_allocated`` over building the runner and one pass, above
    what was allocated before. CPU: measured in a fresh Python process (so no memory kept by
    earlier work is reused unseen): its peak resident size during one pass (reset through
    Linux ``/proc/self/clear_refs`` once the runner is built and freed memory is given back
    with glibc's ``malloc_trim``) above its resident size before the model was loaded: the
    weights (for ONNX Runtime: the session opening the exported or INT8 file, made in this
    process, with its arena) plus the pass's activations. About 3 s per measurement (the
    child imports torch).
    """
    import torch

    from evaluators.latency.backends import parse_device

    dev = parse_device(lat.device)
    if dev.type == "cpu":
        return _peak_in_child(spec, lat)
    from evaluators.latency.backends import make_runner
    from evaluators.latency.measure import prepare_model, synthetic_batch

    model = prepare_model(spec)[0]
    inputs = (synthetic_batch(lat.batch, lat.image_size),)
    torch.cuda.synchronize(dev)
    base = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    runner = make_runner(model, inputs, lat.backend, dev, lat.precision, 1)
    try:
        with runner.grad_mode():
            runner.step()
        torch.cuda.synchronize(dev)
        return max(0.0, (torch.cuda.max_memory_allocated(dev) - base) / 1e6)
    finally:
        runner.close()


def _peak_in_child(spec: Any, lat: Any) -> float:
    """CPU peak memory in a fresh process. ONNX Runtime: the model file (exported, and
    converted to fp16 / quantized to INT8 as the backend does) is made here, the child only
    opens the session and runs a pass; torch: the child builds the fused model."""
    import json
    import subprocess
    import sys
    import tempfile

    req: dict[str, Any] = {"backend": lat.backend, "batch": lat.batch,
                           "image_size": lat.image_size, "precision": lat.precision}
    with tempfile.TemporaryDirectory(prefix="opennac-peak-") as tmp:
        if lat.backend == "onnxruntime":
            req["onnx"] = str(_onnx_file(spec, lat, Path(tmp)))
        else:
            req["arch"] = spec.to_dict()
        out = subprocess.run([sys.executable, "-c", "from nas.targets import peak_child; "
                              "peak_child()"], input=json.dumps(req), capture_output=True,
                             text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"peak memory measurement failed: {tail}")
    return float(out.stdout.strip().splitlines()[-1])


def _onnx_file(spec: Any, lat: Any, folder: Path) -> Path:
    """The ONNX file ONNX Runtime runs for this target (as `evaluators.latency.backends`)."""
    from evaluators.latency.backends import _to_fp16, _to_int8, export_module
    from evaluators.latency.measure import prepare_model, synthetic_batch

    x = synthetic_batch(lat.batch, lat.image_size)
    path = folder / "model.onnx"
    export_module(prepare_model(spec)[0].float().cpu().eval(), (x,), path)
    if lat.precision == "int8":
        return _to_int8(path, x)
    return _to_fp16(path) if lat.precision == "fp16" else path


def peak_child() -> None:
    """The child of `peak_memory_mb` on a CPU: reads the request (JSON) on stdin, prints MB
    (the peak resident size of one pass above the size before the model was loaded)."""
    import json
    import sys

    import torch

    torch.set_num_threads(1)
    req = json.loads(sys.stdin.read())
    x = torch.zeros(req["batch"], 3, req["image_size"], req["image_size"])
    if "onnx" in req:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        _trim()
        before = _reset_peak_rss()
        session = ort.InferenceSession(req["onnx"], sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        session.run(None, feed)
        print(max(0.0, (_status_kb("VmHWM") * 1024 - before) / 1e6))
        return
    from evaluators.latency.backends import make_runner
    from evaluators.latency.measure import prepare_model
    from models.spec import ArchSpec

    spec = ArchSpec.from_dict(req["arch"])
    _trim()
    before = _reset_peak_rss()
    model = prepare_model(spec)[0]
    runner = make_runner(model, (x,), req["backend"], torch.device("cpu"), req["precision"], 1)
    del model  # the runner holds what inference needs
    _trim()  # building's transients (the unfused model) go back to the system ...
    _reset_peak_rss()  # ... and are not counted: only what inference holds and uses
    with runner.grad_mode():
        runner.step()
    print(max(0.0, (_status_kb("VmHWM") * 1024 - before) / 1e6))
    runner.close()


def _trim() -> None:
    """Collect garbage and give freed heap memory back to the system (glibc ``malloc_trim``),
    so the resident size counts live memory only."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> int:
    """Reset this process's peak resident size (Linux ``/proc/self/clear_refs`` 5) and return
    the resident size now, in bytes; where that cannot be done, the peak so far counts."""
    import contextlib

    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") * 1024


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` size in kB (0 where there is none: not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


_PREDICTORS: dict[str, Any] = {}


def predictor(path: str) -> Any:
    """The `LatencyTable` of a file (loaded once per process)."""
    if path not in _PREDICTORS:
        from evaluators.latency import LatencyTable

        _PREDICTORS[path] = LatencyTable.load(path)
    return _PREDICTORS[path]


__all__ = [
    "cv_threshold",
    "latency_fields",
    "measure",
    "measure_target",
    "peak_child",
    "peak_memory_mb",
    "predictor",
    "quiet_cpu",
]
