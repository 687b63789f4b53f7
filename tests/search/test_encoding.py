"""The space encoding the samplers can model (issue 15): every sampled trial carries every
dimension, NSGA-II's intersection search space covers all of them, the GP sampler falls back
to independent sampling for none of them; old runs' per-tier parameters still replay, and a
resumed old study keeps its encoding. Real Optuna studies, a cheap stand-in objective."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.search_space import IntersectionSearchSpace

from models import load_arch_record
from models.spec import ArchSpec
from nas.encoding import space_for_study, study_encoding
from nas.experiment import load_experiment
from search_spaces import get_space

SPACES = ("yolo_nas", "yolo_nas_pose")
OLD_RUN = Path(__file__).resolve().parent.parent / "fixtures" / "run_v1_main"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _stages(spec: ArchSpec) -> list[Any]:
    n = spec.neck
    return [*spec.backbone.stages, n.up1, n.up2, n.down1, n.down2]


def _values(spec: ArchSpec) -> tuple[float, float]:
    """A cheap deterministic (accuracy-like, cost-like) pair of the architecture."""
    cost = sum(s.depth * s.hidden * s.out_channels for s in _stages(spec)) / 1e5
    acc = sum(s.depth for s in _stages(spec)) / (1.0 + 0.01 * cost)
    return acc, cost


def _run(study: optuna.Study, space: Any, n: int) -> list[optuna.trial.FrozenTrial]:
    for _ in range(n):
        trial = study.ask()
        spec = space.sample(trial)
        trial.set_constraint("c_cost", _values(spec)[1] - 1e9)  # feasible, told as constraint
        study.tell(trial, _values(spec))
    return study.trials


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("name", SPACES)
def test_every_trial_carries_every_dimension_and_nsga2_models_all(name: str) -> None:
    space = get_space(name, width_scale=0.25)
    dims = set(space.param_names())
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(population_size=4, seed=0),
    )
    trials = _run(study, space, 12)  # three generations: children inherit from parents
    tiers = {t.params["tier"] for t in trials}
    assert tiers == {"n", "sml"}, tiers  # both tiers sampled, under the same names
    for t in trials:
        assert set(t.params) == dims, set(t.params) ^ dims
        assert space.replay(t.params) == space.sample(optuna.trial.FixedTrial(t.params))
    distributions = {k: trials[0].distributions[k] for k in dims}
    assert all(t.distributions == distributions for t in trials)  # one distribution per name
    # what NSGA-II's crossover (and GP, TPE multivariate) model: the intersection
    inter = IntersectionSearchSpace().calculate(study)
    assert set(inter) == dims
    assert set(optuna.search_space.intersection_search_space(study.trials)) == dims
    # a hidden width is inherited like any other gene: some child repeats a parent's index
    hidden = [k for k in dims if k.endswith("_hidden_idx")]
    assert len(hidden) == 8


@pytest.mark.parametrize("name", SPACES)
def test_gp_sampler_models_every_dimension(name: str) -> None:
    """Start-up trials of both tiers (with per-tier names their intersection would leave the
    hidden widths out), then one trial the GP proposes: no parameter falls back to independent
    sampling (Optuna logs that once per parameter per trial)."""
    pytest.importorskip("scipy")
    space = get_space(name, width_scale=0.25)
    handler = _Records()
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study = optuna.create_study(
                direction="maximize", sampler=optuna.samplers.GPSampler(seed=0, n_startup_trials=2)
            )
            for tier in ("n", "sml"):
                fixed = get_space(name, width_scale=0.25, fixed={"tier": tier})
                study.enqueue_trial(fixed.params_of(fixed.sample_random(0)))
            for _ in range(3):
                trial = study.ask()
                study.tell(trial, _values(space.sample(trial))[0])
    finally:
        logger.removeHandler(handler)
    said = handler.messages + [str(w.message) for w in caught]
    dynamic = [m for m in said if "dynamic search space" in m or "independent" in m.lower()]
    assert not dynamic, dynamic[:3]
    assert {t.params["tier"] for t in study.trials[:2]} == {"n", "sml"}
    assert all(set(t.params) == set(space.param_names()) for t in study.trials)


def test_old_run_parameters_replay_to_their_architectures() -> None:
    exp = load_experiment(OLD_RUN / "experiment.yaml")
    space = exp.space_object()
    for path in sorted((OLD_RUN / "archs").glob("*.yaml")):
        rec = load_arch_record(path)
        old = rec.provenance["params"]
        assert any("_hidden_t_" in k for k in old)
        spec = space.replay(old)
        assert spec == rec.spec and spec.arch_id == rec.spec.arch_id  # same id as before
        new = space.encode(old)  # the same point in the new encoding
        assert not any("_hidden_t_" in k for k in new) and space.replay(new) == spec
        assert space.with_encoding("tier").params_of(spec) == old  # and back


def test_reference_points_round_trip_both_encodings() -> None:
    for name in SPACES:
        for scale in (1.0, 0.25):
            space = get_space(name, width_scale=scale)
            for ref, params in space.reference_points().items():
                spec = space.replay(params)
                assert space.params_of(spec) == params, ref
                old = space.with_encoding("tier").params_of(spec)
                assert space.replay(old) == spec and space.encode(old) == params


def test_resumed_old_study_keeps_its_encoding(tmp_path: Path) -> None:
    space = get_space("yolo_nas", width_scale=0.25)
    study = optuna.create_study(directions=["maximize", "minimize"])
    assert study_encoding(study) == "index"
    old_space = space.with_encoding("tier")
    _run(study, old_space, 2)  # a study written before the index encoding
    assert study_encoding(study) == "tier"
    resumed, note = space_for_study(space, study, tmp_path / "run")
    assert resumed.encoding == "tier" and str(tmp_path / "run") in note
    assert "<pos>_hidden_t_<tier>" in note and "new run" in note
    trial = study.ask()
    spec = resumed.sample(trial)
    assert any(k.endswith(f"_t_{trial.params['tier']}") for k in trial.params)
    assert resumed.replay(trial.params) == spec == space.replay(trial.params)
    fresh = optuna.create_study(directions=["maximize", "minimize"])
    assert space_for_study(space, fresh, tmp_path)[1] is None
