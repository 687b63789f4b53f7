"""Must show: the same trial with the same seed gives the same AP (and the same last training
loss, to the last bit) whether it runs alone or beside another trial.

Two real sweeps on a local Ray: the first runs the scaled YOLO-NAS-Pose N reference alone; the
second runs it with the S reference at the same time (two trials, concurrency 2; the test
checks that their run times overlapped). Each trial has a fixed thread count, a seeded data
order and deterministic kernels, so nothing about the other trial reaches its numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.rundir import RunDir
from nas.search import run_search

FIDELITY = {"epochs": 3, "image_size": 64, "batch": 4, "seed": 3}


def _row(run_dir: Path, reference: str) -> dict:
    df = RunDir(run_dir).read_trials()
    row = df[df["reference"] == reference].iloc[0].to_dict()
    assert row["status"] == "COMPLETE", row
    return row


def _times(run_dir: Path) -> dict[int, tuple]:
    import optuna

    study = optuna.load_study(study_name=RunDir(run_dir).name,
                              storage=RunDir(run_dir).storage_url())
    return {t.number: (t.datetime_start, t.datetime_complete) for t in study.trials}


@pytest.mark.slow
def test_same_seed_same_ap_alone_or_beside_another(tmp_path: Path, tiny, ray_local) -> None:
    alone = run_search(tiny("alone", fidelity=FIDELITY, budget={"trials": 1, "concurrency": 1}),
                       output=tmp_path, progress=False)
    beside = run_search(tiny("beside", fidelity=FIDELITY,
                             budget={"trials": 2, "concurrency": 2}),
                        output=tmp_path, progress=False)
    a, b = _row(alone, "yolo_nas_pose_n"), _row(beside, "yolo_nas_pose_n")
    (s0, e0), (s1, e1) = _times(beside)[0], _times(beside)[1]
    assert s0 < e1 and s1 < e0, "the two trials of the second sweep did not overlap"
    assert a["threads"] == b["threads"] == 1
    assert a["seed"] == b["seed"] == 3
    assert a["train_loss"] == b["train_loss"]  # bit for bit
    assert a["ap"] == b["ap"] and a["ap50"] == b["ap50"] and a["box_ap"] == b["box_ap"]
    # one seed per trial: run.json says the noise is not measured, and the front says so too
    noise = RunDir(beside).meta()["noise"]
    assert noise["source"] == "none" and noise["seed_sd"] is None
    assert {"ap_ci", "tied_with"} <= set((beside / "pareto.csv").read_text().splitlines()[0]
                                          .split(","))
