"""Shared set-up of the search tests: one local Ray (2 CPUs) per session, tiny experiments."""

from __future__ import annotations

import os
from typing import Any

import pytest
from _tiny import tiny_experiment  # tests/_tiny.py (tests/ is on sys.path via tests/conftest.py)


@pytest.fixture(scope="session")
def tiny() -> Any:
    """`tiny_experiment` as a fixture (test modules need not import conftest)."""
    return tiny_experiment


@pytest.fixture(scope="session")
def ray_local() -> Any:
    """A local Ray with 2 CPUs shared by every sweep of the session (saves its start-up)."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
        started = True
    yield ray
    if started:
        ray.shutdown()
