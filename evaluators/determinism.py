"""Deterministic training: the same run, with the same seed, gives the same AP.

What makes a short training run repeatable on one machine (see docs/search.md, "Seed noise and
determinism"): a fixed number of CPU threads (the trainer's ``num_threads``; a reduction split
over a different number of threads sums in a different order), a seeded data order and seeded
augmentations (`evaluators.data.make_loader`, ``CocoDataset(seed=...)``), a seeded
initialisation (``torch.manual_seed``) and, where PyTorch offers them, deterministic kernels
(`deterministic_algorithms`). What still varies across machines: the CPU's vector instructions
(AVX2, AVX-512, NEON) and the library versions choose different kernels whose floating-point
sums round differently, and a 30-epoch training amplifies those last-bit differences.

Example:
    >>> import torch
    >>> before = torch.are_deterministic_algorithms_enabled()
    >>> with deterministic_algorithms(True):
    ...     torch.are_deterministic_algorithms_enabled()
    True
    >>> torch.are_deterministic_algorithms_enabled() == before
    True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def deterministic_algorithms(on: bool) -> Iterator[None]:
    """Within the block, ask PyTorch for deterministic kernels (``on``); restored after.

    Operations without a deterministic implementation warn instead of failing
    (``warn_only``); cuDNN autotuning is off (it may pick another algorithm per run) and cuBLAS
    gets the workspace setting its deterministic mode needs, when not set already.
    """
    if not on:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic = before[2]
        torch.backends.cudnn.benchmark = before[3]


__all__ = ["deterministic_algorithms"]
