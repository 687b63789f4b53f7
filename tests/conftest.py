"""Shared pytest set-up: marks, private Ray temp dir, quiet Ray."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="opennac-ray-"))


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_cuda = pytest.mark.skip(reason="needs an NVIDIA GPU")
    skip_cluster = pytest.mark.skip(reason="set OPENNAC_RAY_ADDRESS to run cluster tests")
    cuda = _has_cuda()
    for item in items:
        # markers, not keywords: keywords also hold folder names (tests/cluster/)
        if item.get_closest_marker("cuda") is not None and not cuda:
            item.add_marker(skip_cuda)
        needs_cluster = item.get_closest_marker("cluster") is not None
        if needs_cluster and not os.environ.get("OPENNAC_RAY_ADDRESS"):
            item.add_marker(skip_cluster)
