"""Who runs a sweep in a run directory: the lock, its holder, and stop requests.

One sweep at a time per run directory: `RunLock` holds an exclusive ``flock`` on ``RUN_DIR/.lock``
(released by the kernel when its process dies, even by SIGKILL) and writes its holder (pid,
host, start time) to ``RUN_DIR/.lock.json``, so that a second ``opennac resume`` is refused
with a message naming the sweep that holds it. A holder file left by a killed sweep is taken
over with a warning.

``opennac stop RUN_DIR`` writes ``RUN_DIR/stop``; the sweep's driver polls for it (`StopWatch`)
and stops as on Ctrl+C: running trials are left to be continued by ``opennac resume`` from their
last per-epoch checkpoint.

Example:
    >>> import tempfile
    >>> from nas.runlock import RunLock
    >>> d = tempfile.mkdtemp()
    >>> with RunLock(d) as lock:
    ...     lock.holder()["pid"] > 0
    True
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"
HOLDER_NAME = ".lock.json"
STOP_NAME = "stop"


class LockHeld(RuntimeError):
    """Another sweep holds the run directory; the message names it."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (no holder record)"
    return (f"pid {holder.get('pid')} on host {holder.get('host')} "
            f"(started {holder.get('started')})")


class RunLock:
    """The run directory's lock (a context manager); `acquire` raises `LockHeld`."""

    def __init__(self, run_dir: str | Path) -> None:
        from filelock import FileLock

        self.path = Path(run_dir)
        self._lock = FileLock(str(self.path / LOCK_NAME))
        self.warning: str | None = None  # set when a stale holder record was taken over

    @property
    def holder_file(self) -> Path:
        return self.path / HOLDER_NAME

    def holder(self) -> dict[str, Any] | None:
        """The recorded holder (None when there is none or it cannot be read)."""
        try:
            return json.loads(self.holder_file.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> RunLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise LockHeld(
                f"{self.path}: a sweep is already running in this run directory: "
                f"{describe(self.holder())}; stop it with `opennac stop {self.path}` or wait"
            ) from None
        old = self.holder()
        if old:  # the lock was free: its recorded holder ended without cleaning up
            host = socket.gethostname()
            gone = ("is no longer running" if old.get("host") == host
                    and not _alive(int(old.get("pid") or 0)) else "no longer holds the lock")
            self.warning = (f"{self.path}: took over the lock of {describe(old)}, which {gone} "
                            "(a killed sweep)")
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = self.holder_file.with_name(f"{HOLDER_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(me) + "\n")
        tmp.replace(self.holder_file)
        return self

    def release(self) -> None:
        try:
            self.holder_file.unlink()
        except OSError:
            pass
        self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def request_stop(run_dir: str | Path) -> dict[str, Any] | None:
    """Ask the sweep running in ``run_dir`` to stop; returns its holder record (None when no
    sweep holds the directory, in which case nothing is written)."""
    rd = Path(run_dir)
    lock = RunLock(rd)
    from filelock import Timeout

    try:  # free lock: nothing runs here
        lock._lock.acquire(timeout=0)
    except Timeout:
        holder = lock.holder() or {}
        (rd / STOP_NAME).write_text(json.dumps({
            "requested": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "by": f"{os.getpid()}@{socket.gethostname()}",
        }) + "\n")
        return holder
    lock._lock.release()
    return None


class StopWatch:
    """A daemon thread polling ``RUN_DIR/stop`` every ``interval`` seconds; on a request it
    removes the file and calls ``on_stop`` once (the driver sends itself SIGINT)."""

    def __init__(self, run_dir: str | Path, on_stop: Any, interval: float = 1.0) -> None:
        self.file = Path(run_dir) / STOP_NAME
        self.on_stop = on_stop
        self.interval = interval
        self.requested = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opennac-stopwatch", daemon=True)

    def clear(self) -> None:
        """Forget a request left from before this session."""
        try:
            self.file.unlink()
        except OSError:
            pass

    def start(self) -> StopWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            if self.file.exists():
                self.clear()
                self.requested = True
                self.on_stop()
                return


__all__ = ["LockHeld", "RunLock", "StopWatch", "describe", "request_stop"]
