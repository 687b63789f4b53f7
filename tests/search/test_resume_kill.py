"""The driver SIGKILLed at several points (real kills of the real `opennac` process, cued by
``OPENNAC_FAULT``) and resumed each time: the sweep ends with its budget, nothing repeated,
every fidelity honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from _kill import check_final, drive

from nas.rundir import RunDir
from search_spaces import SpaceError, get_space

pytestmark = pytest.mark.slow

EPOCHS = 2
BUDGET = 3


def test_driver_killed_thrice_then_resumed(tmp_path: Path, tiny: Any, ray_local: Any) -> None:
    exp = tiny("killed", fidelity={"epochs": EPOCHS, "image_size": 64, "batch": 4, "seed": 0},
               budget={"trials": BUDGET, "concurrency": 2}, seed_references=False)
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(exp))
    address = ray_local.get_runtime_context().gcs_address
    run = tmp_path / "killed"

    # 1. killed while trial 1 is sampled: 5 of its parameters stored, the rest missing
    rc, out, _ = drive(["search", str(path), "--output", str(tmp_path)], address, "sample:1:5")
    assert rc == -9, out
    study = optuna.load_study(study_name="killed", storage=RunDir(run).storage_url())
    t1 = study.trials[1]
    assert t1.state.name == "RUNNING" and len(t1.params) == 5
    with pytest.raises(SpaceError, match="missing"):  # what made every resume fail before
        get_space(**exp["space"]).replay(t1.params)

    # 2. killed while training: trial 1 (re-asked) has reported its first epoch, whose
    #    checkpoint is on disk
    rc, out, _ = drive(["resume", str(run)], address, "train:1:1")
    assert rc == -9, out
    assert (run / "work" / "trial_0001" / "last.pt").is_file()
    meta = RunDir.open(run).meta()
    assert meta["sessions"][1]["elapsed_s"] > 0  # the killed session's time was written

    # 3. killed while trial 2's result is written (its row stored, the trial not yet told)
    rc, out, _ = drive(["resume", str(run)], address, "write:2")
    assert rc == -9, out

    # 4. a clean resume finishes the budget
    rc, out, _ = drive(["resume", str(run)], address)
    assert rc == 0, out
    df = check_final(run, BUDGET, EPOCHS).set_index("number")
    assert len(df.loc[1].filter(like="param_").dropna()) > 5  # re-asked: missing ones sampled
    assert df.loc[1, "param_" + next(iter(t1.params))] == next(iter(t1.params.values()))
    # trial 1 continued from its checkpoint instead of epoch 0, and so did trial 2 (trained
    # fully before the kill); the rows say so
    assert df.loc[1, "resumed_from_epoch"] >= 1 and df.loc[2, "resumed_from_epoch"] == EPOCHS
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and len(meta["sessions"]) == 4
    assert not any((run / "work").glob("trial_*"))  # work folders of finished trials removed
    assert not (run / ".lock.json").exists()
