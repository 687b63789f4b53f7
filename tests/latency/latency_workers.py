"""Helpers imported by the latency tests and by their child processes (spawn)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.blocks import ConvBNAct, QARepVGG


class SmallNet(nn.Module):
    """A few of the project's blocks (so it can be fused), ``width`` channels wide."""

    def __init__(self, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.stem = QARepVGG(3, width, stride=2, identity=False)
        self.body = nn.Sequential(*(QARepVGG(width, width) for _ in range(depth)))
        self.head = ConvBNAct(width, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


def measure_window(barrier: Any, lock_dir: str, iters: int, queue: Any) -> None:
    """Child process: wait for the sibling, measure under the device lock, report the window."""
    torch.set_num_threads(1)
    from evaluators.latency import measure_latency

    net = SmallNet(width=16)
    barrier.wait()
    r = measure_latency(net, image_size=64, warmup=2, iters=iters, lock_dir=lock_dir)
    queue.put((r.started_unix, r.finished_unix, r.lock_wait_s))


def try_lock(lock_dir: str, timeout: float, queue: Any) -> None:
    """Child process: try to take the cpu lock within ``timeout``; report the error text."""
    from evaluators.latency import LatencyError, device_lock

    try:
        with device_lock("cpu", lock_dir=lock_dir, timeout=timeout):
            queue.put("acquired")
    except LatencyError as exc:
        queue.put(f"error: {exc}")
