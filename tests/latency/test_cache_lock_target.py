"""Latency cache, the inter-process device lock, and the target-device check."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

import pytest
from latency_workers import measure_window, try_lock

from evaluators.latency import (
    LatencyCache,
    LatencyError,
    cache_key,
    check_target,
    cpu_name,
    device_lock,
    measurement_count,
)
from evaluators.latency.target import names_match
from models.presets import get_preset

TINY = get_preset("yolo_nas_tiny")
FAST = {"warmup": 1, "iters": 3}


def test_cache_answers_the_second_request_without_measuring(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "cache")
    n0 = measurement_count()
    first = cache.get_or_measure(TINY, image_size=64, **FAST)
    assert measurement_count() == n0 + 1
    second = cache.get_or_measure(TINY, image_size=64, **FAST)
    assert measurement_count() == n0 + 1  # no new measurement
    assert second == first and (cache.hits, cache.misses) == (1, 1)
    # a fresh cache object on the same directory (another process, a resumed run) hits too
    other = LatencyCache(tmp_path / "cache")
    assert other.get_or_measure(TINY, image_size=64, **FAST) == first
    assert measurement_count() == n0 + 1 and len(other) == 1
    # another context is another key
    other.get_or_measure(TINY, image_size=96, **FAST)
    assert measurement_count() == n0 + 2 and len(other) == 2
    key = cache_key(TINY.arch_id, cpu_name(), "torch", "fp32", 1, 64)
    assert other.get(key) == first


def test_unreadable_cache_entry_is_measured_again(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path)
    first = cache.get_or_measure(TINY, image_size=64, **FAST)
    key = cache_key(TINY.arch_id, first.device_name, "torch", "fp32", 1, 64)
    cache.path(key).write_text("{not json")
    n0 = measurement_count()
    with pytest.warns(UserWarning, match="ignoring unreadable"):
        again = cache.get_or_measure(TINY, image_size=64, **FAST)
    assert measurement_count() == n0 + 1 and again.arch_id == TINY.arch_id
    assert cache.get(key) == again


@pytest.mark.slow
def test_lock_serializes_two_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    lock_dir = str(tmp_path / "locks")
    procs = [
        ctx.Process(target=measure_window, args=(barrier, lock_dir, 500, queue)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    windows = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (s1, e1, _), (s2, e2, wait2) = windows
    # real windows, not empty ones (500 iterations: about 0.15 s each on a fast idle core;
    # 150 once gave 0.0495 s and failed a 0.05 s bound that only meant "not empty")
    assert e1 - s1 > 0.02 and e2 - s2 > 0.02
    assert e1 <= s2, f"measurement windows overlap: {windows}"
    assert wait2 > 0.0  # the second one waited for the first


def test_lock_timeout_names_the_lock(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with device_lock("cpu", lock_dir=tmp_path) as held:
        assert held.path == tmp_path / "cpu.lock"
        p = ctx.Process(target=try_lock, args=(str(tmp_path), 0.2, queue))
        p.start()
        answer = queue.get(timeout=120)
        p.join(timeout=60)
    assert answer.startswith("error:") and "cpu.lock" in answer
    p = ctx.Process(target=try_lock, args=(str(tmp_path), 5.0, queue))
    p.start()
    assert queue.get(timeout=120) == "acquired"  # released after the with-block
    p.join(timeout=60)


@pytest.mark.parametrize(
    ("target", "name", "ok"),
    [
        ("NVIDIA T4", "Tesla T4", True),
        ("tesla t4", "NVIDIA T4", True),
        ("H100", "NVIDIA H100 80GB HBM3", True),
        ("NVIDIA H100", "NVIDIA H100 PCIe", True),
        ("A10", "NVIDIA A100-SXM4-80GB", False),
        ("NVIDIA L4", "NVIDIA L40S", False),
        ("T4", "NVIDIA H100 80GB HBM3", False),
        ("AMD EPYC", "AMD EPYC 7B13 64-Core Processor", True),
        ("cpu", "AMD EPYC 7B13 64-Core Processor", True),
        ("cpu", "NVIDIA H100 80GB HBM3", False),
        ("gpu", "Tesla T4", True),
    ],
)
def test_target_names(target: str, name: str, ok: bool) -> None:
    assert names_match(target, name) is ok


def test_check_target_refuses_or_warns() -> None:
    assert check_target(None, "anything")
    assert check_target("cpu", "Intel(R) Xeon(R) Gold 6230", device="cpu")
    with pytest.raises(LatencyError, match="does not match") as info:
        check_target("NVIDIA T4", "NVIDIA H100 80GB HBM3")
    assert "'NVIDIA T4'" in str(info.value) and "H100" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_target("NVIDIA T4", "NVIDIA H100 80GB HBM3", allow_mismatch=True) is False
    assert any("does not match" in str(w.message) for w in caught)
