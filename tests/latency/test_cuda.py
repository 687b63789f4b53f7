"""GPU latency: CUDA-event timing, fp16, CUDA graphs, NVML telemetry (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluators.latency import LatencyTable, measure_latency, profile_blocks
from evaluators.latency.backends import make_runner
from evaluators.latency.measure import device_key, time_runner
from evaluators.latency.target import names_match
from models.build import build_model, fuse
from models.presets import get_preset

pytestmark = pytest.mark.cuda
TINY = get_preset("yolo_nas_tiny")
FAST = {"warmup": 3, "iters": 10}


class Sleep(nn.Module):
    """A GPU kernel that spins for a known number of clock cycles."""

    def __init__(self, cycles: int) -> None:
        super().__init__()
        self.cycles = cycles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.cuda._sleep(self.cycles)
        return x


def test_cuda_events_time_the_gpu_work() -> None:
    dev = torch.device("cuda", torch.cuda.current_device())
    props = torch.cuda.get_device_properties(dev)
    clock_khz = getattr(props, "clock_rate", 0) or 2_000_000  # max SM clock, kHz
    cycles = 20_000_000
    floor_ms = cycles / clock_khz  # kHz -> ms; the spin cannot end sooner at max clock
    runner = make_runner(Sleep(cycles), (torch.zeros(1, device=dev),), "torch", dev, "fp32", 1)
    assert runner.timer == "events"
    timing = time_runner(runner, warmup=1, iters=5, cv_threshold=0.5, max_repeats=1)
    assert timing.median_ms >= 0.9 * floor_ms
    assert timing.median_ms < 50 * floor_ms


class SleepParts(nn.Module):
    """Two spinning blocks under ``backbone`` (the parts `profile_blocks` times)."""

    def __init__(self, cycles: tuple[int, int]) -> None:
        super().__init__()
        self.backbone = nn.ModuleList([Sleep(c) for c in cycles])
        self.conv = nn.Conv2d(1, 1, 1)  # a parameter, so the model has a dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.backbone:
            x = block(x)
        return x


def test_block_profile_events_time_each_block() -> None:
    dev = torch.device("cuda", torch.cuda.current_device())
    clock_khz = getattr(torch.cuda.get_device_properties(dev), "clock_rate", 0) or 2_000_000
    cycles = (5_000_000, 20_000_000)
    prof = profile_blocks(
        SleepParts(cycles), torch.zeros(1, 1, 1, 1), device="cuda", warmup=1, iters=5
    )
    short, long = prof.block_ms
    assert short >= 0.9 * cycles[0] / clock_khz and long >= 0.9 * cycles[1] / clock_khz
    assert long > 2 * short  # each block its own events, not the whole pass
    assert prof.whole.median_ms >= 0.9 * (short + long)


def test_fp16_measurement_with_context() -> None:
    r = measure_latency(TINY, device="cuda", precision="fp16", image_size=128, **FAST)
    assert r.device == "cuda" and r.precision == "fp16" and r.median_ms > 0
    assert names_match(torch.cuda.get_device_name(), r.device_name)
    assert r.versions.get("torch_cuda")


def test_cuda_graph_replay_matches_eager() -> None:
    dev = torch.device("cuda", torch.cuda.current_device())
    model = fuse(build_model(get_preset("yolo_nas_pose_tiny"))).to(dev).eval()
    x = torch.rand(1, 3, 128, 128, device=dev)
    with torch.inference_mode():
        want = model(x)
    runner = make_runner(model, (x.clone(),), "torch-cudagraph", dev, "fp32", 1)
    try:
        assert runner.timer == "events" and runner.outputs is not None
        runner.inputs[0].copy_(x)
        runner.step()
        torch.cuda.synchronize()
        for got, ref in zip(runner.outputs, want, strict=True):
            assert torch.allclose(got, ref, rtol=1e-3, atol=1e-3)
    finally:
        runner.close()
    r = measure_latency(
        TINY, device="cuda", backend="torch-cudagraph", precision="fp16", image_size=128, **FAST
    )
    assert r.backend == "torch-cudagraph" and r.median_ms > 0


def test_telemetry_fields_filled() -> None:
    pytest.importorskip("pynvml")
    r = measure_latency(TINY, device="cuda", image_size=128, **FAST)
    t = r.telemetry
    for key in ("driver", "sm_clock_mhz", "mem_clock_mhz", "temperature_c", "power_w"):
        assert key in t, f"telemetry lacks {key}: {t}"
    assert t["sm_clock_mhz"] > 0 and 0 < t["temperature_c"] < 120
    assert isinstance(t["throttle_reasons"], str)
    assert "sm_clock_mhz_start" in t and "temperature_c_start" in t
    assert "NVIDIA" in r.device_name or names_match(torch.cuda.get_device_name(), r.device_name)
    assert device_key(torch.device("cuda", 0)).startswith("cuda-")


def test_onnxruntime_cuda_provider() -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without the CUDA provider")
    for precision in ("fp32", "fp16"):
        r = measure_latency(
            TINY, device="cuda", backend="onnxruntime", precision=precision, image_size=128, **FAST
        )
        assert r.backend == "onnxruntime" and r.precision == precision and r.median_ms > 0


def test_latency_table_on_gpu() -> None:
    from evaluators.latency.predictor import sample_specs
    from search_spaces import get_space

    space = get_space("yolo_nas", width_scale=0.25)
    tables = {
        backend: LatencyTable.build(
            space,
            device="cuda",
            image_size=128,
            samples=2,
            precision="fp16",
            backend=backend,
            **FAST,
        )
        for backend in ("torch", "torch-cudagraph")
    }
    table = tables["torch"]
    assert table.context["device"] == "cuda" and len(table.entries) > 0
    assert table.context["timing"] == "context"
    for p in table.fit_points:  # in-context block times are parts of the pass
        assert 0.3 * p["measured_ms"] < p["blocks_ms"] < 1.25 * p["measured_ms"]
    report = table.calibrate(samples=2)
    assert len(report.rows) == 2
    graphs = tables["torch-cudagraph"]
    assert graphs.context["timing"] == "isolated" and len(graphs.entries) == len(table.entries)
    assert graphs.predict(sample_specs(space, 1, 99)[0]) > 0
