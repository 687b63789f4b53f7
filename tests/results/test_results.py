"""load_run / load_runs on real tiny runs, on a sweep still running, and on bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

import nas
from nas.results import ResultsError, load_run, load_runs

CONTRACT_COLUMNS = (
    "number", "status", "arch_id", "ap", "ap50", "box_ap", "latency_ms", "params", "gflops",
    "epochs", "epochs_done", "full_fidelity", "image_size", "train_images", "val_images", "seed",
    "lat_device", "lat_backend", "lat_precision", "lat_batch", "lat_image_size", "lat_p90_ms",
    "lat_cv", "c_latency_ms", "c_params", "c_gflops", "feasible", "reused_from", "wall_s",
    "arch_file", "error",
)  # fmt: skip


def test_public_names_are_importable_from_nas() -> None:
    for name in ("load_run", "load_runs", "pareto_front", "hypervolume", "plot_fronts"):
        assert callable(getattr(nas, name))


@pytest.mark.slow  # uses the tiny_runs fixture (two real sweeps)
def test_load_run_of_a_finished_run(tiny_runs) -> None:
    run_a, _ = tiny_runs
    df = load_run(run_a)
    assert list(df["number"]) == [0, 1, 2]
    assert set(CONTRACT_COLUMNS) <= set(df.columns)
    assert any(c.startswith("param_") for c in df.columns)
    assert set(df["status"]) <= {"COMPLETE", "STOPPED", "FAIL", "INFEASIBLE", "RUNNING"}
    done = df[df["status"] == "COMPLETE"]
    assert len(done) >= 1 and done["latency_ms"].gt(0).all()
    assert done["arch_file"].map(lambda p: Path(p).is_absolute() and Path(p).is_file()).all()
    # the released (scaled) models are seeded first and labelled
    assert df["reference"].iloc[0].startswith("yolo_nas_pose_")
    # the hypervolume reference point is saved the first time and reused afterwards
    ref = df.attrs["hv_reference"]
    saved = json.loads((run_a / "run.json").read_text())["hv_reference"]
    assert saved == ref and set(ref) == {"ap", "latency_ms"}
    assert ref["latency_ms"] > done["latency_ms"].max()
    assert nas.hypervolume(df) == nas.hypervolume(df, reference_point=ref)
    meta = json.loads((run_a / "run.json").read_text())
    meta["hv_reference"] = {"ap": -1.0, "latency_ms": 1e6}
    (run_a / "run.json").write_text(json.dumps(meta))
    try:
        assert load_run(run_a).attrs["hv_reference"] == {"ap": -1.0, "latency_ms": 1e6}
    finally:
        meta["hv_reference"] = ref
        (run_a / "run.json").write_text(json.dumps(meta))


@pytest.mark.slow  # uses the tiny_runs fixture (two real sweeps)
def test_load_run_from_the_study_url_matches_the_table(tiny_runs) -> None:
    run_a, _ = tiny_runs
    table = load_run(run_a)
    study = load_run(run_a / "study.journal")  # the study alone, as with a storage URL
    assert list(study["number"]) == list(table["number"])
    assert list(study["status"]) == list(table["status"])
    pd.testing.assert_series_equal(study["ap"], table["ap"])
    pd.testing.assert_series_equal(study["latency_ms"], table["latency_ms"])
    assert list(study["arch_id"]) == list(table["arch_id"])


@pytest.mark.slow  # uses the tiny_runs fixture (two real sweeps)
def test_load_runs_stacks_with_a_run_column(tiny_runs) -> None:
    df = load_runs(list(tiny_runs))
    assert df.columns[0] == "run"
    assert list(df["run"].unique()) == ["tiny_a", "tiny_b"]
    assert len(df) == 6
    same = load_runs({"x": tiny_runs[0], "y": tiny_runs[0]})
    assert list(same["run"].unique()) == ["x", "y"]
    refs = [df.attrs["runs"][r]["hv_reference"] for r in ("tiny_a", "tiny_b")]
    assert df.attrs["hv_reference"]["latency_ms"] == max(r["latency_ms"] for r in refs)


def _running_run(tmp_path: Path) -> Path:
    """A run directory as it looks mid-sweep: run.json says running, trials.csv was cut in the
    middle of a line, the study knows one more trial (still running)."""
    run = tmp_path / "live"
    run.mkdir()
    meta = {"format": "opennac-run/1", "name": "live", "status": "running", "hv_reference": None}
    (run / "run.json").write_text(json.dumps(meta))
    study = optuna.create_study(study_name="live", storage=f"sqlite:///{run / 'study.db'}",
                                directions=["maximize", "minimize"])  # fmt: skip
    study.set_metric_names(["ap", "latency_ms"])
    for i, (ap, ms) in enumerate([(0.2, 3.0), (0.3, 5.0)]):
        trial = study.ask({"depth": optuna.distributions.IntDistribution(1, 4)})
        trial.set_user_attr("status", "COMPLETE")
        trial.set_user_attr("full_fidelity", True)
        trial.set_user_attr("feasible", True)
        trial.set_user_attr("arch_id", f"{i:064d}")
        study.tell(trial, [ap, ms])
    study.ask({"depth": optuna.distributions.IntDistribution(1, 4)})  # trial 2: running
    rows = [
        "number,status,arch_id,param_depth,ap,latency_ms,full_fidelity,feasible",
        f"0,COMPLETE,{0:064d},2,0.2,3.0,True,True",
        f"1,COMPLETE,{1:064d},3,0.3,5",  # being written when we read
    ]
    (run / "trials.csv").write_text("\n".join(rows))
    (run / "trials.parquet").write_bytes(b"PAR1 half written")
    return run


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_load_run_while_the_sweep_is_running(tmp_path) -> None:
    run = _running_run(tmp_path)
    df = load_run(run)
    assert list(df["number"]) == [0, 1, 2]
    assert list(df["status"]) == ["COMPLETE", "COMPLETE", "RUNNING"]
    assert df.loc[1, "ap"] == 0.3 and df.loc[1, "latency_ms"] == 5.0  # from the study
    assert bool(df.loc[1, "full_fidelity"]) and math.isnan(df.loc[2, "ap"])
    assert len(nas.pareto_front(df)) == 2
    # a reference point is used but not saved while the sweep runs
    assert df.attrs["hv_reference"]["latency_ms"] > 5.0
    assert json.loads((run / "run.json").read_text())["hv_reference"] is None


def test_bad_sources_name_the_problem(tmp_path) -> None:
    with pytest.raises(ResultsError, match="no such run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no trials yet"):
        load_run(tmp_path / "empty")
    url = f"sqlite:///{tmp_path / 'two.db'}"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=url)
    with pytest.raises(ResultsError, match="holds 2 studies"):
        load_run(url)
    with pytest.raises(ResultsError, match="no study named 'c'"):
        load_run(url, study_name="c")
    assert len(load_run(url, study_name="a")) == 0
