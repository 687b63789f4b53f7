"""Shared fixtures for the training tests: small synthetic data sets, one thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluators.synth import make_synthetic


@pytest.fixture(autouse=True)
def _torch_setup() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def det_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny detection data set: 16 images (12 train, 4 val), 64 px; returns data.yaml."""
    return make_synthetic(tmp_path_factory.mktemp("det"), "detection", 16, 64, seed=1)


@pytest.fixture(scope="session")
def pose_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pose data set: 16 images (12 train, 4 val), 64 px; returns data.yaml."""
    return make_synthetic(tmp_path_factory.mktemp("pose"), "pose", 16, 64, seed=1)
