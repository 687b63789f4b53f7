"""Pareto front, ranks and hypervolume: properties (hypothesis) and Optuna's own hypervolume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna._hypervolume import compute_hypervolume

from nas.pareto import (
    common_reference_point,
    default_reference_point,
    hypervolume,
    nondominated_ranks,
    pareto_front,
)

OBJ2 = {"ap": "max", "latency_ms": "min"}
OBJ3 = {"ap": "max", "latency_ms": "min", "params": "min"}

# Small integer grids make ties and duplicates common, which is where fronts go wrong.
_value = st.integers(min_value=0, max_value=6).map(float)


def _table(rows: list[tuple[float, ...]], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=names)


def _dominates(a: pd.Series, b: pd.Series, objectives: dict[str, str]) -> bool:
    better_or_equal, strictly = True, False
    for name, direction in objectives.items():
        x, y = (a[name], b[name]) if direction == "max" else (-a[name], -b[name])
        if x < y:
            better_or_equal = False
        if x > y:
            strictly = True
    return better_or_equal and strictly


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_value, _value, _value), min_size=1, max_size=25), st.booleans())
def test_front_members_undominated_and_nonmembers_dominated(rows, three) -> None:
    objectives = OBJ3 if three else OBJ2
    df = _table([r[: len(objectives)] for r in rows], list(objectives))
    front = pareto_front(df, objectives)
    assert len(front) >= 1
    for _, member in front.iterrows():
        assert not any(_dominates(other, member, objectives) for _, other in df.iterrows())
    for idx, row in df.drop(index=front.index).iterrows():
        assert any(_dominates(m, row, objectives) for _, m in front.iterrows()), idx


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_value, _value), min_size=1, max_size=20))
def test_ranks_peel_fronts(rows) -> None:
    df = _table(rows, list(OBJ2))
    ranks = nondominated_ranks(df, OBJ2)
    front = pareto_front(df, OBJ2)
    assert set(ranks[ranks == 0].index) == set(front.index)
    # a row of rank r > 0 is dominated by some row of rank r - 1 and by none of rank >= r
    for idx, r in ranks.items():
        if r > 0:
            assert any(
                _dominates(df.loc[j], df.loc[idx], OBJ2) for j in ranks.index[ranks == r - 1]
            )
        same = ranks.index[ranks >= r]
        assert not any(_dominates(df.loc[j], df.loc[idx], OBJ2) for j in same)


_real = st.floats(min_value=0.0, max_value=10.0, allow_nan=False, width=32)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_real, _real, _real), min_size=0, max_size=30), st.booleans())
def test_hypervolume_matches_optuna(rows, three) -> None:
    objectives = OBJ3 if three else OBJ2
    names = list(objectives)
    df = _table([r[: len(names)] for r in rows], names) if rows else pd.DataFrame(columns=names)
    ref = {"ap": -0.5, "latency_ms": 10.5, "params": 10.5}
    ours = hypervolume(df, objectives, {n: ref[n] for n in names})
    # Optuna minimises every objective: negate the maximised one (AP) and its reference.
    signs = np.array([-1.0 if objectives[n] == "max" else 1.0 for n in names])
    losses = df[names].to_numpy(dtype=float).reshape(-1, len(names)) * signs
    theirs = compute_hypervolume(losses, np.array([ref[n] for n in names]) * signs)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)


def test_hypervolume_by_hand_and_points_outside_the_reference() -> None:
    df = _table([(0.3, 5.0), (0.4, 9.0), (0.5, 12.0), (-0.1, 1.0)], list(OBJ2))
    # boxes 0.3x5 and 0.4x1 overlap by 0.3x1; the last two lie beyond the reference point
    assert hypervolume(df, OBJ2, {"ap": 0.0, "latency_ms": 10.0}) == pytest.approx(1.6)
    assert hypervolume(df, OBJ2, [0.0, 10.0]) == pytest.approx(1.6)
    cube = _table([(1.0, 1.0, 1.0)], list(OBJ3))
    assert hypervolume(cube, OBJ3, {"ap": 0.0, "latency_ms": 3.0, "params": 4.0}) == 6.0


def test_only_valid_rows_enter_fronts() -> None:
    df = pd.DataFrame(
        {
            "ap": [0.5, 0.9, 0.95, 0.99, 0.2],
            "latency_ms": [5.0, 4.0, 3.0, 2.0, 2.5],
            "status": ["COMPLETE", "STOPPED", "COMPLETE", "COMPLETE", "COMPLETE"],
            "full_fidelity": [True, False, True, True, True],
            "feasible": [True, True, False, True, True],
        }
    )
    front = pareto_front(df)
    assert sorted(front.index) == [3]  # row 3 dominates 0 and 4; rows 1, 2 are not valid
    assert sorted(pareto_front(df, only_valid=False).index) == [3]
    df["feasible"] = ["True", "True", "False", "False", "true"]  # as read back from a CSV
    assert sorted(pareto_front(df).index) == [0, 4]
    ranks = nondominated_ranks(df)
    assert ranks.isna().tolist() == [False, True, True, True, False]
    assert hypervolume(df, reference_point={"ap": 0.0, "latency_ms": 6.0}) == pytest.approx(
        0.5 * 1.0 + 0.2 * 3.5 - 0.2 * 1.0
    )


def test_front_sorted_best_first_and_nan_rows_ignored() -> None:
    df = _table([(0.2, 1.0), (0.6, 3.0), (float("nan"), 0.5), (0.4, 2.0)], list(OBJ2))
    assert pareto_front(df)["ap"].tolist() == [0.6, 0.4, 0.2]


def test_reference_points() -> None:
    df = _table([(0.2, 1.0), (0.6, 3.0)], list(OBJ2))
    ref = default_reference_point(df)
    assert ref == pytest.approx({"ap": 0.0, "latency_ms": 3.2})
    assert all(
        p < ref["latency_ms"] and a > ref["ap"] for a, p in zip(df.ap, df.latency_ms, strict=True)
    )
    assert common_reference_point([ref, {"ap": -1.0, "latency_ms": 2.0}]) == {
        "ap": -1.0,
        "latency_ms": 3.2,
    }
    df.attrs["hv_reference"] = {"ap": 0.0, "latency_ms": 4.0}
    assert hypervolume(df) == pytest.approx(0.2 * 3.0 + 0.4 * 1.0)


def test_bad_input_errors_name_the_problem() -> None:
    df = _table([(0.2, 1.0)], list(OBJ2))
    with pytest.raises(ValueError, match="objectives\\['ap'\\]"):
        pareto_front(df, {"ap": "maximise"})
    with pytest.raises(KeyError, match="'params'"):
        pareto_front(df, {"params": "min"})
    with pytest.raises(ValueError, match="no value for objective 'latency_ms'"):
        hypervolume(df, reference_point={"ap": 0.0})
    with pytest.raises(ValueError, match="no valid trial"):
        default_reference_point(df.iloc[0:0])
