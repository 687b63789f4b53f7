"""Latency on the target device: measurement, backends, telemetry, cache, lock, predictor,
report text.

Example:
    >>> from evaluators.latency import measure_latency
    >>> from models.presets import get_preset
    >>> r = measure_latency(get_preset("yolo_nas_tiny"), image_size=64, warmup=1, iters=5)
    >>> r.median_ms > 0 and r.device_name != ""
    True

See docs/latency.md for the user guide.
"""

from __future__ import annotations

from evaluators.latency.backends import (
    PRECISIONS,
    Backend,
    check_support,
    get_backend,
    list_backends,
    register_backend,
)
from evaluators.latency.blockprofile import BlockProfile, profile_blocks
from evaluators.latency.cache import LatencyCache, cache_key
from evaluators.latency.decompose import Block, spec_blocks
from evaluators.latency.lock import default_lock_dir, device_lock
from evaluators.latency.measure import measure_latency, measurement_count, prepare_model
from evaluators.latency.predictor import LatencyTable, kendall_tau
from evaluators.latency.report import CalibrationReport, format_calibration, format_result
from evaluators.latency.result import LatencyError, LatencyResult
from evaluators.latency.target import check_target
from evaluators.latency.telemetry import cpu_name, device_name, library_versions

__all__ = [
    "Backend",
    "Block",
    "BlockProfile",
    "CalibrationReport",
    "LatencyCache",
    "LatencyError",
    "LatencyResult",
    "LatencyTable",
    "PRECISIONS",
    "get_backend",
    "list_backends",
    "register_backend",
    "cache_key",
    "check_support",
    "check_target",
    "cpu_name",
    "default_lock_dir",
    "device_lock",
    "device_name",
    "format_calibration",
    "format_result",
    "kendall_tau",
    "library_versions",
    "measure_latency",
    "measurement_count",
    "prepare_model",
    "profile_blocks",
    "spec_blocks",
]
