"""The run directory of a sweep: layout, run.json, the trials table, frozen files.

Layout (docs/internals.md): ``run.json``, ``experiment.yaml``, ``study.journal`` (runs before
format 3: ``study.db``), ``ray/``,
``trials.csv`` + ``trials.parquet``, ``archs/<arch_id[:12]>.yaml``, ``pareto.csv``,
``variants/<name>.yaml`` (and ``variants/<label>/`` sets), ``weights/`` (kept trained weights,
`nas.weights`), ``final/`` (final trainings), ``plots/``, ``latency_cache/``, ``data/``
(synthetic data) and ``.lock`` (held while a sweep runs). A run directory is never overwritten.

Example:
    >>> import tempfile
    >>> from nas.rundir import RunDir
    >>> rd = RunDir(tempfile.mkdtemp())
    >>> rd.trials_csv.name
    'trials.csv'
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RUN_FORMAT = "opennac-run/3"
# /2: the study in SQLite (study.db; /3: study.journal, `nas.storage`); /1: also one latency
# target (no ``@target`` columns, no ``variants/<target>/`` sets). Both still read and resumed.
OLD_RUN_FORMATS = ("opennac-run/2", "opennac-run/1")

# The trials table, in order (docs/internals.md); param_<name> columns follow `number`..`arch_id`.
STATUSES = ("COMPLETE", "STOPPED", "FAIL", "INFEASIBLE", "RUNNING")
HEAD_COLUMNS = ("number", "status", "arch_id")
# A trial's metrics with their fidelity and latency context (what frozen files carry).
METRIC_COLUMNS = (
    "ap",
    "ap50",
    "box_ap",
    "latency_ms",
    "params",
    "gflops",
    "epochs",
    "epochs_done",
    "image_size",
    "train_images",
    "val_images",
    "seed",
    "recipe",  # how the candidate was trained: models.recipe.Recipe.label
    "oks_area_factor",  # pose: the recipe's OKS scale, or the experiment's choice
    "init",  # how the candidate started: "scratch" or "parent" (fidelity.init, nas.parent)
    "inherited_fraction",  # of its parameters, the share inherited from the parent
    "distill_weight",  # fidelity.distill.weight when the parent also taught it
    "lat_device",
    "lat_backend",
    "lat_precision",
    "lat_batch",
    "lat_image_size",
    "lat_p90_ms",
    "lat_cv",
    # a trial continued after a kill: the epochs its checkpoint had when it resumed (None: it
    # trained in one go)
    "resumed_from_epoch",
)
NOISE_COLUMNS = (
    "ap_sd", "ap_seeds", "repeats", "ap_ci", "threads", "latency_stable", "lat_repeats",
    "train_loss",
)  # fmt: skip
COLUMNS = (
    *METRIC_COLUMNS[:8],  # ap .. epochs_done
    "full_fidelity",
    *METRIC_COLUMNS[8:],  # image_size .. lat_cv
    "c_latency_ms",
    "c_params",
    "c_gflops",
    "feasible",
    "reused_from",
    "wall_s",
    "arch_file",
    "error",
    "failure",  # a FAIL's kind: exception, nan, oom, worker (lost), injected
    # Beyond the contract's list: where the time went and where the trial came from.
    "train_s",
    "latency_s",
    "predicted_latency_ms",
    "reference",
    "session",
    # Score noise (nas.noise): per-seed APs, their sd and count, the AP interval's half-width;
    # training threads; whether the latency measurement settled and in how many rounds.
    *NOISE_COLUMNS,
)
_INT = ("number", "epochs", "epochs_done", "image_size", "train_images", "val_images", "seed",
        "reused_from", "session", "repeats", "threads", "resumed_from_epoch")
_BOOL = ("full_fidelity", "feasible")
_TEXT = ("status", "arch_id", "recipe", "init", "arch_file", "error", "failure", "reference",
         "ap_seeds")


def _kind(column: str) -> str:
    from nas.objectives import column_kind

    return column_kind(column) or ("int" if column in _INT else "bool" if column in _BOOL
                                   else "text" if column in _TEXT else "float")


# The one schema of the trials table: {column: dtype} (int, float, bool, text), the
# objectives' columns typed by their registry entries (`nas.objectives`). Both the writer
# (`trials_frame`) and the reader (`nas.results.normalize_trials`) use it.
SCHEMA: dict[str, str] = {c: _kind(c) for c in (*HEAD_COLUMNS, *COLUMNS)}


def column_kind(column: str) -> str | None:
    """The dtype of a trials-table column: the fixed ones, ``param_*`` (None: as sampled),
    any registered objective's columns with or without ``@target``, and their ``c_*``
    constraint columns; None for a key that is no column."""
    from nas.objectives import column_kind as objective_kind

    if column in SCHEMA:
        return SCHEMA[column]
    if column.startswith("c_") and objective_kind(column[2:]) is not None:
        return "float"
    base = column.partition("@")[0]
    if "@" in column and base in SCHEMA:
        return SCHEMA[base]
    return objective_kind(column)


def extra_columns(columns: Iterable[str]) -> list[str]:
    """Columns beyond the fixed table that the schema knows (per-target latency, objectives
    registered elsewhere, their constraints), in first-seen order."""
    out: list[str] = []
    for c in columns:
        if c not in SCHEMA and not c.startswith("param_") and column_kind(c) is not None \
                and c not in out:
            out.append(c)
    return out


# The user attribute holding a finished trial's row (`nas.searcher`); older runs stored one
# attribute per column, which `trial_row` reads as well.
ROW_ATTR = "row"


class RunDirError(ValueError):
    """A run directory that cannot be created or opened; the message names the path."""


class RunDir:
    """Paths and files of one run directory (nothing is created until asked)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- paths ------------------------------------------------------------------------------------
    run_json = property(lambda self: self.path / "run.json")
    experiment_yaml = property(lambda self: self.path / "experiment.yaml")
    study_db = property(lambda self: self.path / "study.db")
    ray_dir = property(lambda self: self.path / "ray")
    trials_csv = property(lambda self: self.path / "trials.csv")
    trials_parquet = property(lambda self: self.path / "trials.parquet")
    archs_dir = property(lambda self: self.path / "archs")
    pareto_csv = property(lambda self: self.path / "pareto.csv")
    variants_dir = property(lambda self: self.path / "variants")
    plots_dir = property(lambda self: self.path / "plots")
    latency_cache = property(lambda self: self.path / "latency_cache")
    data_dir = property(lambda self: self.path / "data")
    lock_file = property(lambda self: self.path / ".lock")

    @property
    def name(self) -> str:
        return str(self.meta().get("name") or self.path.name)

    # -- creating and opening ---------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, name: str) -> RunDir:
        """Make a new run directory; an existing one is an error (never overwritten)."""
        rd = cls(path)
        if rd.path.exists() and any(rd.path.iterdir()):
            raise RunDirError(
                f"{rd.path}: run directory exists; continue it with `opennac resume {rd.path}` "
                "(or --resume), or choose another --name"
            )
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.write_meta(
            {
                "format": RUN_FORMAT,
                "name": name,
                "created": now_iso(),
                "status": "created",
                "code_version": code_version(),
                "hv_reference": None,
                "sessions": [],
            }
        )
        return rd

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (checks run.json)."""
        rd = cls(path)
        if not rd.run_json.is_file():
            raise RunDirError(f"{rd.path}: not a run directory (no run.json)")
        meta = rd.meta()
        if meta.get("format") != RUN_FORMAT and meta.get("format") not in OLD_RUN_FORMATS:
            raise RunDirError(
                f"{rd.run_json}: format: expected {RUN_FORMAT!r}, got {meta.get('format')!r}"
            )
        if not rd.experiment_yaml.is_file():
            raise RunDirError(f"{rd.path}: experiment.yaml is missing")
        from nas.safepath import UnsafeNameError, check_name

        try:  # the name becomes Ray Tune's folder: a run directory from elsewhere may lie
            check_name(rd.name, f"{rd.run_json}: name")
        except UnsafeNameError as exc:
            raise RunDirError(str(exc)) from None
        return rd

    # -- run.json ---------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.run_json.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{self.run_json}: not valid JSON ({exc})") from None

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        from nas.secrets import mask

        text = json.dumps(mask(dict(meta)), indent=2, default=str)  # no password in a URL
        _atomic_write(self.run_json, text + "\n")

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        """Read-modify-write run.json, keeping keys written by others (e.g. hv_reference)."""
        meta = self.meta()
        meta.update(changes)
        self.write_meta(meta)
        return meta

    def storage_url(self, configured: str | None = None) -> Any:
        """The Optuna storage: the experiment's URL, else the run's own (`nas.storage`: the
        journal file, or study.db for runs made before it), a URL or a storage object."""
        from nas.storage import run_storage

        return run_storage(self.path, configured)

    # -- trials table -----------------------------------------------------------------------------
    def write_trials(self, rows: Iterable[Mapping[str, Any]]) -> Any:
        """Write trials.csv and trials.parquet (atomically); returns the DataFrame."""
        from nas.secrets import mask

        df = trials_frame(mask(dict(r)) for r in rows)  # an error text may quote a URL
        tmp = self.trials_csv.with_name("trials.csv.tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(self.trials_csv)
        tmp = self.trials_parquet.with_name("trials.parquet.tmp")
        df.to_parquet(tmp, index=False)
        tmp.replace(self.trials_parquet)
        return df

    def read_trials(self) -> Any:
        """The trials table (Parquet if present, else CSV)."""
        import pandas as pd

        if self.trials_parquet.is_file():
            return pd.read_parquet(self.trials_parquet)
        if self.trials_csv.is_file():
            return pd.read_csv(self.trials_csv)
        return trials_frame([])

    def live_trials(self, storage: str | None = None) -> Any:
        """The trials table read from the study (current while a sweep runs); falls back to
        trials.parquet / trials.csv when the storage cannot be read."""
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(study_name=self.name, storage=self.storage_url(storage))
            return trials_frame(self.study_rows(study))
        except Exception:  # noqa: BLE001 - the files are the fallback
            return self.read_trials()

    def study_rows(self, study: Any) -> list[dict[str, Any]]:
        """Trials-table rows of a study's trials (WAITING ones are not trials yet), with
        ``arch_file`` set where the frozen file exists."""
        rows = []
        for t in study.get_trials(deepcopy=False):
            if t.state.name == "WAITING":
                continue
            row = trial_row(t)
            arch_id = row.get("arch_id")
            if arch_id and row["status"] in ("COMPLETE", "STOPPED"):
                path = self.arch_path(arch_id)
                if path.is_file():
                    row["arch_file"] = str(path.relative_to(self.path))
            rows.append(row)
        return rows

    # -- frozen files -----------------------------------------------------------------------------
    def arch_path(self, arch_id: str) -> Path:
        return self.archs_dir / f"{arch_id[:12]}.yaml"


_NOT_COLUMNS = ("constraints", "status")
# The noise of a trial's scores, kept with its metrics in frozen files.
_NOISE_METRICS = ("ap_sd", "ap_seeds", "repeats", "threads", "latency_stable", "lat_repeats")


def trial_row(trial: Any) -> dict[str, Any]:
    """The trials-table row of an Optuna FrozenTrial (its params and user attributes).

    A trial that is not finished is RUNNING; a finished one without a ``status`` attribute
    (made by another tool) gets one from its Optuna state.
    """
    state = trial.state.name
    attrs = trial.user_attrs
    row: dict[str, Any] = {"number": trial.number}
    if state in ("RUNNING", "WAITING"):
        row["status"] = "RUNNING"
    else:
        row["status"] = attrs.get("status") or {"PRUNED": "STOPPED"}.get(state, state)
    for key, value in trial.params.items():
        row[f"param_{key}"] = value
    # a RUNNING trial's ``row`` is a killed session's unfinished write: not its result
    for key, value in (flat_attrs(attrs) if state not in ("RUNNING", "WAITING")
                       else {k: v for k, v in attrs.items() if k != ROW_ATTR}).items():
        if key not in _NOT_COLUMNS:
            row.setdefault(key, value)
    return row


def flat_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's user attributes with its ``row`` attribute expanded (separate attributes win:
    ``reused_from``, ``reference``, ``session`` are written on their own)."""
    out = dict(attrs)
    row = out.pop(ROW_ATTR, None)
    if isinstance(row, Mapping):
        for key, value in row.items():
            out.setdefault(key, value)
    return out


def row_metrics(row: Any) -> dict[str, Any]:
    """The `METRIC_COLUMNS` of a trials-table row (dict or pandas Series) that have a value, as
    plain Python values (missing ones and NaN / pd.NA left out)."""
    out: dict[str, Any] = {}
    keys = row.keys() if hasattr(row, "keys") else row.index
    extra = [k for k in extra_columns(keys) if not k.startswith("c_")]
    for key in (*METRIC_COLUMNS, *_NOISE_METRICS, *extra):
        value = row.get(key)
        if value is None or _isnan(value) or str(value) == "<NA>":
            continue
        if hasattr(value, "item"):
            value = value.item()
        out[key] = value
    return out


def trials_frame(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A DataFrame with the trials-table columns in order (param_* after arch_id)."""
    import pandas as pd

    rows = [dict(r) for r in rows]
    params = sorted({k for r in rows for k in r if k.startswith("param_")})
    columns = [*HEAD_COLUMNS, *params, *COLUMNS, *extra_columns(k for r in rows for k in r)]
    df = pd.DataFrame([{c: _cell(r.get(c)) for c in columns} for r in rows], columns=columns)
    for col in columns:
        kind = column_kind(col)
        if kind == "int":
            df[col] = pd.array(
                [None if v is None or _isnan(v) else int(v) for v in df[col]], dtype="Int64"
            )
        elif kind == "bool":
            df[col] = pd.array([None if v is None or _isnan(v) else bool(v) for v in df[col]],
                               dtype="boolean")
    for col in params:
        values = [r.get(col) for r in rows]
        kinds = {type(v) for v in values if v is not None and not _isnan(v)}
        if kinds == {int}:  # integer parameters stay integers next to missing values
            df[col] = pd.array(values, dtype="Int64")
        elif len(kinds) > 1 and not kinds <= {int, float}:
            # Mixed-type categoricals are kept as strings so Parquet can store them.
            df[col] = [None if v is None else str(v) for v in values]
    if len(df):
        df = df.sort_values("number", kind="stable").reset_index(drop=True)
    return df


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def code_version() -> str:
    """The package version plus the git commit of the checkout, when there is one."""
    try:
        from importlib.metadata import version

        ver = version("opennac")
    except Exception:  # pragma: no cover - not installed
        ver = "unknown"
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0 and out.stdout.strip():
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return f"{ver}+g{out.stdout.strip()}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return ver


__all__ = [
    "COLUMNS",
    "HEAD_COLUMNS",
    "METRIC_COLUMNS",
    "NOISE_COLUMNS",
    "ROW_ATTR",
    "RUN_FORMAT",
    "SCHEMA",
    "RunDir",
    "RunDirError",
    "STATUSES",
    "code_version",
    "column_kind",
    "extra_columns",
    "flat_attrs",
    "now_iso",
    "row_metrics",
    "trial_row",
    "trials_frame",
]
