"""Fault injection for tests and `benchmarks/faults.py`: the driver SIGKILLs itself on cue.

``OPENNAC_FAULT=POINT:NUMBER[:ARG]`` (comma-separated for several) makes the sweep's driver
process send itself SIGKILL, a real kill with no cleanup, at one of these points:

- ``sample:N[:K]``: while trial ``N`` is being sampled, after its ``K``-th parameter is stored
  (default 5): the trial is left RUNNING in the study with part of its parameters;
- ``train:N[:E]``: when trial ``N`` reports epoch ``E`` (default 1) to the driver: the trial is
  left RUNNING with its per-epoch checkpoint in ``RUN_DIR/work``;
- ``write:N``: while trial ``N``'s result is written, after its row is stored in the study but
  before the trial is told finished;
- ``table:N``: after trial ``N`` is told finished, before the trials table is written.

Only the driver reads it (trials run in Ray workers). Unset, every hook is a no-op.

``OPENNAC_EPOCH_LOG=FILE`` (read by the driver, passed to trials in their config) appends a line
``<trial number> <epoch>`` to FILE after every trained epoch of a main run: how
`benchmarks/faults.py` counts epochs trained twice.

Example:
    >>> from nas.faults import parse_faults
    >>> parse_faults("sample:3:10,train:1")
    {('sample', 3): 10, ('train', 1): 1}
"""

from __future__ import annotations

import os
import signal
from typing import Any

ENV = "OPENNAC_FAULT"
POINTS = {"sample": 5, "train": 1, "write": 0, "table": 0}  # point -> default ARG


def parse_faults(raw: str | None) -> dict[tuple[str, int], int]:
    """``{(point, trial number): arg}`` of an ``OPENNAC_FAULT`` value; ValueError when bad."""
    out: dict[tuple[str, int], int] = {}
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.split(":")
        if bits[0] not in POINTS or len(bits) not in (2, 3):
            raise ValueError(
                f"{ENV}: expected POINT:NUMBER[:ARG] with POINT one of {sorted(POINTS)}, "
                f"got {part!r}"
            )
        try:
            number = int(bits[1])
            arg = int(bits[2]) if len(bits) == 3 else POINTS[bits[0]]
        except ValueError:
            raise ValueError(f"{ENV}: NUMBER and ARG must be integers, got {part!r}") from None
        out[(bits[0], number)] = arg
    return out


def faults_from_env() -> dict[tuple[str, int], int]:
    return parse_faults(os.environ.get(ENV))


def log_epoch(path: str | None, number: int, epoch: int) -> None:
    """Append ``number epoch`` to the epoch log (no-op without one)."""
    if path:
        with open(path, "a") as fh:
            fh.write(f"{int(number)} {int(epoch)}\n")


def die() -> None:
    """SIGKILL this process (nothing after this line runs)."""
    os.kill(os.getpid(), signal.SIGKILL)


class KillingTrial:
    """An Optuna trial wrapper that SIGKILLs the process after ``after`` parameters are
    suggested (each ``suggest_*`` stores its parameter before returning)."""

    def __init__(self, trial: Any, after: int) -> None:
        self._trial = trial
        self._after = after
        self._count = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._trial, name)
        if not name.startswith("suggest_"):
            return attr

        def suggest(*args: Any, **kwargs: Any) -> Any:
            value = attr(*args, **kwargs)
            self._count += 1
            if self._count >= self._after:
                die()
            return value

        return suggest


__all__ = ["ENV", "KillingTrial", "POINTS", "die", "faults_from_env", "log_epoch",
           "parse_faults"]
