"""Random samples are valid ArchSpecs that replay exactly; every choice is reachable."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial

from models.spec import ArchSpec
from search_spaces import RandomTrial, get_space
from search_spaces.yolo_nas import POSITIONS

SPACES = ("yolo_nas", "yolo_nas_pose")


def _stages(spec: ArchSpec) -> list:
    n = spec.neck
    return [*spec.backbone.stages, n.up1, n.up2, n.down1, n.down2]


@pytest.mark.parametrize("name", SPACES)
def test_random_samples_are_valid_and_replay(name: str) -> None:
    space = get_space(name)
    names = set(space.param_names())
    for seed in range(60):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        assert isinstance(spec, ArchSpec) and spec.task == space.task
        assert ArchSpec.from_dict(spec.to_dict()) == spec
        assert set(trial.params) == names  # every trial suggests every parameter
        assert space.replay(trial.params).arch_id == spec.arch_id
        assert space.sample(FixedTrial(trial.params)).arch_id == spec.arch_id
        assert space.params_of(spec) == trial.params


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_seeded_and_varied(name: str) -> None:
    space = get_space(name)
    assert space.sample(RandomTrial(seed=7)) == space.sample(RandomTrial(seed=7))
    ids = {space.sample(RandomTrial(seed=s)).arch_id for s in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("name", SPACES)
def test_both_block_kinds_at_every_position(name: str) -> None:
    space = get_space(name)
    seen: dict[str, set[str]] = {pos: set() for pos in POSITIONS}
    for seed in range(100):
        for pos, st in zip(POSITIONS, _stages(space.sample(RandomTrial(seed=seed))), strict=True):
            seen[pos].add(st.kind)
    assert all(kinds == {"qsp", "qci"} for kinds in seen.values()), seen
    for pos_index, pos in enumerate(POSITIONS):
        for kind in ("qsp", "qci"):
            pinned = get_space(name, fixed={f"{pos}_kind": kind})
            assert _stages(pinned.sample(RandomTrial(seed=pos_index)))[pos_index].kind == kind


def test_pose_head_choices_are_reachable() -> None:
    space = get_space("yolo_nas_pose")
    shared, blocks = set(), set()
    for seed in range(60):
        head = space.sample(RandomTrial(seed=seed)).head
        shared.add(head.shared_stem)
        blocks.update(head.pose_blocks)
    assert shared == {True, False}
    assert blocks == {1, 2, 3, 4}


@pytest.mark.parametrize("name", SPACES)
def test_optuna_study_samples_replay(name: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space(name, width_scale=0.25)
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(population_size=4, seed=0),
    )
    refs = space.reference_points()
    for params in refs.values():
        study.enqueue_trial(params)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = space.sample(trial)
        trial.set_user_attr("arch_id", spec.arch_id)
        return float(spec.backbone.stages[2].hidden), float(spec.neck.up1.depth)

    study.optimize(objective, n_trials=len(refs) + 6)
    trials = study.get_trials()
    assert len(trials) == len(refs) + 6
    for trial, (ref_name, ref) in zip(trials[: len(refs)], refs.items(), strict=True):
        assert trial.params == ref
        assert trial.user_attrs["arch_id"] == space.reference_specs()[ref_name].arch_id
    for trial in trials:
        assert space.replay(trial.params).arch_id == trial.user_attrs["arch_id"]


def test_sampled_tiny_models_build_and_run() -> None:
    build = pytest.importorskip("models.build")
    import torch

    torch.set_num_threads(1)
    spaces = [
        get_space("yolo_nas", width_scale=0.125, max_depth=1),
        get_space(
            "yolo_nas_pose", width_scale=0.125, max_depth=1, fixed={"head_shared_stem": True}
        ),
        get_space(
            "yolo_nas_pose", width_scale=0.125, max_depth=1, fixed={"head_shared_stem": False}
        ),
    ]
    for space in spaces:
        for seed in range(3):
            spec = space.sample(RandomTrial(seed=seed))
            model = build.build_model(spec).eval()
            with torch.no_grad():
                out = model(torch.zeros(1, 3, 64, 64))
            assert out[0].shape == (1, 8 * 8 + 4 * 4 + 2 * 2, 4)
            assert all(torch.isfinite(t).all() for t in out)
