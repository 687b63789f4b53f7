"""One measurement at a time per device, across processes (Ray trials run side by side).

The lock is a file lock (``filelock``) named after the device in a lock directory: by default
``$OPENNAC_LOCK_DIR`` or ``~/.cache/opennac/locks``. Processes on the same machine that share the
directory take turns; a measurement never overlaps another one on the same device.

Example:
    >>> import tempfile
    >>> with device_lock("cpu", lock_dir=tempfile.mkdtemp()) as held:
    ...     held.wait_s >= 0
    True
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evaluators.latency.result import LatencyError


def default_lock_dir() -> Path:
    """``$OPENNAC_LOCK_DIR`` or ``~/.cache/opennac/locks``."""
    env = os.environ.get("OPENNAC_LOCK_DIR")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "opennac" / "locks"


def lock_path(device_key: str, lock_dir: str | Path | None = None) -> Path:
    """The lock file of a device key ("cpu", "cuda-GPU-1234...")."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device_key).strip("_") or "device"
    return Path(lock_dir if lock_dir is not None else default_lock_dir()) / f"{safe}.lock"


@dataclass
class HeldLock:
    """What `device_lock` yields: the lock file and how long it took to get it."""

    path: Path
    wait_s: float


@contextlib.contextmanager
def device_lock(
    device_key: str, lock_dir: str | Path | None = None, timeout: float | None = None
) -> Iterator[HeldLock]:
    """Hold the inter-process lock of ``device_key`` for the ``with`` block.

    ``timeout`` (seconds, ``None`` = wait for ever) bounds the wait; running out raises
    LatencyError naming the lock file.
    """
    path = lock_path(device_key, lock_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatencyError(f"cannot create the lock directory {path.parent}: {exc}") from None
    t0 = time.perf_counter()
    with _file_lock(path, timeout):
        yield HeldLock(path=path, wait_s=time.perf_counter() - t0)


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float | None) -> Iterator[None]:
    try:
        import filelock
    except ImportError:  # pragma: no cover - filelock comes with torch
        with _fcntl_lock(path, timeout):
            yield
        return
    lock = filelock.FileLock(str(path), timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LatencyError(
            f"device lock {path} still held by another process after {timeout} s "
            "(another measurement is running; wait or raise the timeout)"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _fcntl_lock(path: Path, timeout: float | None) -> Iterator[None]:  # pragma: no cover
    import fcntl

    deadline = None if timeout is None else time.monotonic() + timeout
    with open(path, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() > deadline:
                    raise LatencyError(
                        f"device lock {path} still held by another process after {timeout} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = ["HeldLock", "default_lock_dir", "device_lock", "lock_path"]
