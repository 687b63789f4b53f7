"""Time every block of a model in context: inside whole forward passes, not one by one.

A block timed alone runs with its weights and inputs hot in the caches; inside the model the
blocks before it have evicted them, so the same block takes longer (on a CPU at 128 px,
10-60 % per block of a width-scaled model, about 20 % in total). `profile_blocks` therefore
times the blocks where they run: forward hooks around each block (see
`evaluators.latency.decompose.block_modules`) read ``time.perf_counter`` on a CPU, or record
CUDA events on a GPU (read after each pass, so nothing waits between blocks). The whole
model is then timed without hooks, as `measure_latency` does, for the overhead fit.

Example:
    >>> import torch
    >>> from models.build import build_model, fuse
    >>> from models.presets import get_preset
    >>> model = fuse(build_model(get_preset("yolo_nas_tiny")))
    >>> prof = profile_blocks(model, torch.rand(1, 3, 64, 64), warmup=1, iters=3)
    >>> len(prof.blocks) == len(prof.block_ms) and prof.whole.median_ms > 0
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from evaluators.latency.backends import DTYPES, make_runner, parse_device
from evaluators.latency.decompose import Block, block_modules, decompose
from evaluators.latency.measure import Timing, running, summarize, time_runner


@dataclass
class BlockProfile:
    """In-context block times (median over the timed passes) and the whole-model timing."""

    blocks: list[Block]  # in forward order, as `decompose` describes them
    block_ms: list[float]  # median in-context time of each block
    block_cv: list[float]  # coefficient of variation of each block's times
    whole: Timing  # the model without hooks (as `measure_latency` times it)


class _BlockClock:
    """Forward hooks that time each block of one pass (perf_counter or CUDA events)."""

    def __init__(self, modules: list[nn.Module], device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.start: list[Any] = [None] * len(modules)
        self.spent: list[float] = [0.0] * len(modules)
        self.pairs: list[list[tuple[Any, Any]]] = [[] for _ in modules]
        self.handles = []
        for i, mod in enumerate(modules):
            self.handles.append(mod.register_forward_pre_hook(self._pre(i)))
            self.handles.append(mod.register_forward_hook(self._post(i)))

    def _now(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def _pre(self, i: int) -> Any:
        def hook(mod: nn.Module, args: Any) -> None:
            self.start[i] = self._now()

        return hook

    def _post(self, i: int) -> Any:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            end = self._now()
            if self.cuda:
                self.pairs[i].append((self.start[i], end))
            else:
                self.spent[i] += (end - self.start[i]) * 1000.0

        return hook

    def read(self) -> list[float]:
        """Milliseconds each block took in the pass just run (a block called twice: the sum);
        resets for the next pass."""
        if self.cuda:
            torch.cuda.synchronize()
            self.spent = [sum(a.elapsed_time(b) for a, b in p) for p in self.pairs]
            self.pairs = [[] for _ in self.pairs]
        out, self.spent = self.spent, [0.0] * len(self.spent)
        return out

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def profile_blocks(
    model: nn.Module,
    x: Tensor,
    device: str = "cpu",
    precision: str = "fp32",
    warmup: int = 5,
    iters: int = 20,
    num_threads: int = 1,
    cv_threshold: float = 0.1,
    max_repeats: int = 3,
) -> BlockProfile:
    """Per-block in-context times of a fused ``model`` on input ``x``, plus the whole model.

    ``model`` is consumed (moved and cast to the device and precision). The caller holds the
    device lock and sets the threads; ``iters`` passes with hooks, then `time_runner` (without
    hooks, repeated rounds while the CV is over ``cv_threshold``) for the whole model.
    """
    dev = parse_device(device)
    runner = make_runner(model, (x,), "torch", dev, precision, num_threads)
    try:
        with running(runner, warmup):
            clock = _BlockClock([m for _, m in block_modules(model)], dev)
            try:
                clock.read()
                passes = []
                for _ in range(iters):
                    runner.step()
                    passes.append(clock.read())
            finally:
                clock.close()
        per_block = [summarize(list(times)) for times in zip(*passes, strict=True)]
        whole = time_runner(runner, 0, iters, cv_threshold, max_repeats)
    finally:
        runner.close()
    # make_runner moved and cast the model in place: describe its blocks as they ran
    blocks = decompose(model, x.to(device=dev, dtype=DTYPES[precision]))
    return BlockProfile(
        blocks=blocks,
        block_ms=[t.median_ms for t in per_block],
        block_cv=[t.cv for t in per_block],
        whole=whole,
    )


__all__ = ["BlockProfile", "profile_blocks"]
