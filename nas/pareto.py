"""Pareto fronts, non-dominated ranks and exact hypervolume over a trials table.

Objectives are given as ``{column: "max" | "min"}``; the default is
``{"ap": "max", "latency_ms": "min"}``. Only trials that are ``COMPLETE``, at full fidelity and
feasible enter a front unless ``only_valid=False`` (a column that is absent is not checked, so a
plain table of points works too). Rows with a missing objective value never enter a front.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"ap": [0.3, 0.4, 0.2], "latency_ms": [5.0, 9.0, 6.0]})
    >>> pareto_front(df)["ap"].tolist()
    [0.4, 0.3]
    >>> round(hypervolume(df, reference_point={"ap": 0.0, "latency_ms": 10.0}), 6)
    1.6
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_OBJECTIVES: dict[str, str] = {"ap": "max", "latency_ms": "min"}
_DIRECTIONS = ("max", "min")


def check_objectives(objectives: Mapping[str, str] | None) -> dict[str, str]:
    """Validate ``{column: "max"|"min"}`` (``None`` gives the default); returns a plain dict."""
    if objectives is None:
        return dict(DEFAULT_OBJECTIVES)
    if not isinstance(objectives, Mapping) or not objectives:
        raise ValueError(
            f"objectives: expected a mapping like {DEFAULT_OBJECTIVES}, got {objectives!r}"
        )
    out: dict[str, str] = {}
    for name, direction in objectives.items():
        if direction not in _DIRECTIONS:
            raise ValueError(f"objectives[{name!r}]: expected 'max' or 'min', got {direction!r}")
        out[str(name)] = direction
    return out


def valid_mask(
    df: pd.DataFrame, objectives: Mapping[str, str] | None = None, only_valid: bool = True
) -> pd.Series:
    """Rows that may enter a front: finite objectives and, with ``only_valid``, status
    ``COMPLETE``, ``full_fidelity`` and ``feasible`` (absent columns are not checked)."""
    objectives = check_objectives(objectives)
    _require_columns(df, objectives)
    mask = pd.Series(True, index=df.index)
    for name in objectives:
        values = pd.to_numeric(df[name], errors="coerce").astype(float)
        mask &= np.isfinite(values.to_numpy())
    if only_valid:
        if "status" in df.columns:
            mask &= df["status"].astype(str).str.upper().eq("COMPLETE").to_numpy()
        for flag in ("full_fidelity", "feasible"):
            if flag in df.columns:
                mask &= _truthy(df[flag]).to_numpy()
    return mask


def pareto_front(
    df: pd.DataFrame,
    objectives: Mapping[str, str] | None = None,
    only_valid: bool = True,
) -> pd.DataFrame:
    """The non-dominated rows of ``df`` (a copy), best first in the first objective.

    Two rows with equal objective values do not dominate each other, so both stay.
    """
    objectives = check_objectives(objectives)
    mask = valid_mask(df, objectives, only_valid)
    sub = df[mask.to_numpy()]
    if sub.empty:
        return sub.copy()
    losses = _losses(sub, objectives)
    keep = ~_dominated(losses)
    front = sub[keep]
    return _sort_best_first(front, objectives)


def nondominated_ranks(
    df: pd.DataFrame,
    objectives: Mapping[str, str] | None = None,
    only_valid: bool = True,
) -> pd.Series:
    """Non-dominated sorting rank per row (0 = the front, 1 = the front without rank 0, ...).

    Rows that may not enter a front (see `valid_mask`) get ``<NA>``; dtype is ``Int64``.
    """
    objectives = check_objectives(objectives)
    mask = valid_mask(df, objectives, only_valid).to_numpy()
    ranks = pd.Series(pd.NA, index=df.index, dtype="Int64", name="rank")
    if not mask.any():
        return ranks
    losses = _losses(df[mask], objectives)
    out = np.full(len(losses), -1, dtype=np.int64)
    remaining = np.arange(len(losses))
    rank = 0
    while remaining.size:
        dominated = _dominated(losses[remaining])
        out[remaining[~dominated]] = rank
        remaining = remaining[dominated]
        rank += 1
    ranks[mask] = out
    return ranks


def hypervolume(
    df: pd.DataFrame,
    objectives: Mapping[str, str] | None = None,
    reference_point: Mapping[str, float] | Sequence[float] | None = None,
    only_valid: bool = True,
) -> float:
    """Exact hypervolume dominated by the valid rows of ``df`` up to ``reference_point``.

    ``reference_point`` maps each objective to a value (or lists them in objective order); with
    ``None`` it is ``df.attrs["hv_reference"]`` (set by `nas.load_run`) or else
    `default_reference_point` (0.0 when no row is valid). Points that are not strictly better
    than the reference in every objective add nothing. Exact for any number of objectives
    (slicing); meant for two or three.
    """
    objectives = check_objectives(objectives)
    mask = valid_mask(df, objectives, only_valid).to_numpy()
    if reference_point is None:
        if not mask.any():
            return 0.0
        reference_point = df.attrs.get("hv_reference") or default_reference_point(
            df, objectives, only_valid
        )
    ref = reference_vector(reference_point, objectives)
    losses = _losses(df[mask], objectives)
    return hypervolume_of_losses(losses, _flip(ref, objectives))


def hypervolume_of_losses(losses: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of minimisation vectors ``losses [n, d]`` below ``reference [d]``."""
    losses = np.asarray(losses, dtype=float).reshape(-1, len(reference))
    reference = np.asarray(reference, dtype=float)
    if not np.all(np.isfinite(reference)):
        raise ValueError(f"reference point must be finite, got {reference.tolist()}")
    inside = np.all(losses < reference, axis=1) if len(losses) else np.zeros(0, dtype=bool)
    points = losses[inside]
    if len(points) == 0:
        return 0.0
    points = np.unique(points, axis=0)
    points = points[~_dominated(points)]
    return float(_hv(points, reference))


def default_reference_point(
    df: pd.DataFrame,
    objectives: Mapping[str, str] | None = None,
    only_valid: bool = True,
    margin: float = 0.1,
) -> dict[str, float]:
    """A reference point a little worse than every valid row.

    A maximised objective whose values are all >= 0 (such as AP) gets 0; otherwise the worst
    value moved by ``margin`` times the value range (or times its magnitude when all values are
    equal, or by 1 when that is 0). Raises ``ValueError`` when there is no valid row.
    """
    objectives = check_objectives(objectives)
    mask = valid_mask(df, objectives, only_valid).to_numpy()
    if not mask.any():
        raise ValueError(
            "cannot derive a hypervolume reference point: no valid trial "
            f"(complete, full fidelity, feasible, finite {', '.join(objectives)})"
        )
    point: dict[str, float] = {}
    for name, direction in objectives.items():
        values = pd.to_numeric(df.loc[mask, name]).astype(float).to_numpy()
        low, high = float(values.min()), float(values.max())
        span = high - low or abs(high) or 1.0
        if direction == "max":
            point[name] = 0.0 if low >= 0 else low - margin * span
        else:
            point[name] = high + margin * span
    return point


def common_reference_point(
    points: Sequence[Mapping[str, float]], objectives: Mapping[str, str] | None = None
) -> dict[str, float]:
    """The component-wise worst of several reference points (to compare several runs)."""
    objectives = check_objectives(objectives)
    if not points:
        raise ValueError("common_reference_point: no reference points given")
    out: dict[str, float] = {}
    for name, direction in objectives.items():
        values = [float(reference_vector(p, {name: direction})[0]) for p in points]
        out[name] = min(values) if direction == "max" else max(values)
    return out


def reference_vector(
    reference_point: Mapping[str, Any] | Sequence[float], objectives: Mapping[str, str]
) -> np.ndarray:
    """A reference point (mapping or sequence) as a float vector in objective order."""
    names = list(objectives)
    if isinstance(reference_point, Mapping):
        point = reference_point.get("point", reference_point)
        missing = [n for n in names if n not in point]
        if missing:
            raise ValueError(
                f"reference point {dict(point)!r} has no value for objective {missing[0]!r}"
            )
        values = [point[n] for n in names]
    else:
        values = list(reference_point)
        if len(values) != len(names):
            raise ValueError(
                f"reference point {values!r} has {len(values)} values; objectives "
                f"{names} need {len(names)}"
            )
    try:
        vector = np.array([float(v) for v in values])
    except (TypeError, ValueError):
        raise ValueError(f"reference point {values!r}: expected numbers") from None
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"reference point {values!r}: expected finite numbers")
    return vector


# --------------------------------------------------------------------------- internals


def _require_columns(df: pd.DataFrame, objectives: Mapping[str, str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [n for n in objectives if n not in df.columns]
    if missing:
        raise KeyError(
            f"objective column {missing[0]!r} not in the table (columns: "
            f"{', '.join(map(str, df.columns[:20]))}{' ...' if len(df.columns) > 20 else ''})"
        )


def _truthy(series: pd.Series) -> pd.Series:
    """Booleans by `nas.objectives.truthy` (the one rule); missing -> False."""
    from nas.objectives import truthy

    if series.dtype == bool:
        return series
    return series.map(truthy).astype(bool)


def _flip(values: np.ndarray, objectives: Mapping[str, str]) -> np.ndarray:
    signs = np.array([-1.0 if d == "max" else 1.0 for d in objectives.values()])
    return np.asarray(values, dtype=float) * signs


def _losses(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    """Objective values as minimisation vectors ``[n, d]`` (max objectives negated)."""
    cols = [pd.to_numeric(df[n], errors="coerce").astype(float).to_numpy() for n in objectives]
    raw = np.stack(cols, axis=1) if cols else np.zeros((len(df), 0))
    return _flip(raw, objectives)


def _dominated(losses: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each row, whether another row dominates it (<= everywhere, < somewhere)."""
    n = len(losses)
    out = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        block = losses[start : start + chunk, None, :]  # [b, 1, d]
        le = np.all(losses[None, :, :] <= block, axis=2)  # [b, n]: row j <= row i
        lt = np.any(losses[None, :, :] < block, axis=2)
        out[start : start + chunk] = np.any(le & lt, axis=1)
    return out


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of mutually non-dominated minimisation points, all < ref."""
    d = points.shape[1]
    if len(points) == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - points[:, 0].min())
    if d == 2:
        return _hv2(points, ref)
    # Slice along the last objective: between consecutive levels the cross-section is the
    # (d-1)-dimensional hypervolume of the points at or below that level.
    order = np.argsort(points[:, -1], kind="stable")
    pts = points[order]
    levels = np.append(pts[:, -1], ref[-1])
    total = 0.0
    for i in range(len(pts)):
        height = levels[i + 1] - levels[i]
        if height <= 0:
            continue
        section = pts[: i + 1, :-1]
        section = np.unique(section, axis=0)
        section = section[~_dominated(section)]
        total += height * _hv(section, ref[:-1])
    return total


def _hv2(points: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume: sweep in x, adding the strip each point adds below the best y."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    xs, ys = points[order, 0], points[order, 1]
    area, best_y = 0.0, float(ref[1])
    for x, y in zip(xs, ys, strict=True):
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def _sort_best_first(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    names = list(objectives)
    ascending = [objectives[n] == "min" for n in names]
    keyed = df.assign(**{f"__key{i}": pd.to_numeric(df[n]) for i, n in enumerate(names)})
    keys = [f"__key{i}" for i in range(len(names))]
    return keyed.sort_values(keys, ascending=ascending, kind="stable").drop(columns=keys).copy()
