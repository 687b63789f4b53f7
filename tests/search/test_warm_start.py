"""Warm-started searches (``fidelity.init`` / ``fidelity.distill``, nas.parent): the experiment
keys, the parent checks, the parent trained once under Ray and reused or continued, and a real
sweep whose candidates inherit from it and are taught by it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from evaluators.checkpoint import load_checkpoint, save_checkpoint
from models.build import build_model
from models.presets import get_preset
from nas.experiment import ExperimentError, load_experiment
from nas.parent import ParentError, check_init, check_parent, parent_spec, resolve_parent
from nas.rundir import RunDir
from nas.search import SearchError, run_search, trial_settings
from search_spaces import get_space

PARENT = {"parent": "train", "arch": "yolo_nas_pose_n", "epochs": 1}


def _fidelity(**extra: Any) -> dict[str, Any]:
    return {"epochs": 1, "image_size": 64, "batch": 4, "seed": 0, **extra}


def _ckpt(tmp_path: Path, preset: str) -> Path:
    spec = get_preset(preset)
    return save_checkpoint(tmp_path / f"{preset}.pt", spec=spec, model=build_model(spec),
                           epoch=1, metrics={"ap": 0.1})


# -- the experiment keys ------------------------------------------------------------------------
def test_init_defaults_to_scratch(tiny: Any) -> None:
    assert load_experiment(tiny("a")).fidelity.init is None
    exp = load_experiment(tiny("a", fidelity=_fidelity(init="scratch")))
    assert exp.fidelity.init is None and exp.fidelity.distill is None
    exp = load_experiment(tiny("a", fidelity=_fidelity(init=PARENT, distill={"weight": 0.5})))
    assert exp.fidelity.init.arch == "yolo_nas_pose_n" and exp.fidelity.distill.weight == 0.5
    # the resolved experiment (RUN_DIR/experiment.yaml) loads back equal
    assert load_experiment(exp.to_dict()) == exp


@pytest.mark.parametrize(
    ("init", "distill", "key", "message"),
    [
        ("warm", None, "fidelity.init", "expected 'scratch' or a mapping with 'parent'"),
        ({"parent": "train", "epochs": 2}, None, "fidelity.init.arch", "needs the parent's"),
        ({"parent": "train", "arch": "yolo_nas_pose_n"}, None, "fidelity.init.epochs", "epochs"),
        ({"parent": "train", "arch": "x", "epochs": 0}, None, "fidelity.init.epochs", ">= 1"),
        ({"parent": "p.pt", "epochs": 3}, None, "fidelity.init.epochs", "only with parent: train"),
        (None, {"weight": 1.0}, "fidelity.distill", "needs fidelity.init"),
        (PARENT, {"weight": 0}, "fidelity.distill.weight", "positive"),
        (PARENT, {"temperature": -1}, "fidelity.distill.temperature", "positive"),
        ({"arch": "x"}, None, "fidelity.init.parent", "missing required key"),
    ],
)
def test_bad_init_names_the_key(tiny: Any, tmp_path: Path, init: Any, distill: Any, key: str,
                                message: str) -> None:  # fmt: skip
    fid = _fidelity(**({"init": init} if init is not None else {}),
                    **({"distill": distill} if distill is not None else {}))
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny("bad", fidelity=fid)))
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    assert str(path) in str(err.value) and f"{key}:" in str(err.value)
    assert message in str(err.value)


def test_parent_path_resolves_against_the_file(tiny: Any, tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "yolo_nas_pose_tiny")
    path = tmp_path / "sub" / "exp.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(tiny("rel", fidelity=_fidelity(
        init={"parent": "../yolo_nas_pose_tiny.pt"}))))
    exp = load_experiment(path)
    assert Path(exp.fidelity.init.parent) == ckpt.resolve()
    check_init(exp)  # a pose checkpoint for a pose search: accepted


# -- the parent checks --------------------------------------------------------------------------
def test_parent_checks_refuse_what_cannot_be_inherited(tmp_path: Path) -> None:
    import dataclasses

    pose, det = _ckpt(tmp_path, "yolo_nas_pose_tiny"), _ckpt(tmp_path, "yolo_nas_tiny")
    pose_child = get_space("yolo_nas_pose", width_scale=0.25).sample_random(0)
    det_child = get_space("yolo_nas", width_scale=0.25).sample_random(0)
    assert check_parent(det, pose_child)["task"] == "detection"  # backbone and neck for pose
    with pytest.raises(ParentError, match="a pose model cannot start a detection model"):
        check_parent(pose, det_child)
    with pytest.raises(ParentError, match="fidelity.distill: .* detection model"):
        check_parent(det, pose_child, distill=True)
    other = dataclasses.replace(pose_child, num_keypoints=5)
    with pytest.raises(ParentError, match="predicts 17 keypoints, the model 5"):
        check_parent(pose, other)
    with pytest.raises(ParentError, match=f"fidelity.init.parent: {tmp_path / 'none.pt'}"):
        check_parent(tmp_path / "none.pt", pose_child)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ParentError, match="junk.pt: not an OpenNAC checkpoint"):
        check_parent(tmp_path / "junk.pt", pose_child)


def test_parent_arch_is_a_scaled_reference_point_or_a_file(tiny: Any, tmp_path: Path) -> None:
    exp = load_experiment(tiny("p", fidelity=_fidelity(init=PARENT)))
    spec = parent_spec(exp)
    assert spec == exp.space_object().reference_specs()["yolo_nas_pose_n"]
    assert spec != get_preset("yolo_nas_pose_n")  # the space's width_scale applies
    exp.fidelity.init.arch = "yolo_nas_pose_xl"
    with pytest.raises(ParentError, match="neither a reference point of space yolo_nas_pose"):
        parent_spec(exp)
    from models.archfile import save_arch

    exp.fidelity.init.arch = str(save_arch(get_preset("yolo_nas_tiny"), tmp_path / "d.yaml"))
    with pytest.raises(ParentError, match="detection model, the search's task is pose"):
        parent_spec(exp)


def test_search_with_a_bad_parent_leaves_nothing(tiny: Any, tmp_path: Path) -> None:
    exp = tiny("badparent", fidelity=_fidelity(init={"parent": str(tmp_path / "no.pt")}))
    with pytest.raises(SearchError, match="no.pt: checkpoint not found"):
        run_search(exp, output=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs" / "badparent").exists()


# -- the parent trained once, reused, continued -------------------------------------------------
@pytest.mark.slow
def test_parent_trained_once_then_reused_or_continued(tiny: Any, tmp_path: Path,
                                                      ray_local: Any) -> None:  # fmt: skip
    from evaluators.synth import make_synthetic

    exp = load_experiment(tiny("par", fidelity=_fidelity(init=PARENT)))
    data = make_synthetic(tmp_path / "data", "pose", images=8, image_size=64, seed=0)
    settings = trial_settings(exp, str(data), tmp_path / "cache")
    said: list[str] = []
    first = resolve_parent(exp, tmp_path, settings, say=said.append)
    ckpt = tmp_path / "parent" / "last.pt"
    assert first["path"] == str(ckpt.resolve()) and first["epochs"] == 1
    assert first["arch_id"] == parent_spec(exp).arch_id and "training the parent" in said[0]
    stamp = ckpt.stat().st_mtime_ns
    again = resolve_parent(exp, tmp_path, settings, say=said.append)
    assert ckpt.stat().st_mtime_ns == stamp and "reused" in said[-1]  # not trained again
    assert again["ap"] == first["ap"]
    first_loss = load_checkpoint(ckpt)["history"][0]["loss"]
    # a longer parent (or one killed after its first epoch) continues from its last epoch
    exp.fidelity.init.epochs = 2
    longer = resolve_parent(exp, tmp_path, settings, say=said.append)
    doc = load_checkpoint(ckpt)
    assert longer["epochs"] == 2 and [h["epoch"] for h in doc["history"]] == [1, 2]
    assert doc["history"][0]["loss"] == first_loss  # epoch 1 kept, not trained again


# -- a real warm-started sweep ------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_inherits_from_and_distills_the_parent(tiny: Any, tmp_path: Path,
                                                     ray_local: Any) -> None:  # fmt: skip
    exp = tiny("warm", fidelity=_fidelity(init=PARENT, distill={"weight": 0.5}),
               budget={"trials": 3, "concurrency": 2}, weights={"keep": "all"})
    run = run_search(exp, output=tmp_path, progress=False)
    meta = RunDir.open(run).meta()
    parent = meta["parent"]
    assert parent["trained_here"] and Path(parent["path"]) == (run / "parent" / "last.pt")
    df = pd.read_parquet(run / "trials.parquet").set_index("number")
    done = df[df.status == "COMPLETE"]
    assert len(done) == 3 and (done["init"] == "parent").all()
    assert (done["distill_weight"] == 0.5).all()
    frac = done["inherited_fraction"]
    assert ((frac > 0) & (frac <= 1)).all()
    # trial 0 is the parent's own architecture (the scaled Pose N): everything inherited
    assert done.loc[0, "arch_id"] == parent["arch_id"] and frac.loc[0] == 1.0
    assert (frac.loc[[1, 2]] < 1.0).all()
    # the kept weights say where they started
    ck = load_checkpoint(run / "weights" / "trial_0000.pt")
    assert Path(ck["train_config"]["init"]) == Path(parent["path"])
    assert Path(ck["train_config"]["teacher"]) == Path(parent["path"])
