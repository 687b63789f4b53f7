"""`scheduler: pareto_asha`: successive halving ranked by Pareto fronts (issue 15). A real Ray
Tune run with the real scheduler on a stand-in trainable (each candidate reports a fixed
latency and a growing AP per epoch): the fast, weak candidate that Ray's AP-only ASHA cuts (fed
the same reports) is kept; dominated ones are cut at the first rung."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nas.experiment import ExperimentError, load_experiment
from nas.schedulers import ParetoASHA, RecordingASHA, front_ranks, make_scheduler

OBJ = {"ap": "max", "latency_ms": "min"}
# name -> (AP per epoch, latency ms), run one at a time in this order
CANDIDATES = {
    "accurate": (0.10, 10.0),  # on the front: best AP
    "fast": (0.02, 1.0),  # on the front: fastest (AP-only ASHA cuts it)
    "dominated": (0.05, 20.0),  # slower and less accurate than "accurate"
    "slow_weak": (0.01, 30.0),  # dominated by everything
}
EPOCHS = 3


def _run(scheduler: Any, tmp: Path) -> dict[str, int]:
    """Epochs each candidate trained under ``scheduler`` (real Ray Tune, one at a time)."""
    from ray import tune

    candidates, epochs = dict(CANDIDATES), EPOCHS  # the closure travels by value to workers

    def trainable(config: dict[str, Any]) -> None:
        ap, lat = candidates[config["name"]]
        for epoch in range(1, epochs + 1):
            tune.report({"epoch": epoch, "ap": ap * epoch, "latency_ms": lat})

    tuner = tune.Tuner(
        trainable,
        param_space={"name": tune.grid_search(list(CANDIDATES))},
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp), verbose=0),
    )
    results = tuner.fit()
    return {r.config["name"]: int(r.metrics["epoch"]) for r in results}


@pytest.mark.slow
def test_pareto_asha_keeps_the_fast_front_in_real_ray(ray_local: Any, tmp_path: Path) -> None:
    stopped: set[str] = set()
    pareto = ParetoASHA(OBJ, stopped, grace_period=1, max_t=EPOCHS, reduction_factor=2)
    epochs = _run(pareto, tmp_path / "pareto")
    assert epochs == {"accurate": 3, "fast": 3, "dominated": 1, "slow_weak": 1}, epochs
    assert len(stopped) == 2  # recorded for the searcher (told PRUNED)



def test_ap_only_asha_cuts_the_fast_candidate() -> None:
    """What `pareto_asha` fixes: Ray's ASHA fed the same first-rung reports stops "fast"."""
    ap_only = RecordingASHA(set(), time_attr="epoch", metric="ap", mode="max", grace_period=1,
                            max_t=EPOCHS, reduction_factor=2, stop_last_trials=False)
    actions = {}
    for name, (ap, lat) in CANDIDATES.items():
        trial = SimpleNamespace(trial_id=name)
        ap_only.on_trial_add(None, trial)
        actions[name] = ap_only.on_trial_result(None, trial,
                                                {"epoch": 1, "ap": ap, "latency_ms": lat})
    assert actions["fast"] == ap_only.STOP and actions["accurate"] == ap_only.CONTINUE


def test_front_ranks_and_rungs() -> None:
    assert front_ranks([(1, 1), (0, 2), (2, 0), (2, 2), (3, 3)]) == [0, 0, 0, 1, 2]
    assert front_ranks([]) == []
    s = ParetoASHA(OBJ, set(), grace_period=2, max_t=4, reduction_factor=3)
    assert s.milestones == [2]  # as ASHA: rungs below max_t
    assert ParetoASHA(OBJ, set(), grace_period=1, max_t=20, reduction_factor=2).milestones == \
        [1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match="reduction_factor"):
        ParetoASHA(OBJ, set(), reduction_factor=1)


def test_reports_without_objectives_are_never_cut() -> None:
    s = ParetoASHA(OBJ, set(), grace_period=1, max_t=4, reduction_factor=2)
    a, b = SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")
    assert s.on_trial_result(None, a, {"epoch": 1, "ap": 0.5, "latency_ms": 1.0}) == s.CONTINUE
    # an INFEASIBLE trial's only report (final, no AP) and a report missing latency
    assert s.on_trial_result(None, b, {"epoch": 1, "final": True}) == s.CONTINUE
    assert s.on_trial_result(None, b, {"epoch": 1, "ap": 0.1}) == s.CONTINUE
    assert s.on_trial_result(None, b, {"epoch": 1, "ap": 0.1, "latency_ms": 9.0}) == s.STOP
    assert s.stopped == {"b"} and set(s.recorded[1]) == {"a", "b"}


def test_experiment_selects_the_scheduler(tiny: Any) -> None:
    exp = load_experiment(tiny("p", scheduler={"type": "pareto_asha", "grace": 1,
                                               "reduction": 2}))
    stopped: set[str] = set()
    sch = make_scheduler(exp, stopped)
    assert isinstance(sch, ParetoASHA) and sch.stopped is stopped
    assert sch.objectives == dict(exp.objectives) and sch.max_t == exp.fidelity.epochs
    assert isinstance(make_scheduler(load_experiment(tiny("a", scheduler={"type": "asha"})),
                                     stopped), RecordingASHA)
    assert make_scheduler(load_experiment(tiny("n", scheduler={"type": "none"})), stopped) is None
    with pytest.raises(ExperimentError, match="scheduler.type.*pareto_asha"):
        load_experiment(tiny("x", scheduler={"type": "hyperband"}))


def test_shipped_coco_experiments_do_not_cut_on_ap_alone() -> None:
    root = Path(__file__).resolve().parents[2] / "experiments"
    for name in ("coco_detection", "coco_pose"):
        assert load_experiment(root / f"{name}.yaml").scheduler.type != "asha", name
