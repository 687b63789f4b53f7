"""Experiment files: strict loading, errors naming the key and the file, shipped files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nas.experiment import (
    ExperimentError,
    find_experiment,
    load_experiment,
    parse_experiment,
    shipped_experiments,
)


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "section, bad, key",
    [
        ("fidelity", {"epochs": 1, "epoch": 2}, "fidelity.epoch"),
        ("latency", {"image_size": 64, "devcie": "cpu"}, "latency.devcie"),
        ("sampler", {"type": "random", "populaton": 4}, "sampler.populaton"),
        ("budget", {"trials": 3, "concurency": 2}, "budget.concurency"),
    ],
)
def test_unknown_key_names_key_and_file(
    tiny: Any, tmp_path: Path, section: str, bad: dict, key: str
) -> None:
    path = _write(tmp_path, tiny("x", **{section: bad}))
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    msg = str(err.value)
    assert str(path) in msg and key in msg and "unknown key" in msg


def test_unknown_top_level_key(tiny: Any, tmp_path: Path) -> None:
    doc = tiny("x")
    doc["objectivs"] = {"ap": "max"}
    path = _write(tmp_path, doc)
    with pytest.raises(ExperimentError, match=r"exp\.yaml: objectivs: unknown key"):
        load_experiment(path)


@pytest.mark.parametrize(
    "changes, key, expected",
    [
        ({"fidelity": {"epochs": "two"}}, "fidelity.epochs", "expected an integer"),
        ({"budget": {"trials": 2.5}}, "budget.trials", "expected an integer"),
        ({"seed_references": "yes"}, "seed_references", "expected true or false"),
        ({"latency": {"image_size": 100}}, "latency.image_size", "multiple of 32"),
        ({"sampler": {"type": "cmaes"}}, "sampler.type", "nsga2"),
        ({"objectives": {"ap": "min"}}, "objectives.ap", "'max'"),
        ({"objectives": {"latency_ms": "min"}}, "objectives", "accuracy objective"),
        ({"task": "detection"}, "task", "does not match space"),
        ({"space": {"name": "yolo_nas_pose", "width_scale": -1}}, "space", "width_scale"),
        ({"space": {"name": "resnet"}}, "space.name", "unknown search space"),
        ({"data": {"synthetic": {"images": 8}, "path": "x"}}, "data", "exactly one"),
        ({"data": {"synthetic": {"images": 8, "val_fraction": 1.0}}},
         "data.synthetic.val_fraction", "in (0, 1)"),
        ({"data": {"synthetic": {"images": 8, "crowd": "yes"}}}, "data.synthetic.crowd",
         "expected true or false"),
        ({"budget": {"trials": None}}, "budget", "wall_time_s"),
        ({"scheduler": {"type": "asha", "max_t": 5}}, "scheduler.max_t", "fidelity.epochs"),
        ({"variants": {"budgets": {"n": 2.0}, "match_references": True}}, "variants", "not both"),
        ({"variants": {"match_references": False}}, "variants.match_references", "budgets"),
        ({"latency": {"device": "cuda"}}, "resources.gpu", "needs a GPU"),
        ({"fidelity": {"recipe": "yolo_nas_x"}}, "fidelity.recipe", "unknown recipe"),
        ({"fidelity": {"recipe": "yolo_nas_s"}}, "fidelity.recipe", "detection recipe"),
        ({"fidelity": {"mosaic": "yes"}}, "fidelity.mosaic", "expected true or false"),
        ({"fidelity": {"oks_area_factor": -0.5}}, "fidelity.oks_area_factor", "positive number"),
        ({"fidelity": {"epochs": 1, "channels_last": True}}, "fidelity.channels_last",
         "needs amp_cpu"),
    ],
)
def test_bad_values_name_the_key(
    tiny: Any, tmp_path: Path, changes: dict, key: str, expected: str
) -> None:
    path = _write(tmp_path, tiny("x", **changes))
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}") and expected in msg, msg


def test_channels_last_loads_with_bf16_or_a_gpu(tiny: Any) -> None:
    """fp32 channels-last training on CPU is refused (above); with bf16 or on GPUs it loads."""
    bf16 = load_experiment(tiny("x", fidelity={"epochs": 1, "channels_last": True,
                                               "amp_cpu": True}))
    assert bf16.fidelity.channels_last and bf16.fidelity.amp_cpu
    gpu = load_experiment(tiny("x", fidelity={"epochs": 1, "channels_last": True},
                               resources={"cpu": 1, "gpu": 1}))
    assert gpu.fidelity.channels_last and gpu.resources.gpu == 1


def test_defaults_and_round_trip(tiny: Any, tmp_path: Path) -> None:
    exp = load_experiment(tiny("x"))
    assert exp.objectives == {"ap": "max", "latency_ms": "min"}
    assert exp.seed_references is True and exp.variants.uses_references
    assert exp.space.overrides == {"width_scale": 0.25}
    again = parse_experiment(yaml.safe_load(yaml.safe_dump(exp.to_dict())), "resolved")
    assert again == exp


def test_relative_paths_resolve_against_the_file(tiny: Any, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    doc = tiny("x", data={"path": "data/coco.yaml"})
    path = tmp_path / "sub" / "exp.yaml"
    path.write_text(yaml.safe_dump(doc))
    exp = load_experiment(path)
    assert exp.data.path == str((tmp_path / "sub" / "data" / "coco.yaml").resolve())


def test_scientific_notation_numbers(tiny: Any) -> None:
    exp = load_experiment(tiny("x", constraints={"max_params": "5e6"}))
    assert exp.constraints["max_params"] == 5e6


@pytest.mark.parametrize("name", ["quickstart", "coco_pose", "coco_detection"])
def test_shipped_experiments_load(name: str) -> None:
    assert name in shipped_experiments()
    exp = load_experiment(name)
    assert exp.name == name
    assert find_experiment(f"{name}.yaml") == shipped_experiments()[name]
    if name.startswith("coco"):
        assert exp.latency.target == "NVIDIA T4" and exp.resources.gpu == 1
        assert exp.variants.uses_references
        assert exp.scheduler.type == "none"  # no AP-only ASHA until the benchmark shows a gain
        assert Path(exp.data.path).is_file()  # the data YAML shipped next to it


def test_missing_file_lists_shipped(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="quickstart"):
        load_experiment(tmp_path / "nope.yaml")


def test_gp_sampler_needs_scipy_or_works() -> None:
    from nas.searcher import make_sampler

    try:
        import scipy  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="scipy"):
            make_sampler("gp", 0, 4)
    else:  # pragma: no cover - depends on the environment
        import optuna

        def first(seed: int) -> float:  # a seeded GP sampler proposes reproducibly
            study = optuna.create_study(sampler=make_sampler("gp", seed, 4))
            return study.ask().suggest_float("x", 0.0, 1.0)

        assert isinstance(make_sampler("gp", 0, 4), optuna.samplers.GPSampler)
        assert first(0) == first(0) != first(1)
