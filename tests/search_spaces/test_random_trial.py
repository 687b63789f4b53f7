"""RandomTrial and ReplayTrial: Optuna's suggest API without Optuna."""

from __future__ import annotations

import pytest

from search_spaces import RandomTrial, ReplayTrial, TrialValueError


def test_draws_are_seeded_in_range_and_recorded() -> None:
    a, b = RandomTrial(seed=11), RandomTrial(seed=11)
    va = [a.suggest_int(f"i{k}", 2, 9, step=1) for k in range(30)]
    vb = [b.suggest_int(f"i{k}", 2, 9) for k in range(30)]
    assert va == vb and set(va) <= set(range(2, 10)) and len(set(va)) > 3
    assert list(a.params) == [f"i{k}" for k in range(30)]
    t = RandomTrial(seed=0)
    steps = {t.suggest_int(f"s{k}", 0, 12, step=4) for k in range(40)}
    assert steps == {0, 4, 8, 12}
    logs = {t.suggest_int(f"l{k}", 1, 64, log=True) for k in range(200)}
    assert logs <= set(range(1, 65)) and 1 in logs and max(logs) > 16
    floats = [t.suggest_float(f"f{k}", 0.5, 1.5) for k in range(20)]
    assert all(0.5 <= f <= 1.5 for f in floats)
    choices = {t.suggest_categorical(f"c{k}", ["a", "b", None]) for k in range(40)}
    assert choices == {"a", "b", None}


def test_a_name_suggested_twice_keeps_its_first_value() -> None:
    t = RandomTrial(seed=3)
    first = t.suggest_int("x", 0, 1000)
    assert all(t.suggest_int("x", 0, 1000) == first for _ in range(5))
    assert t.params == {"x": first}


def test_given_params_are_used_and_checked() -> None:
    t = RandomTrial(seed=1, params={"d": 3, "k": "qci", "w": 0.5, "s": False})
    assert t.suggest_int("d", 1, 4) == 3
    assert t.suggest_categorical("k", ["qsp", "qci"]) == "qci"
    assert t.suggest_categorical("w", [0.33, 0.5]) == 0.5
    assert t.suggest_categorical("s", [False, True]) is False
    assert t.suggest_int("free", 5, 5) == 5
    with pytest.raises(TrialValueError, match="'d'.*7 is not in 1..4"):
        RandomTrial(params={"d": 7}).suggest_int("d", 1, 4)
    with pytest.raises(TrialValueError, match="'k'.*'csp' is not one of"):
        RandomTrial(params={"k": "csp"}).suggest_categorical("k", ["qsp", "qci"])
    with pytest.raises(TrialValueError, match="'s'"):  # 1 == True in Python, not here
        RandomTrial(params={"s": 1}).suggest_categorical("s", [False, True])
    with pytest.raises(TrialValueError, match="'d'.*integer"):
        RandomTrial(params={"d": 2.5}).suggest_int("d", 1, 4)


def test_replay_trial_refuses_missing_and_reports_unused() -> None:
    t = ReplayTrial({"a": 2, "extra": 1})
    assert t.suggest_int("a", 1, 3) == 2
    assert t.unused() == ["extra"]
    with pytest.raises(TrialValueError, match="'b'.*missing"):
        t.suggest_categorical("b", [1, 2])
