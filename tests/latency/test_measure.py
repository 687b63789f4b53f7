"""measure_latency on CPU: context, statistics, fusion, backends and precision rules."""

from __future__ import annotations

import json
import statistics
import sys

import numpy as np
import pytest
import torch
from latency_workers import SmallNet

from evaluators.latency import LatencyError, LatencyResult, cpu_name, measure_latency
from evaluators.latency.decompose import spec_blocks
from evaluators.latency.measure import is_fused, summarize
from evaluators.latency.telemetry import Nvml, library_versions, throttle_names
from models.presets import get_preset

TINY = get_preset("yolo_nas_tiny")


def test_result_carries_its_context() -> None:
    r = measure_latency(TINY, image_size=64, warmup=1, iters=5, num_threads=1)
    assert r.device == "cpu" and r.device_name == cpu_name()
    assert (r.backend, r.precision, r.batch_size, r.image_size) == ("torch", "fp32", 1, 64)
    assert r.num_threads == 1 and r.samples == 5 and r.fused
    assert r.arch_id == TINY.arch_id
    assert 0 < r.min_ms <= r.median_ms <= r.p90_ms
    assert r.versions["torch"] == torch.__version__
    assert "python" in r.versions
    assert r.started_unix <= r.finished_unix and r.wall_s > 0
    flat = r.to_dict()
    assert all(not isinstance(v, (dict, list)) for v in flat.values())
    for key in ("median_ms", "p90_ms", "cv", "device_name", "backend", "ver_torch"):
        assert key in flat
    again = LatencyResult.from_dict(json.loads(json.dumps(flat)))
    assert again == r


def test_batch_and_threads_are_recorded_and_restored() -> None:
    before = torch.get_num_threads()
    r = measure_latency(TINY, image_size=64, batch_size=2, warmup=1, iters=3, num_threads=2)
    assert r.batch_size == 2 and r.num_threads == 2
    assert torch.get_num_threads() == before


def test_four_times_the_flops_measures_slower() -> None:
    small = spec_blocks(TINY, image_size=64)
    big = spec_blocks(TINY, image_size=128)
    ratio = sum(b.macs for b in big) / sum(b.macs for b in small)
    assert 3.9 < ratio < 4.1  # same network, four times the pixels
    fast = measure_latency(TINY, image_size=64, warmup=3, iters=20)
    slow = measure_latency(TINY, image_size=128, warmup=3, iters=20)
    assert slow.min_ms > fast.min_ms
    assert slow.median_ms > fast.median_ms


def test_nvml_absence_is_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` now fails
    nvml = Nvml(0)
    assert not nvml.available and nvml.sample() == {} and nvml.static() == {}
    assert nvml.name() is None
    r = measure_latency(TINY, image_size=64, warmup=1, iters=3)
    assert r.device_name == cpu_name() and r.device_name
    assert "sm_clock_mhz" not in r.telemetry and "driver" not in r.telemetry
    assert r.telemetry["cpu_count"] >= 1


def test_summary_statistics() -> None:
    xs = [5.0, 1.0, 2.0, 4.0, 3.0, 10.0, 6.0, 7.0, 8.0, 9.0, 2.5]
    t = summarize(xs)
    assert t.median_ms == statistics.median(xs)
    assert t.p90_ms == pytest.approx(float(np.percentile(xs, 90)))
    assert t.mean_ms == pytest.approx(float(np.mean(xs)))
    assert t.cv == pytest.approx(float(np.std(xs) / np.mean(xs)))
    assert t.min_ms == 1.0 and t.samples == len(xs)


def test_unstable_measurement_is_repeated_and_flagged() -> None:
    r = measure_latency(TINY, image_size=64, warmup=1, iters=4, cv_threshold=1e-9, max_repeats=3)
    assert r.repeats == 3 and not r.stable and r.cv > 1e-9
    steady = measure_latency(TINY, image_size=64, warmup=1, iters=4, cv_threshold=100.0)
    assert steady.repeats == 1 and steady.stable


def test_module_is_fused_without_being_changed() -> None:
    net = SmallNet().eval()
    assert not is_fused(net)
    r = measure_latency(net, image_size=64, warmup=1, iters=3)
    assert r.fused and r.arch_id is None
    assert not is_fused(net)  # the caller's module keeps its BatchNorms
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    assert not measure_latency(plain, image_size=64, warmup=1, iters=3).fused


def test_bf16_on_cpu_runs_and_fp16_is_refused() -> None:
    r = measure_latency(TINY, image_size=64, precision="bf16", warmup=1, iters=3)
    assert r.precision == "bf16" and r.median_ms > 0
    with pytest.raises(LatencyError, match="fp16 is not supported on CPU"):
        measure_latency(TINY, image_size=64, precision="fp16")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "tvm"}, "unknown backend 'tvm'"),
        ({"precision": "fp8"}, "unknown precision 'fp8'"),
        ({"precision": "int8"}, "cannot run precision 'int8'"),
        ({"backend": "torch-cudagraph"}, "needs a CUDA device"),
        ({"backend": "onnxruntime", "precision": "bf16"}, "fp32 or int8"),
        ({"device": "tpu"}, "expected 'cpu', 'cuda' or 'cuda:N'"),
        ({"image_size": 100}, "multiple of 32"),
        ({"iters": 1}, "iters"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_requests_raise_one_clear_line(kwargs: dict, match: str) -> None:
    with pytest.raises(LatencyError, match=match) as info:
        measure_latency(TINY, **{"image_size": 64, **kwargs})
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_refused() -> None:
    with pytest.raises(LatencyError, match="no CUDA GPU"):
        measure_latency(TINY, device="cuda")


def test_tensorrt_absent_is_a_clear_error() -> None:
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed")
    except ImportError:
        pass
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    match = "not installed" if dev == "cuda" else "needs a CUDA device"
    with pytest.raises(LatencyError, match=match):
        measure_latency(TINY, device=dev, backend="tensorrt")


def test_onnxruntime_cpu_backend() -> None:
    r = measure_latency(TINY, image_size=64, backend="onnxruntime", warmup=2, iters=5)
    assert r.backend == "onnxruntime" and r.median_ms > 0 and r.num_threads == 1
    assert "onnxruntime" in r.versions


def test_throttle_reason_names() -> None:
    assert throttle_names(0) == ""
    assert throttle_names(0x4 | 0x40) == "sw_power_cap,hw_thermal_slowdown"
    assert throttle_names(0x10000).startswith("other_0x")
    assert "torch" in library_versions()
