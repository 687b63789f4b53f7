"""Shared helpers for the models tests: deterministic, single-threaded torch."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_setup() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture
def randomize_bn():
    """A function that gives every BatchNorm of a model non-trivial statistics."""
    return _randomize_bn


def _randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine terms (so fusion is exercised)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
