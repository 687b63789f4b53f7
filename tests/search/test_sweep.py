"""Real sweeps: real Ray (2 CPUs), real Optuna, the real trainer and latency harness, on tiny
settings (width-scaled pose space, 8 synthetic 64 px images, 1 epoch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models import load_arch_record
from nas.rundir import RunDir
from nas.search import SearchError, run_search
from search_spaces import get_space

pytestmark = pytest.mark.slow

SPACE = {"name": "yolo_nas_pose", "width_scale": 0.25}


def _ray_trials(run_dir: Path) -> list[str]:
    """Trial folders Ray created (one per Ray trial, over all sessions)."""
    return sorted(p.name for p in (run_dir / "ray").glob("*/trial_*") if p.is_dir())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, tiny: Any, ray_local: Any) -> Path:
    """3 trials seeded with the released models (scaled): #1 made to fail after its first
    epoch (OPENNAC_FAIL_TRIALS, read by the driver), #0 and #2 complete."""
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENNAC_FAIL_TRIALS", "1")
        return run_search(tiny("e2e"), output=out, progress=False)


def test_sweep_end_to_end(sweep: Path) -> None:
    rd = RunDir.open(sweep)
    meta = rd.meta()
    assert meta["status"] == "finished" and meta["format"] == "opennac-run/3"
    df = pd.read_parquet(sweep / "trials.parquet")
    csv = pd.read_csv(sweep / "trials.csv")
    assert list(df.columns) == list(csv.columns) and len(df) == len(csv) == 3
    assert list(df["number"]) == [0, 1, 2]
    assert list(df["status"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    for col in ("ap", "latency_ms", "params", "gflops", "lat_device", "lat_p90_ms", "train_s"):
        assert df.loc[df.status == "COMPLETE", col].notna().all(), col
    assert (df.loc[df.status == "COMPLETE", "full_fidelity"]).all()
    # every score says how it was trained: the recipe of the nearest released head width
    assert df.loc[df.status == "COMPLETE", "recipe"].str.match(r"yolo_nas_pose_[nsml]/v1").all()
    assert (df.loc[df.status == "COMPLETE", "latency_ms"] > 0).all()
    assert any(c.startswith("param_") for c in df.columns)
    # one Ray trial per Optuna trial
    assert _ray_trials(sweep) == ["trial_0", "trial_1", "trial_2"]
    # frozen files of the evaluated architectures, with metrics and provenance
    for _, row in df[df.status == "COMPLETE"].iterrows():
        rec = load_arch_record(sweep / row["arch_file"])
        assert rec.spec.arch_id == row["arch_id"]
        assert rec.metrics["ap"] == pytest.approx(row["ap"])
        assert rec.metrics["latency_ms"] == pytest.approx(row["latency_ms"])
        assert rec.provenance["trial"] == row["number"] and rec.provenance["run"] == "e2e"
    pareto = pd.read_csv(sweep / "pareto.csv")
    assert set(pareto["number"]) <= {0, 2} and len(pareto) >= 1
    assert (sweep / "experiment.yaml").is_file() and (sweep / "study.journal").is_file()


def test_failing_trial_recorded_sweep_goes_on(sweep: Path) -> None:
    df = pd.read_parquet(sweep / "trials.parquet")
    failed = df[df.number == 1].iloc[0]
    assert failed["status"] == "FAIL"
    assert "InjectedFailure" in failed["error"] and "after epoch 1" in failed["error"]
    assert failed["failure"] == "injected"  # its kind, recorded once (never raised to Ray)
    assert failed["epochs_done"] == 1  # it did train: the failure is mid-run
    assert pd.isna(failed["arch_file"])


def test_reference_points_replay_exactly(sweep: Path) -> None:
    import optuna

    space = get_space(**SPACE)
    refs = space.reference_specs()
    df = pd.read_parquet(sweep / "trials.parquet")
    names = list(refs)[:3]  # budget of 3: Pose N, S, M in order
    assert list(df["reference"]) == names
    assert list(df["arch_id"]) == [refs[n].arch_id for n in names]
    study = optuna.load_study(study_name="e2e", storage=RunDir(sweep).storage_url())
    for t in study.trials:
        replayed = space.sample(optuna.trial.FixedTrial(t.params))
        assert replayed.arch_id == refs[names[t.number]].arch_id


def test_variant_files_load_build_and_carry_metrics(sweep: Path) -> None:
    import torch

    from models.build import build_model

    files = sorted((sweep / "variants").glob("*.yaml"))
    assert files, "no variant written"
    df = pd.read_parquet(sweep / "trials.parquet").set_index("number")
    for path in files:
        rec = load_arch_record(path)
        m = rec.metrics
        assert m["latency_ms"] <= m["budget_ms"] + 1e-9
        assert m["reference"].startswith("yolo_nas_pose_")
        row = df.loc[rec.provenance["trial"]]
        assert row["status"] == "COMPLETE" and m["ap"] == pytest.approx(row["ap"])
        model = build_model(rec.spec).eval()
        with torch.no_grad():
            boxes, scores, kpts = model(torch.zeros(1, 3, 64, 64))
        assert kpts.shape[-2:] == (17, 3) and torch.isfinite(scores).all()
    meta = json.loads((sweep / "run.json").read_text())
    assert set(meta["variants"]) == {p.stem for p in files}


def test_status_and_variants_commands(sweep: Path) -> None:
    res = _cli("status", str(sweep), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["finished"] == 3 and info["counts"] == {"COMPLETE": 2, "FAIL": 1}
    assert info["running"] == []
    df = pd.read_parquet(sweep / "trials.parquet")
    fastest = df[df.status == "COMPLETE"].sort_values("latency_ms").iloc[0]
    budget = float(fastest["latency_ms"]) + 1e-3
    before = sorted((sweep / "variants").glob("*.yaml"))
    res = _cli("variants", str(sweep), "--budget", f"tight={budget}", "--budget", "none=1e-6",
               "--label", "custom")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "variant tight:" in res.stdout and "none within" in res.stdout
    rec = load_arch_record(sweep / "variants" / "custom" / "tight.yaml")
    assert rec.provenance["trial"] == fastest["number"]
    assert sorted((sweep / "variants").glob("*.yaml")) == before  # the run's own set stays
    bad = _cli("variants", str(sweep), "--budget", "s=fast")
    assert bad.returncode == 2 and "NAME=MS" in bad.stderr


def test_existing_run_dir_is_never_overwritten(sweep: Path, tiny: Any) -> None:
    before = (sweep / "trials.csv").read_text()
    with pytest.raises(SearchError, match="never overwritten"):
        run_search(tiny("e2e"), output=sweep.parent, progress=False)
    res = _cli("search", str(sweep / "experiment.yaml"), "--output", str(sweep.parent))
    assert res.returncode == 2 and "opennac resume" in res.stderr
    assert (sweep / "trials.csv").read_text() == before


def test_constraint_violations_never_train(tmp_path: Path, tiny: Any, ray_local: Any) -> None:
    refs = get_space(**SPACE).reference_specs()
    from models.complexity import complexity

    n_params = complexity(refs["yolo_nas_pose_n"], image_size=64).params
    exp = tiny("constrained", budget={"trials": 4, "concurrency": 2},
               constraints={"max_params": n_params + 1})
    run = run_search(exp, output=tmp_path, progress=False)
    df = pd.read_parquet(run / "trials.parquet").set_index("number")
    assert df.loc[0, "status"] == "COMPLETE" and bool(df.loc[0, "feasible"])
    bad = df.loc[[1, 2, 3]]
    assert (bad["status"] == "INFEASIBLE").all() and (bad["c_params"] > 0).all()
    assert (~bad["feasible"].astype(bool)).all()
    # never trained, never measured, no frozen file
    assert (bad["epochs_done"] == 0).all() and bad["train_s"].isna().all()
    assert bad["latency_ms"].isna().all() and bad["arch_file"].isna().all()
    assert len(list((run / "archs").glob("*.yaml"))) == 1
    import optuna

    study = optuna.load_study(study_name="constrained", storage=RunDir(run).storage_url())
    assert all(t.constraints["c_params"] > 0 for t in study.trials[1:])
    assert [t.number for t in study.best_trials] == [0]


def test_repeated_architecture_is_not_retrained(tmp_path: Path, tiny: Any, ray_local: Any) -> None:
    params = get_space(**SPACE).reference_points()["yolo_nas_pose_n"]
    exp = tiny("dup", space={**SPACE, "fixed": params}, seed_references=False)
    run = run_search(exp, output=tmp_path, progress=False)
    df = pd.read_parquet(run / "trials.parquet")
    assert list(df["status"]) == ["COMPLETE"] * 3
    assert df["arch_id"].nunique() == 1
    assert df["reused_from"].tolist()[0] is pd.NA or pd.isna(df["reused_from"].iloc[0])
    assert df["reused_from"].iloc[1:].tolist() == [0, 0]
    assert df["ap"].nunique() == 1 and df["latency_ms"].nunique() == 1
    assert _ray_trials(run) == ["trial_0"]  # trained once: one Ray trial in all


def test_interrupted_sweep_resumes_to_budget(tmp_path: Path, tiny: Any, ray_local: Any) -> None:
    """A sweep run by `opennac search` (on this test's Ray) gets SIGINT after its first trial
    finishes; `resume` completes it: every number once, no finished trial run again."""
    import os
    import signal
    import time

    import optuna
    import yaml

    exp = tiny("inter", fidelity={"epochs": 2, "image_size": 64, "batch": 4, "seed": 0},
               budget={"trials": 4, "concurrency": 2})
    path = tmp_path / "inter.yaml"
    path.write_text(yaml.safe_dump(exp))
    address = ray_local.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas", "search", str(path), "--output", str(tmp_path),
         "--address", address, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
    )
    journal = tmp_path / "inter" / "study.journal"
    deadline = time.monotonic() + 150
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if journal.exists():
            try:  # read while the sweep writes it
                study = optuna.load_study(study_name="inter",
                                          storage=RunDir(tmp_path / "inter").storage_url())
                done = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
            except Exception:  # noqa: BLE001 - not created yet
                done = 0
        if done >= 1:
            break
    assert done >= 1, "the first session finished no trial"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, out
    rd = RunDir.open(tmp_path / "inter")
    assert rd.meta()["status"] == "interrupted"
    first = pd.read_parquet(rd.trials_parquet)
    finished_before = set(first.loc[first.status != "RUNNING", "number"])
    assert "RUNNING" in set(first["status"]) and finished_before

    from nas.search import resume_search

    resume_search(rd.path, progress=False)
    df = pd.read_parquet(rd.trials_parquet)
    assert rd.meta()["status"] == "finished" and len(rd.meta()["sessions"]) == 2
    assert sorted(df["number"]) == [0, 1, 2, 3]  # the budget, every number once
    assert set(df["status"]) == {"COMPLETE"}
    assert df["arch_id"].is_unique  # no trial repeated under a new number
    # finished trials kept their first-session result; the resumed ones ran in session 2
    for _, row in df.iterrows():
        assert row["session"] == (1 if row["number"] in finished_before else 2)
    second = [p.name for p in (rd.path / "ray").glob("*session-2/trial_*")]
    assert not {f"trial_{n}" for n in finished_before} & set(second)
