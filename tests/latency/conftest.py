"""Fixtures of the latency tests: a private lock directory, one CPU thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_and_private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("OPENNAC_LOCK_DIR", str(tmp_path / "locks"))
