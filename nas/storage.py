"""The Optuna storage of a run directory: a journal file for new runs, SQLite for older ones.

A sweep's driver writes the study after every ask and tell (parameters, user attributes,
values). A SQLite commit per write cost about 0.9 s per trial of the quickstart space (39
parameters; ``benchmarks/search.py``); Optuna's journal storage appends one line per write to
``RUN_DIR/study.journal`` and costs about a tenth of that. Runs made before it (run format
``opennac-run/2`` and older) keep their ``study.db`` and go on with it when resumed or read.
An experiment's own ``storage`` URL (PostgreSQL, MySQL, a shared SQLite file) is used as given.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> run = Path(tempfile.mkdtemp())
    >>> type(run_storage(run)).__name__
    'JournalStorage'
    >>> (run / "study.db").touch()  # a run made before the journal: SQLite
    >>> run_storage(run).startswith("sqlite:///")
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STUDY_JOURNAL = "study.journal"  # new runs (opennac-run/3)
STUDY_DB = "study.db"  # runs made before (opennac-run/1 and /2)


def run_storage(run_dir: str | Path, configured: str | None = None) -> Any:
    """The storage to open the run's study with: ``configured`` (a URL) when given, else
    ``RUN_DIR/study.db`` as a SQLite URL when the run has one, else a `JournalStorage` on
    ``RUN_DIR/study.journal`` (created on the first write)."""
    if configured:
        return configured
    run_dir = Path(run_dir)
    db = run_dir / STUDY_DB
    if db.is_file():
        return f"sqlite:///{db.resolve()}"
    return journal_storage(run_dir / STUDY_JOURNAL)


def journal_storage(path: str | Path) -> Any:
    """Optuna's journal storage on the file ``path`` (one writer at a time: a lock file
    beside it, which works on local and network file systems)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(path).resolve()
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def existing_storage(run_dir: str | Path) -> Any | None:
    """The run's own study storage when it has one on disk (journal or SQLite), else None."""
    run_dir = Path(run_dir)
    if (run_dir / STUDY_DB).is_file() or (run_dir / STUDY_JOURNAL).is_file():
        return run_storage(run_dir)
    return None


def describe(storage: Any) -> str:
    """A storage for messages: its URL, or ``journal:PATH`` (no password: see `nas.secrets`)."""
    if isinstance(storage, str):
        return storage
    backend = getattr(storage, "_backend", None)
    path = getattr(backend, "_file_path", None)
    return f"journal:{path}" if path else type(storage).__name__


__all__ = [
    "STUDY_DB",
    "STUDY_JOURNAL",
    "describe",
    "existing_storage",
    "journal_storage",
    "run_storage",
]
