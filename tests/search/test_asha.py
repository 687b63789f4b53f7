"""A real ASHA sweep (real Ray with 2 CPUs, real Optuna, real trainer): trials that ASHA stops
early are recorded STOPPED with the epochs they did, told to Optuna as PRUNED (never COMPLETE at
full fidelity) and kept out of the front and the variants (issue 5).

The settings make the candidates' AP non-zero and different by the first rung, so ASHA has
something to cut: the detection space at a quarter of its widths with 4 classes, 64 synthetic
96 px images (48 train), batch 4, lr 1e-2, 4 epochs; ASHA with grace 2, max_t 4, reduction 3
(one rung, at epoch 2: a trial goes on only if its AP there is in the top third of the trials
that reached it before); 6 trials one at a time (the scaled YOLO-NAS S/M/L first, then random
ones), so each trial meets the rung values of all the ones before it, in a fixed order. Trial 0
has nothing to be compared to and always completes; with 5 later trials, ASHA stops none only if
each one beat (nearly) all before it at epoch 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models import load_arch_record
from nas.rundir import RunDir, flat_attrs
from nas.search import run_search
from nas.variants import select_variants

pytestmark = pytest.mark.slow

EPOCHS = 4
GRACE = 2


def _experiment() -> dict[str, Any]:
    return {
        "name": "asha",
        "task": "detection",
        "space": {"name": "yolo_nas", "width_scale": 0.25, "num_classes": 4},
        "data": {"synthetic": {"images": 64, "image_size": 96, "seed": 0}},
        "fidelity": {"epochs": EPOCHS, "image_size": 96, "batch": 4, "seed": 0, "lr": 1e-2},
        "latency": {"image_size": 64, "warmup": 1, "iters": 5},
        "sampler": {"type": "random", "seed": 0},
        "scheduler": {"type": "asha", "grace": GRACE, "max_t": EPOCHS, "reduction": 3},
        "budget": {"trials": 6, "concurrency": 1},
        "ray": {"num_cpus": 2},
    }


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory: pytest.TempPathFactory, ray_local: Any) -> Path:
    return run_search(_experiment(), output=tmp_path_factory.mktemp("runs"), progress=False)


def test_asha_stops_weak_trials_at_a_rung(asha_run: Path) -> None:
    df = pd.read_csv(asha_run / "trials.csv")
    assert sorted(df["number"]) == list(range(6))
    assert set(df["status"]) <= {"COMPLETE", "STOPPED"}, df[["number", "status", "error"]]
    # the candidates learned something: ASHA compared real, non-zero AP (not ties at 0)
    assert (df["ap"] > 0).any() and df["ap"].nunique() > 1, df[["number", "ap"]]
    stopped = df[df["status"] == "STOPPED"]
    assert len(stopped) >= 1, df[["number", "status", "ap", "epochs_done"]]
    # ASHA cuts only at a rung below max_t: here the grace period (epoch 2)
    assert (stopped["epochs_done"] == GRACE).all()
    assert (stopped["epochs_done"] < stopped["epochs"]).all()
    assert (stopped["epochs"] == EPOCHS).all()
    assert (~stopped["full_fidelity"].astype(bool)).all()
    assert stopped["ap"].notna().all() and stopped["latency_ms"].notna().all()
    # the rest of its fidelity and its times, though it never reported a final record
    assert (stopped["train_images"] == 48).all() and (stopped["val_images"] == 16).all()
    assert (stopped["image_size"] == 96).all() and (stopped["seed"] == 0).all()
    assert (stopped["train_s"] > 0).all() and (stopped["wall_s"] >= stopped["train_s"]).all()
    assert 0 not in set(stopped["number"])  # the first trial has nothing to be compared to
    complete = df[df["status"] == "COMPLETE"]
    assert len(complete) >= 1
    assert complete["full_fidelity"].astype(bool).all()
    assert (complete["epochs_done"] == EPOCHS).all()
    # a stopped trial keeps its frozen file, marked with its partial fidelity
    for _, row in stopped.iterrows():
        rec = load_arch_record(asha_run / row["arch_file"])
        assert rec.metrics["status"] == "STOPPED" and rec.metrics["full_fidelity"] is False
        assert rec.metrics["epochs_done"] == GRACE and rec.spec.arch_id == row["arch_id"]


def test_stopped_trials_are_pruned_in_the_study(asha_run: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name="asha", storage=RunDir(asha_run).storage_url())
    df = pd.read_csv(asha_run / "trials.csv").set_index("number")
    for t in study.trials:
        row = df.loc[t.number]
        attrs = flat_attrs(t.user_attrs)
        assert attrs["status"] == row["status"]
        assert attrs["epochs_done"] == row["epochs_done"] and attrs["epochs"] == EPOCHS
        assert attrs["image_size"] == 96 and attrs["train_images"] == 48
        assert attrs["val_images"] == 16 and attrs["seed"] == 0
        if row["status"] == "STOPPED":
            assert t.state == TrialState.PRUNED and t.values is None
            assert attrs["full_fidelity"] is False and attrs["epochs_done"] < EPOCHS
            assert attrs["ap"] == pytest.approx(row["ap"])  # its partial AP, kept as an attr
        else:
            assert t.state == TrialState.COMPLETE
            assert attrs["full_fidelity"] is True and attrs["epochs_done"] == EPOCHS
            assert t.values == pytest.approx([row["ap"], row["latency_ms"]])
    pruned = {t.number for t in study.get_trials(states=(TrialState.PRUNED,))}
    assert pruned == set(df.index[df["status"] == "STOPPED"]) and pruned
    assert not pruned & {t.number for t in study.best_trials}


def test_stopped_trials_stay_out_of_front_and_variants(asha_run: Path) -> None:
    df = pd.read_csv(asha_run / "trials.csv")
    stopped = set(df.loc[df["status"] == "STOPPED", "number"])
    pareto = pd.read_csv(asha_run / "pareto.csv")
    assert len(pareto) >= 1 and not stopped & set(pareto["number"])
    assert (pareto["status"] == "COMPLETE").all()
    variant_files = (asha_run / "variants").glob("*.yaml")
    chosen = {load_arch_record(p).provenance["trial"] for p in variant_files}
    assert not stopped & chosen
    # even a budget every trial fits, with the stopped ones' AP the highest, picks no stopped one
    boosted = df.copy()
    boosted.loc[boosted["status"] == "STOPPED", "ap"] = 1.0
    best = select_variants(boosted, {"any": 1e9})["any"]
    assert best["status"] == "COMPLETE" and int(best["number"]) not in stopped
