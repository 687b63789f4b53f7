"""Read search results: one tidy DataFrame row per trial, from a run directory or a study URL.

`load_run` reads ``trials.parquet`` (or ``trials.csv``) of a run directory and, while the sweep
is still running (or when the table is missing), adds the trials that only the Optuna study
knows yet; partial files are tolerated. With a storage URL (``sqlite:///...``,
``postgresql://...``) it reads the Optuna study alone. Columns follow the trials table of
``docs/internals.md``, plus ``reference`` (the released model a trial's architecture is, if any).

``df.attrs`` carries ``run`` (name), ``run_dir``, ``run_info`` (``run.json``) and
``hv_reference`` (the hypervolume reference point, saved in ``run.json`` the first time a
finished run is loaded, so that figures stay comparable across days).

Example:
    >>> from nas import load_run, pareto_front, hypervolume   # doctest: +SKIP
    >>> df = load_run("runs/quickstart")                       # doctest: +SKIP
    >>> pareto_front(df)[["number", "ap", "latency_ms"]]       # doctest: +SKIP
    >>> hypervolume(df)                                        # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nas.pareto import DEFAULT_OBJECTIVES, check_objectives, default_reference_point, valid_mask
from nas.rundir import HEAD_COLUMNS, SCHEMA, RunDir, column_kind, extra_columns, flat_attrs
from nas.secrets import mask_text

# Run statuses (run.json) during which the reference point is not saved yet.
_LIVE_RUN_STATUSES = {"created", "starting", "running", "pending", "resuming"}


class ResultsError(ValueError):
    """A run directory or study that cannot be read; the message names the path or URL."""


def load_run(
    run_dir_or_study_url: str | os.PathLike[str],
    study_name: str | None = None,
    save_reference: bool = True,
) -> pd.DataFrame:
    """One row per trial of a run directory, an Optuna storage URL or a run's
    ``study.journal`` file (see the module doc).

    ``study_name`` picks the study of a storage holding several (default: the run name, or the
    only study). ``save_reference=False`` never writes ``hv_reference`` into ``run.json``.
    """
    source: Any = os.fspath(run_dir_or_study_url)
    if source.endswith(".journal") and Path(source).is_file():  # a run's study.journal
        from nas.storage import journal_storage

        source = journal_storage(source)
    if not isinstance(source, str) or "://" in source:
        name = study_name or _only_study_name(source)
        df = normalize_trials(_rows_from_study(source, name))
        df.attrs.update(run=name, run_dir=None, run_info={})
        _attach_reference(df, None, save=False)
        return df
    path = Path(source)
    if path.is_file() and path.name.startswith("trials."):
        path = path.parent
    if not path.is_dir():
        raise ResultsError(f"{path}: no such run directory (expected runs/<name>/ with run.json)")
    info = read_run_info(path)
    table = _read_table(path)
    try:
        study_url = _study_url(path, info)
    except ResultsError:  # e.g. its ${NAME} not set here: the files are enough when present
        if table is None:
            raise
        study_url = None
    live = str(info.get("status", "")).lower() in _LIVE_RUN_STATUSES or not info.get("status")
    if study_url and (table is None or live):
        try:
            extra = _rows_from_study(study_url, study_name or info.get("name") or path.name)
        except ResultsError:
            if table is None:
                raise
            extra = None
        if extra is not None and len(extra):
            if table is None:
                table = extra
            else:
                known = set(pd.to_numeric(table["number"], errors="coerce").dropna().astype(int))
                extra = extra[~extra["number"].isin(known)]
                table = pd.concat([table, extra], ignore_index=True) if len(extra) else table
    if table is None:
        raise ResultsError(
            f"{path}: no trials yet (neither trials.parquet, trials.csv nor a readable study)"
        )
    df = normalize_trials(table, run_dir=path)
    df.attrs.update(run=info.get("name") or path.name, run_dir=str(path), run_info=info)
    _attach_reference(df, path, save=save_reference)
    return df


def load_runs(
    sources: Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]],
    save_reference: bool = True,
) -> pd.DataFrame:
    """Several runs stacked, with a leading ``run`` column (the run name, made unique).

    ``sources`` is a list of run directories / study URLs, or ``{name: source}``.
    ``df.attrs["hv_reference"]`` is the component-wise worst of the runs' reference points (a
    common point for comparing their hypervolumes); ``df.attrs["runs"]`` maps each name to the
    attrs of its run.
    """
    from nas.pareto import common_reference_point

    items = list(sources.items()) if isinstance(sources, Mapping) else [(None, s) for s in sources]
    if not items:
        raise ResultsError("load_runs: no runs given")
    frames, attrs, refs = [], {}, []
    for name, source in items:
        df = load_run(source, save_reference=save_reference)
        run = _unique(str(name or df.attrs.get("run") or Path(os.fspath(source)).name), attrs)
        attrs[run] = dict(df.attrs)
        if df.attrs.get("hv_reference"):
            refs.append(df.attrs["hv_reference"])
        frames.append(df.assign(run=run)[["run", *df.columns]])
    out = pd.concat(frames, ignore_index=True)
    out.attrs["runs"] = attrs
    if refs:
        out.attrs["hv_reference"] = common_reference_point(refs, DEFAULT_OBJECTIVES)
    return out


def read_run_info(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``run.json`` of a run directory as a dict ({} when absent or being written)."""
    path = Path(run_dir) / "run.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def run_reference_point(
    run_dir: str | os.PathLike[str],
    df: pd.DataFrame | None = None,
    objectives: Mapping[str, str] | None = None,
    save: bool = True,
) -> dict[str, float] | None:
    """The run's hypervolume reference point: ``run.json``'s ``hv_reference`` if it covers the
    objectives, else derived from the valid trials (`nas.pareto.default_reference_point`) and,
    with ``save`` and once the run is no longer running, written into ``run.json``.

    ``None`` when there is no saved point and no valid trial to derive one from.
    """
    objectives = check_objectives(objectives)
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    saved = _saved_point(info.get("hv_reference"), objectives)
    if saved is not None:
        return saved
    if df is None:
        df = load_run(run_dir, save_reference=False)
    if not valid_mask(df, objectives).any():
        return None
    point = default_reference_point(df, objectives)
    status = str(info.get("status", "")).lower()
    if save and info and status not in _LIVE_RUN_STATUSES:
        info["hv_reference"] = dict(point)
        RunDir(run_dir).write_meta(info)
    return point


def normalize_trials(df: pd.DataFrame, run_dir: Path | None = None) -> pd.DataFrame:
    """Give a raw trials table the contract's columns and types (missing columns are added
    empty; ``arch_file`` becomes an absolute path when the file is in ``run_dir``)."""
    df = df.copy()
    params = sorted(c for c in df.columns if str(c).startswith("param_"))
    for col in SCHEMA:  # the schema of `nas.rundir`, one owner for writer and reader
        if col not in df.columns:
            df[col] = pd.NA
    for col in [*SCHEMA, *extra_columns(map(str, df.columns))]:
        kind = column_kind(col)
        if kind == "float":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        elif kind == "int":
            df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
        elif kind == "bool":
            df[col] = _to_bool(df[col])
        elif kind == "text" and col != "status":
            df[col] = df[col].map(_text)
    df["status"] = df["status"].map(lambda s: (_text(s) or "RUNNING").upper())
    if run_dir is not None:
        df["arch_file"] = df["arch_file"].map(lambda p: _resolve_file(p, run_dir))
    known = df["arch_id"].map(_reference_names(run_dir).get)
    if "reference" in df.columns:  # the search engine's own label wins
        known = df["reference"].map(_text).where(df["reference"].map(_text).notna(), known)
    df["reference"] = known
    first = [*HEAD_COLUMNS, *params]
    rest = [c for c in df.columns if c not in first]
    df = df[first + rest].sort_values("number", kind="stable", na_position="last")
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- reading files


def _read_table(run_dir: Path) -> pd.DataFrame | None:
    """trials.parquet, else trials.csv (a half-written last line is dropped), else None."""
    parquet = run_dir / "trials.parquet"
    if parquet.is_file():
        try:
            return pd.read_parquet(parquet)
        except Exception:  # noqa: BLE001 - being rewritten: fall back to the CSV
            pass
    csv = run_dir / "trials.csv"
    if csv.is_file():
        try:
            text = csv.read_text()
        except OSError:
            return None
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        if not text.strip():
            return None
        try:
            return pd.read_csv(io.StringIO(text), on_bad_lines="skip", low_memory=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            return None
    return None


def _study_url(run_dir: Path, info: Mapping[str, Any]) -> Any:
    """The run's study storage: the experiment's ``storage`` URL if set, else its own
    (`nas.storage`: ``study.journal``, or ``study.db`` of older runs), else None."""
    from nas.secrets import SecretError, storage_url

    doc = read_experiment(run_dir)
    storage = info.get("storage") or doc.get("storage")
    env = doc.get("storage_env")
    if (isinstance(storage, str) and storage) or isinstance(env, str):
        try:  # ${NAME} / storage_env read from the environment (nas.secrets)
            return storage_url(storage if isinstance(storage, str) else None,
                               env if isinstance(env, str) else None,
                               f"{run_dir / 'experiment.yaml'}: ")
        except SecretError as exc:
            raise ResultsError(str(exc)) from None
    from nas.storage import existing_storage

    return existing_storage(run_dir)


def read_experiment(run_dir: Path) -> dict[str, Any]:
    """The run's resolved experiment.yaml as plain data ({} when absent or unreadable)."""
    import yaml

    try:
        doc = yaml.safe_load((run_dir / "experiment.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _only_study_name(url: Any) -> str:
    import optuna

    from nas.storage import describe

    shown = describe(url)
    try:
        names = optuna.get_all_study_names(storage=url)
    except Exception as exc:  # noqa: BLE001 - any storage error becomes one clear message
        raise ResultsError(mask_text(f"{shown}: cannot open the Optuna storage ({exc})")) \
            from None
    if len(names) != 1:
        raise ResultsError(
            f"{shown}: holds {len(names)} studies ({', '.join(names) or 'none'}); pass study_name="
        )
    return names[0]


def _rows_from_study(url: Any, study_name: str | None) -> pd.DataFrame:
    """One row per Optuna trial: params, values by metric name, scalar user attributes."""
    import optuna

    from nas.storage import describe

    shown = describe(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        names = optuna.get_all_study_names(storage=url)
    except Exception as exc:  # noqa: BLE001
        raise ResultsError(mask_text(f"{shown}: cannot open the Optuna storage ({exc})")) \
            from None
    if study_name not in names:
        if study_name is None and len(names) == 1:
            study_name = names[0]
        else:
            raise ResultsError(
                f"{shown}: no study named {study_name!r} (studies: {', '.join(names) or 'none'})"
            )
    study = optuna.load_study(study_name=study_name, storage=url)
    metric_names = study.metric_names or (
        list(DEFAULT_OBJECTIVES) if len(study.directions) == 2 else None
    )
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": trial.number}
        finished = trial.state.name not in ("RUNNING", "WAITING")  # else `row` is unfinished
        attrs = {k: v for k, v in (flat_attrs(trial.user_attrs) if finished
                                   else trial.user_attrs).items() if _is_scalar(v)}
        row["status"] = attrs.pop("status", None) or _STATE_TO_STATUS.get(trial.state.name)
        row.update({f"param_{k}": v for k, v in trial.params.items()})
        if trial.values is not None:
            for i, value in enumerate(trial.values):
                key = metric_names[i] if metric_names and i < len(metric_names) else f"value_{i}"
                row[key] = value
        for key, value in attrs.items():
            row.setdefault(key, value)
        if "wall_s" not in row and trial.datetime_start and trial.datetime_complete:
            row["wall_s"] = (trial.datetime_complete - trial.datetime_start).total_seconds()
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["number", "status"])


_STATE_TO_STATUS = {
    "COMPLETE": "COMPLETE",
    "PRUNED": "STOPPED",
    "FAIL": "FAIL",
    "RUNNING": "RUNNING",
    "WAITING": "RUNNING",
}


def _attach_reference(df: pd.DataFrame, run_dir: Path | None, save: bool) -> None:
    objectives = dict(DEFAULT_OBJECTIVES)
    if not all(c in df.columns for c in objectives):
        return
    if run_dir is not None:
        point = run_reference_point(run_dir, df, objectives, save=save)
    elif valid_mask(df, objectives).any():
        point = default_reference_point(df, objectives)
    else:
        point = None
    if point is not None:
        df.attrs["hv_reference"] = point


def _saved_point(saved: Any, objectives: Mapping[str, str]) -> dict[str, float] | None:
    if not isinstance(saved, Mapping):
        return None
    point = saved.get("point", saved)
    if not isinstance(point, Mapping):
        return None
    try:
        values = {n: float(point[n]) for n in objectives}
    except (KeyError, TypeError, ValueError):
        return None
    return values if all(math.isfinite(v) for v in values.values()) else None


# --------------------------------------------------------------------------- small helpers


_REFERENCE_CACHE: dict[str, dict[str, str]] = {}


def _reference_names(run_dir: Path | None) -> dict[str, str]:
    """arch_id -> released model name: the presets, plus the run's search space's reference
    points (which may be scaled versions of the released models)."""
    if "presets" not in _REFERENCE_CACHE:
        from models.presets import RELEASED, get_preset

        _REFERENCE_CACHE["presets"] = {get_preset(n).arch_id: n for n in RELEASED}
    names = dict(_REFERENCE_CACHE["presets"])
    if run_dir is not None:
        names.update(_space_reference_names(run_dir))
    return names


def _space_reference_names(run_dir: Path) -> dict[str, str]:
    """arch_id -> reference name from the run's experiment.yaml space (best effort)."""
    path = run_dir / "experiment.yaml"
    if not path.is_file():
        return {}
    key = f"{path.resolve()}:{path.stat().st_mtime_ns}"
    if key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    found: dict[str, str] = {}
    try:
        from search_spaces import get_space

        doc = read_experiment(run_dir)
        space = doc.get("space") or doc.get("search_space")
        if isinstance(space, str):
            space = {"name": space}
        if isinstance(space, Mapping) and space.get("name"):
            overrides = {k: v for k, v in space.items() if k not in ("name",)}
            if isinstance(space.get("overrides"), Mapping):
                overrides = dict(space["overrides"])
            specs = get_space(space["name"], **overrides).reference_specs()
            found = {spec.arch_id: name for name, spec in specs.items()}
    except Exception:  # noqa: BLE001 - labels are a convenience; never fail loading on them
        found = {}
    _REFERENCE_CACHE[key] = found
    return found


def _to_bool(series: pd.Series) -> pd.Series:
    def one(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return pd.NA
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("true", "1", "1.0", "yes"):
                return True
            if text in ("false", "0", "0.0", "no"):
                return False
            return pd.NA
        return bool(value)

    return series.map(one).astype("boolean")


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text if text else None


def _resolve_file(value: Any, run_dir: Path) -> str | None:
    text = _text(value)
    if text is None:
        return None
    path = Path(text)
    if not path.is_absolute() and (run_dir / path).exists():
        return str((run_dir / path).resolve())
    return text


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _unique(name: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if name not in taken:
        return name
    i = 2
    while f"{name}-{i}" in taken:
        i += 1
    return f"{name}-{i}"
