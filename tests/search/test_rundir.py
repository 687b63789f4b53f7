"""Run directories, the trials table, progress lines, and sweeps refused before they start."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from nas.progress import Progress, fmt_duration, fmt_trial
from nas.rundir import COLUMNS, HEAD_COLUMNS, RunDir, RunDirError, trial_row, trials_frame
from nas.search import SearchError, run_search
from nas.variants import parse_budget_args, select_variants


def test_create_refuses_an_existing_run(tmp_path: Path) -> None:
    rd = RunDir.create(tmp_path / "r", "r")
    assert rd.meta()["format"] == "opennac-run/3" and rd.meta()["status"] == "created"
    with pytest.raises(RunDirError, match="opennac resume"):
        RunDir.create(tmp_path / "r", "r")
    with pytest.raises(RunDirError, match="not a run directory"):
        RunDir.open(tmp_path)
    rd.update_meta(hv_reference={"ap": 0.0})
    rd.update_meta(status="finished")
    assert rd.meta()["hv_reference"] == {"ap": 0.0}  # keys of other writers are kept


def test_trials_table_columns_and_round_trip(tmp_path: Path) -> None:
    rows = [
        {"number": 1, "status": "COMPLETE", "arch_id": "b" * 64, "param_depth": 2,
         "param_kind": "qsp", "ap": 0.3, "latency_ms": 2.0, "params": 1000, "feasible": True,
         "full_fidelity": True},
        {"number": 0, "status": "FAIL", "arch_id": "a" * 64, "param_depth": 3,
         "param_width": 0.5, "error": "boom"},
    ]
    df = trials_frame(rows)
    params = ["param_depth", "param_kind", "param_width"]
    assert list(df.columns) == [*HEAD_COLUMNS, *params, *COLUMNS]
    assert list(df["number"]) == [0, 1]
    assert str(df["param_depth"].dtype) == "Int64" and str(df["params"].dtype) == "Int64"
    rd = RunDir.create(tmp_path / "r", "r")
    rd.write_trials(rows)
    back = rd.read_trials()
    assert list(back.columns) == list(df.columns)
    assert back.loc[1, "ap"] == 0.3 and back.loc[0, "error"] == "boom"
    csv = pd.read_csv(rd.trials_csv)
    assert list(csv.columns) == list(df.columns) and csv.loc[0, "param_depth"] == 3


def test_trial_row_from_a_study() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    t = study.ask()
    t.suggest_int("depth", 1, 3)
    t.set_user_attr("arch_id", "x")
    running = trial_row(study.trials[0])
    assert running["status"] == "RUNNING" and running["arch_id"] == "x"
    t.set_user_attr("status", "INFEASIBLE")
    t.set_user_attr("c_params", 5.0)
    study.tell(t, [0.0, 1.0])
    row = trial_row(study.trials[0])
    assert row["status"] == "INFEASIBLE" and row["c_params"] == 5.0 and "param_depth" in row


def test_variant_selection_and_budget_args() -> None:
    df = pd.DataFrame({
        "number": [0, 1, 2, 3],
        "status": ["COMPLETE", "COMPLETE", "STOPPED", "COMPLETE"],
        "ap": [0.3, 0.5, 0.9, 0.8],
        "latency_ms": [2.0, 4.0, 1.0, 3.0],
        "full_fidelity": [True, True, False, True],
        "feasible": [True, True, True, pd.NA],
    })
    chosen = select_variants(df, {"n": 2.5, "s": 4.0, "x": 1.0})
    assert {k: int(v["number"]) for k, v in chosen.items()} == {"n": 0, "s": 1}
    assert parse_budget_args(["n=2.5", "s=4"]) == {"n": 2.5, "s": 4.0}
    for bad in (["n"], ["n=fast"], ["=3"], ["n=-1"]):
        with pytest.raises(ValueError, match="NAME=MS"):
            parse_budget_args(bad)


def test_progress_lines() -> None:
    out = io.StringIO()
    p = Progress(total=4, stream=out, running=lambda: 1)
    p.start("runs/x", 1, 0, 0)
    row = {"number": 2, "status": "INFEASIBLE", "c_params": 3.0, "c_gflops": -1.0,
           "params": 2e6}
    p.trial_finished(row, {"INFEASIBLE": 1}, None)
    text = out.getvalue()
    assert "[1/4] #2 INFEASIBLE 2.00M (over params)" in text and "running 1" in text
    assert "front: none yet" in text and "elapsed" in text and "left" in text
    assert fmt_duration(3725) == "1:02:05" and fmt_duration(75) == "1:15"
    assert "reused #0" in fmt_trial({"number": 3, "status": "COMPLETE", "reused_from": 0})


def test_sweep_refused_before_start_leaves_nothing(tmp_path: Path, tiny: Any) -> None:
    exp = tiny("nodata", data={"path": str(tmp_path / "missing")})
    with pytest.raises(SearchError, match="does not exist"):
        run_search(exp, output=tmp_path, progress=False)
    assert not (tmp_path / "nodata").exists()
    exp = tiny("wrongdev", latency={"target": "NVIDIA T4", "image_size": 64})
    with pytest.raises(SearchError, match="T4"):
        run_search(exp, output=tmp_path, progress=False)
    assert not (tmp_path / "wrongdev").exists()


def test_a_running_sweep_is_not_joined(tmp_path: Path, tiny: Any) -> None:
    from filelock import FileLock

    from nas.experiment import dump_experiment, load_experiment
    from nas.search import resume_search

    rd = RunDir.create(tmp_path / "busy", "busy")
    dump_experiment(load_experiment(tiny("busy")), rd.experiment_yaml)
    with FileLock(str(rd.lock_file)):
        with pytest.raises(SearchError, match="already running"):
            resume_search(rd.path, progress=False)


def test_cli_help_and_user_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True,
                              text=True, timeout=60)

    for cmd in ("search", "resume", "status", "variants"):
        res = cli(cmd, "--help")
        assert res.returncode == 0 and "usage: opennac " + cmd in res.stdout
    res = cli("search", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2 and "no such experiment file" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: pose\nspace: {name: yolo_nas_pose}\n"
                   "data: {synthetic: {images: 8}}\nbudget: {trials: three}\n")
    res = cli("search", str(bad))
    assert res.returncode == 2 and f"{bad}: budget.trials: expected an integer" in res.stderr
    for cmd in ("resume", "status", "variants"):
        res = cli(cmd, str(tmp_path))
        assert res.returncode == 2 and "not a run directory" in res.stderr
