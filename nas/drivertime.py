"""Where a sweep's driver spends its time: start-up, per-trial bookkeeping, finish.

The driver (the process running `nas.search.run_search`) waits for trials most of the time; what
it does itself is overhead on every trial slot. `DriverClock` adds up, per session:

- ``startup``: its phases before the first trial is asked (``setup``: imports, space, data,
  study; ``ray``: starting or joining Ray; ``tuner``: until Ray Tune asks for the first trial);
- per trial: ``ask_s`` (sampling an architecture and writing its parameters to the study),
  ``tell_s`` (telling the study, user attributes), ``files_s`` (trials table, frozen file,
  progress line after each trial) and ``results_s`` (per-epoch results: the heartbeat);
- ``finish``: its phases after the last trial (``tune``: Ray Tune and Ray shut down; then
  ``table``, ``variants`` (reference latencies the trials did not measure), ``plots``).

`nas.search` records `DriverClock.summary` in run.json (``sessions[-1].timing``);
``benchmarks/search.py`` prints it.

Example:
    >>> clock = DriverClock()
    >>> with clock.phase("startup", "setup"):
    ...     pass
    >>> with clock.per_trial("ask_s"):
    ...     pass
    >>> sorted(clock.summary())
    ['finish', 'finish_s', 'per_trial', 'startup', 'startup_s', 'trials']
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

PER_TRIAL = ("ask_s", "tell_s", "files_s", "results_s")


class DriverClock:
    """Wall time of the driver's phases and per-trial steps (see the module docstring)."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {"startup": {}, "finish": {}}
        self.totals: dict[str, float] = dict.fromkeys(PER_TRIAL, 0.0)
        self.trials = 0  # trials told (reused ones included): `files` calls
        self.mark: float | None = None  # a time.monotonic() a later phase is counted from
        self._stack: list[list[Any]] = []  # open per-trial steps: [key, counted since]

    @contextlib.contextmanager
    def phase(self, group: str, name: str) -> Iterator[None]:
        """Add the block's wall time to ``group``'s phase ``name``."""
        t = time.monotonic()
        try:
            yield
        finally:
            self.add(group, name, time.monotonic() - t)

    def add(self, group: str, name: str, seconds: float) -> None:
        g = self.phases.setdefault(group, {})
        g[name] = g.get(name, 0.0) + max(0.0, seconds)

    @contextlib.contextmanager
    def per_trial(self, key: str) -> Iterator[None]:
        """Add the block's wall time to the per-trial total ``key`` (one of `PER_TRIAL`).
        Steps nest (a tell inside an ask, the files inside a tell): each second counts once,
        for the innermost step."""
        now = time.monotonic()
        if self._stack:
            outer = self._stack[-1]
            self.totals[outer[0]] += now - outer[1]
        self._stack.append([key, now])
        try:
            yield
        finally:
            now = time.monotonic()
            inner = self._stack.pop()
            self.totals[inner[0]] += now - inner[1]
            if self._stack:
                self._stack[-1][1] = now

    def summary(self) -> dict[str, Any]:
        """Plain data for run.json: phases and per-trial means (seconds, 3 decimals)."""
        n = max(self.trials, 1)
        per = {k: round(v / n, 3) for k, v in self.totals.items()}
        per["driver_s"] = round(sum(self.totals.values()) / n, 3)
        out: dict[str, Any] = {"trials": self.trials, "per_trial": per}
        for group in ("startup", "finish"):
            phases = {k: round(v, 3) for k, v in self.phases.get(group, {}).items()}
            out[group] = phases
            out[f"{group}_s"] = round(sum(phases.values()), 3)
        return out


def timed_searcher(searcher_cls: type, clock: DriverClock) -> type:
    """A subclass of the study searcher ``searcher_cls`` whose Ray Tune callbacks add their
    wall time to ``clock`` (asks, tells, results; a duplicate architecture told at once counts
    as asking); the first ask closes ``startup.tuner``."""

    class Timed(searcher_cls):  # type: ignore[misc, valid-type]
        def suggest(self, trial_id: str) -> Any:
            if clock.mark is not None:  # Ray is up and Tune asks for the first trial
                clock.add("startup", "tuner", time.monotonic() - clock.mark)
                clock.mark = None
            with clock.per_trial("ask_s"):
                return super().suggest(trial_id)

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            with clock.per_trial("results_s"):
                super().on_trial_result(trial_id, result)

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            with clock.per_trial("tell_s"):  # the after-trial files inside: files_s
                super().on_trial_complete(trial_id, result, error)

    Timed.__name__ = Timed.__qualname__ = f"Timed{searcher_cls.__name__}"
    return Timed


__all__ = ["PER_TRIAL", "DriverClock", "timed_searcher"]
