"""The searcher over a real Optuna study (no Ray here): one Optuna number per Ray trial,
early-stopped trials told PRUNED, constraints reaching the sampler, reuse, resume, budget.

Results are fed the way Ray delivers them: dicts shaped like `nas.trial` reports.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from nas.rundir import flat_attrs
from nas.searcher import StudySearcher, make_sampler
from search_spaces import get_space

OBJ = {"ap": "max", "latency_ms": "min"}
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def space() -> Any:
    return get_space("yolo_nas_pose", width_scale=0.25)


def _study(sampler: Any = None, refs: dict | None = None) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    for name, params in (refs or {}).items():
        study.enqueue_trial(params, user_attrs={"reference": name})
    return study


def _searcher(study: optuna.Study, space: Any, **kw: Any) -> StudySearcher:
    def make_config(number: int, params: dict, spec: Any, reference: str | None) -> dict:
        return {"number": number, "arch_id": spec.arch_id, "reference": reference}

    kw.setdefault("max_trials", 10)
    return StudySearcher(study, space, OBJ, epochs=2, make_config=make_config, **kw)


def _result(cfg: dict, epochs_done: int, final: str | None = None, **metrics: Any) -> dict:
    rec = {"number": cfg["number"], "arch_id": cfg["arch_id"], "epochs": 2,
           "epochs_done": epochs_done, "training_iteration": epochs_done, "done": False}
    rec.update(metrics)
    if final:
        rec.update(final=True, status=final)
    return rec


def test_references_first_one_number_per_trial(space: Any) -> None:
    refs = space.reference_points()
    study = _study(refs=refs)
    s = _searcher(study, space)
    configs = [s.suggest(f"ray{i}") for i in range(6)]
    assert [c["number"] for c in configs] == list(range(6))
    specs = space.reference_specs()
    assert [c["arch_id"] for c in configs[:4]] == [specs[n].arch_id for n in refs]
    assert [c["reference"] for c in configs[:4]] == list(refs)
    assert configs[4]["reference"] is None
    for c in configs:  # the study's params replay to the same architecture
        frozen = study.trials[c["number"]]
        assert space.replay(frozen.params).arch_id == c["arch_id"]
        assert space.sample(optuna.trial.FixedTrial(frozen.params)).arch_id == c["arch_id"]


def test_complete_stopped_failed(space: Any) -> None:
    study = _study()
    s = _searcher(study, space)
    a, b, c, d = (s.suggest(f"r{i}") for i in range(4))
    s.on_trial_complete("r0", _result(a, 2, "COMPLETE", ap=0.3, latency_ms=4.0,
                                      full_fidelity=True, feasible=True))
    # ASHA stopped r1 after its first epoch: PRUNED with its fidelity, never COMPLETE
    s.stopped.add("r1")
    s.on_trial_result("r1", _result(b, 1, ap=0.1, latency_ms=3.0))
    s.on_trial_complete("r1", _result(b, 1, ap=0.1, latency_ms=3.0))
    s.on_trial_complete("r2", _result(c, 1, "FAIL", error="TrainingDiverged: loss nan"))
    # stopped by ASHA at its last epoch (max_t): it did train fully
    s.stopped.add("r3")
    s.on_trial_complete("r3", _result(d, 2, ap=0.2, latency_ms=2.0))
    t = study.trials
    assert t[0].state == TrialState.COMPLETE and t[0].values == [0.3, 4.0]
    a = [flat_attrs(x.user_attrs) for x in t]  # the row is one attribute
    assert a[0]["status"] == "COMPLETE" and a[0]["full_fidelity"]
    assert t[1].state == TrialState.PRUNED and t[1].values is None
    assert a[1]["status"] == "STOPPED"
    assert a[1]["epochs_done"] == 1 and a[1]["full_fidelity"] is False
    assert t[2].state == TrialState.FAIL and "loss nan" in a[2]["error"]
    assert t[3].state == TrialState.COMPLETE and a[3]["full_fidelity"] is True


def test_missing_objective_is_a_failure(space: Any) -> None:
    study = _study()
    s = _searcher(study, space)
    a = s.suggest("r0")
    s.on_trial_complete("r0", _result(a, 2, "COMPLETE", ap=0.3))  # no latency
    assert study.trials[0].state == TrialState.FAIL
    assert "latency_ms" in flat_attrs(study.trials[0].user_attrs)["error"]


def test_worker_error_is_a_failure(space: Any) -> None:
    study = _study()
    s = _searcher(study, space)
    s.suggest("r0")
    s.on_trial_complete("r0", None, error=True)
    assert study.trials[0].state == TrialState.FAIL
    assert "worker failed" in flat_attrs(study.trials[0].user_attrs)["error"]


def test_constraints_reach_the_sampler(space: Any) -> None:
    sampler = make_sampler("nsga2", seed=0, population=4)
    study = _study(sampler=sampler)
    s = _searcher(study, space, constraint_limits={"max_params": 1e6})
    a, b = s.suggest("r0"), s.suggest("r1")
    s.on_trial_complete("r0", _result(a, 0, "INFEASIBLE", params=2_500_000,
                                      c_params=1_500_000.0, feasible=False))
    s.on_trial_complete("r1", _result(b, 2, "COMPLETE", ap=0.2, latency_ms=3.0,
                                      params=500_000, c_params=-500_000.0, feasible=True))
    t0, t1 = study.trials
    # the sampler's own record of constraints (what NSGA-II / TPE rank by)
    assert t0.constraints == {"c_params": 1_500_000.0}
    assert t1.constraints == {"c_params": -500_000.0}
    # never trained: told PRUNED with no objective values (no placeholder a sampler could fit)
    assert t0.user_attrs["status"] == "INFEASIBLE"
    assert t0.state == TrialState.PRUNED and t0.values is None
    assert [t.number for t in study.best_trials] == [1]
    # TPE still learns the infeasible region: it ranks a PRUNED trial by its violation
    from optuna.samplers._tpe.sampler import _get_infeasible_trial_score

    assert _get_infeasible_trial_score(t0) > 0 and _get_infeasible_trial_score(t1) == 0


def test_repeated_architecture_is_not_run_again(space: Any) -> None:
    fixed = get_space("yolo_nas_pose", width_scale=0.25,
                      fixed=space.reference_points()["yolo_nas_pose_n"])
    study = _study()
    s = _searcher(study, fixed, max_trials=4)
    first = s.suggest("r0")
    # every other sample is the same architecture: held back while r0 runs, then budget spent
    assert s.suggest("r1") is Searcher.FINISHED
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 4
    s.on_trial_complete("r0", _result(first, 2, "COMPLETE", ap=0.25, latency_ms=2.5,
                                      full_fidelity=True, feasible=True))
    t = study.trials
    assert all(x.state == TrialState.COMPLETE and x.values == [0.25, 2.5] for x in t)
    assert [x.user_attrs.get("reused_from") for x in t] == [None, 0, 0, 0]
    # a later sweep on the same study reuses it at once, without a Ray trial
    s2 = _searcher(study, fixed, max_trials=5)
    assert s2.suggest("r9") is Searcher.FINISHED
    assert study.trials[4].user_attrs["reused_from"] == 0


def test_interrupted_trial_is_run_again_under_its_number(space: Any) -> None:
    study = _study()
    s = _searcher(study, space, max_trials=3)
    a, b = s.suggest("r0"), s.suggest("r1")
    s.on_trial_complete("r0", _result(a, 2, "COMPLETE", ap=0.3, latency_ms=4.0))
    s.on_trial_result("r1", _result(b, 1, ap=0.1, latency_ms=3.0))
    s.on_trial_complete("r1", _result(b, 1, ap=0.1, latency_ms=3.0))  # killed, not stopped
    assert study.trials[1].state == TrialState.RUNNING and s.interrupted == [1]
    s2 = _searcher(study, space, max_trials=3, session=2)
    again = s2.suggest("new0")
    assert again["number"] == 1 and again["arch_id"] == b["arch_id"]
    third = s2.suggest("new1")
    assert third["number"] == 2
    assert s2.suggest("new2") is Searcher.FINISHED  # 3 trials: the budget


def test_deadline_stops_asking(space: Any) -> None:
    s = _searcher(_study(), space, deadline=0.0)
    assert s.suggest("r0") is Searcher.FINISHED


def test_recording_asha_remembers_whom_it_stopped() -> None:
    from types import SimpleNamespace

    from nas.searcher import RecordingASHA

    stopped: set[str] = set()
    asha = RecordingASHA(stopped, time_attr="epoch", metric="ap", mode="max", grace_period=1,
                         max_t=4, reduction_factor=2)
    good, bad = SimpleNamespace(trial_id="good"), SimpleNamespace(trial_id="bad")
    for t in (good, bad):
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, good, {"epoch": 1, "ap": 0.5}) == asha.CONTINUE
    assert asha.on_trial_result(None, bad, {"epoch": 1, "ap": 0.1}) == asha.STOP
    # a report without the metric (e.g. an INFEASIBLE trial's only report) is never cut
    assert asha.on_trial_result(None, good, {"epoch": 0}) == asha.CONTINUE
    assert stopped == {"bad"}
