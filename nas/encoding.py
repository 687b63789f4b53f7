"""Which parameter encoding a run's study speaks (old runs keep theirs on resume).

Runs made before the shared hidden-width index stored each trial's hidden channels under
per-tier names (``<pos>_hidden_t_<tier>``, channels); new runs store ``<pos>_hidden_idx``
(`search_spaces.yolo_nas`). Optuna cannot rename the parameters of finished trials, and a study
that mixes both encodings would leave the hidden widths out of every sampler's model again, so
a resumed old study keeps sampling with the old names (same architectures, same arch_ids): the
session goes on and says so. Replaying old parameters (trials table, arch files, report,
variants) needs nothing from here: `YoloNasSpace.replay` reads both encodings.

Example:
    >>> import optuna
    >>> from search_spaces import get_space
    >>> study = optuna.create_study()
    >>> space, note = space_for_study(get_space("yolo_nas"), study, "runs/x")
    >>> space.encoding, note
    ('index', None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search_spaces.yolo_nas import is_legacy


def study_encoding(study: Any) -> str:
    """``tier`` when any trial of ``study`` has old per-tier parameter names, else ``index``."""
    for trial in study.get_trials(deepcopy=False):
        if is_legacy(trial.params):
            return "tier"
    return "index"


def space_for_study(space: Any, study: Any, run_dir: str | Path) -> tuple[Any, str | None]:
    """``space`` in the encoding of ``study``'s trials, and a note for the user when that is the
    old one (None otherwise)."""
    if not hasattr(space, "with_encoding") or study_encoding(study) == "index":
        return space, None
    note = (
        f"run {run_dir}: its study uses the old per-tier hidden-width names "
        f"(<pos>_hidden_t_<tier>), kept for this session so its trials stay comparable; the "
        f"sampler cannot model those widths (they are drawn at random). For the new encoding "
        f"start a new run (opennac search EXPERIMENT --name NEW)"
    )
    return space.with_encoding("tier"), note


__all__ = ["space_for_study", "study_encoding"]
