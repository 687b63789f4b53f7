"""The latency result record and the error type of the latency evaluator.

Example:
    >>> r = LatencyResult(median_ms=2.0, p90_ms=2.5, mean_ms=2.1, min_ms=1.9, cv=0.05,
    ...                   stable=True, repeats=1, samples=50, device="cpu", device_name="AMD EPYC",
    ...                   backend="torch", precision="fp32", batch_size=1, image_size=640,
    ...                   num_threads=1)
    >>> LatencyResult.from_dict(r.to_dict()) == r
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TELEMETRY_PREFIX = "tel_"
VERSION_PREFIX = "ver_"


class LatencyError(ValueError):
    """A latency request that cannot be served; the one-line message says why and what to do."""


@dataclass(frozen=True)
class LatencyResult:
    """One latency measurement of a fused model, with the context needed to trust it.

    Times are per forward pass of one batch, in milliseconds. ``cv`` is the coefficient of
    variation (standard deviation / mean) of the timed runs; ``stable`` is ``cv <=
    cv_threshold``; ``repeats`` counts the timed rounds made (an unstable round is repeated).
    ``telemetry`` holds NVML readings on GPUs (driver, clocks, temperature, power, throttle
    reasons) and load/frequency readings on CPUs; ``versions`` the library versions.
    ``started_unix`` / ``finished_unix`` bound the measurement window (under the device lock).
    """

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    cv: float
    stable: bool
    repeats: int
    samples: int  # timed runs in the reported round
    device: str  # "cpu" | "cuda"
    device_name: str  # CPU model or GPU name
    backend: str
    precision: str
    batch_size: int
    image_size: int
    num_threads: int
    warmup: int = 0
    iters: int = 0
    cv_threshold: float = 0.1
    fused: bool = True
    arch_id: str | None = None
    lock_wait_s: float = 0.0
    started_unix: float = 0.0
    finished_unix: float = 0.0
    wall_s: float = 0.0  # whole cost of the call: build, fuse, export, warm-up, timing
    telemetry: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Images per second at the median latency."""
        return 1000.0 * self.batch_size / self.median_ms if self.median_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-ready dict: telemetry keys get a ``tel_`` prefix, versions ``ver_``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("telemetry", "versions"):
                continue
            out[f.name] = getattr(self, f.name)
        for key, value in self.telemetry.items():
            out[TELEMETRY_PREFIX + key] = value
        for key, value in self.versions.items():
            out[VERSION_PREFIX + key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyResult:
        """Inverse of `to_dict`; unknown plain keys raise LatencyError naming them."""
        names = {f.name for f in dataclasses.fields(cls)} - {"telemetry", "versions"}
        kwargs: dict[str, Any] = {"telemetry": {}, "versions": {}}
        for key, value in data.items():
            if key.startswith(TELEMETRY_PREFIX):
                kwargs["telemetry"][key[len(TELEMETRY_PREFIX) :]] = value
            elif key.startswith(VERSION_PREFIX):
                kwargs["versions"][key[len(VERSION_PREFIX) :]] = value
            elif key in names:
                kwargs[key] = value
            else:
                raise LatencyError(f"latency result: unknown key {key!r}")
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise LatencyError(f"latency result: missing key {missing[0]!r}")
        return cls(**kwargs)


__all__ = ["LatencyError", "LatencyResult"]
