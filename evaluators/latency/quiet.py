"""Quiet CPU measurements: a cross-process guard that keeps this machine's own trainings out
of a CPU latency measurement (next to the per-device lock of `evaluators.latency.lock`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class QuietCpu:
    """Keeps CPU latency measurements free of this machine's own trainings.

    Two ``flock`` files in the latency lock directory: a *room* that trainings share and a
    measurement holds alone, and a *turnstile* that a waiting measurement holds so no new
    training slips in ahead of it. A training lets a waiting measurement in at every epoch
    boundary (`breathe`), so a measurement waits at most one epoch of each running training
    and a training pauses only while a measurement runs. Processes on one machine coordinate;
    other machines are not concerned. Without ``fcntl`` (Windows) it does nothing.

    Example:
        >>> import tempfile
        >>> quiet = QuietCpu(tempfile.mkdtemp())
        >>> with quiet.training() as slot:
        ...     slot.breathe()
        >>> with quiet.measuring():
        ...     pass
    """

    def __init__(self, lock_dir: str | Path) -> None:
        self.room = Path(lock_dir) / "opennac-quiet-cpu.room.lock"
        self.turnstile = Path(lock_dir) / "opennac-quiet-cpu.turnstile.lock"
        self._fh: Any = None

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        with _flock(self.turnstile, shared=False), _flock(self.room, shared=False):
            yield

    @contextlib.contextmanager
    def training(self) -> Iterator[QuietCpu]:
        self._enter()
        try:
            yield self
        finally:
            self._leave()

    def breathe(self) -> None:
        """At an epoch boundary: let a waiting measurement run, then carry on."""
        if self._fh is not None:
            self._leave()
            self._enter()

    def _enter(self) -> None:
        if fcntl is None:
            return
        with _flock(self.turnstile, shared=False):
            pass  # wait behind a measurement that is waiting or running
        self.room.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.room, "a+")  # noqa: SIM115 - held across calls
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_SH)

    def _leave(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


@contextlib.contextmanager
def _flock(path: Path, shared: bool) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = ["QuietCpu"]
