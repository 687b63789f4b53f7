"""Resume and faults without Ray: re-asking a half-sampled trial, failures that do not mark an
architecture done, the run lock naming its holder, stop requests, load-time checks, and
references that count only when fully trained."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from _handrun import make_hand_run  # tests/search/_handrun.py
from optuna.trial import TrialState
from ray.tune.search import Searcher

from nas.experiment import ExperimentError, dump_experiment, load_experiment
from nas.rundir import RunDir
from nas.runlock import LockHeld, RunLock, StopWatch, request_stop
from nas.searcher import StudySearcher
from nas.trial import failure_kind
from search_spaces import SpaceError, get_space

SPACE = {"name": "yolo_nas_pose", "width_scale": 0.25}


class _Cut(Exception):
    pass


class _CutTrial:
    """Stands for a driver killed mid-sampling: raises after ``n`` parameters are stored."""

    def __init__(self, trial: Any, n: int) -> None:
        self.trial, self.n = trial, n

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.trial, name)

        def suggest(*args: Any, **kwargs: Any) -> Any:
            if self.n == 0:
                raise _Cut
            self.n -= 1
            return attr(*args, **kwargs)

        return suggest if name.startswith("suggest_") else attr


def _searcher(study: optuna.Study, space: Any, **kw: Any) -> StudySearcher:
    return StudySearcher(study, space, {"ap": "max", "latency_ms": "min"}, 2,
                         make_config=lambda n, p, s, r: {"number": n, "params": p,
                                                         "arch_id": s.arch_id}, **kw)


def _study() -> optuna.Study:
    return optuna.create_study(directions=["maximize", "minimize"],
                               sampler=optuna.samplers.RandomSampler(seed=0))


def test_half_sampled_trial_is_asked_again_on_its_own_trial() -> None:
    space = get_space(**SPACE)
    study = _study()
    trial = study.ask()
    with pytest.raises(_Cut):
        space.sample(_CutTrial(trial, 13))
    stored = dict(study.trials[0].params)
    assert len(stored) == 13
    with pytest.raises(SpaceError, match="missing"):  # replaying stored params cannot work
        space.replay(stored)
    s = _searcher(study, space, max_trials=2, session=2)
    config = s.suggest("r0")
    assert config["number"] == 0 and len(config["params"]) > 13
    assert {k: config["params"][k] for k in stored} == stored  # stored values kept
    assert space.replay(config["params"]).arch_id == config["arch_id"]
    assert study.trials[0].user_attrs["arch_id"] == config["arch_id"]
    assert s.suggest("r1")["number"] == 1 and s.suggest("r2") is Searcher.FINISHED


def test_a_failed_architecture_is_not_done() -> None:
    fixed = get_space(**SPACE, fixed=get_space(**SPACE).reference_points()["yolo_nas_pose_n"])
    study = _study()
    s = _searcher(study, fixed, max_trials=3)
    first = s.suggest("r0")
    assert s.suggest("r1") is Searcher.FINISHED  # the two others wait for trial 0
    s.on_trial_complete("r0", {"final": True, "status": "FAIL", "number": 0,
                               "arch_id": first["arch_id"], "error": "RuntimeError: boom",
                               "failure": "exception"})
    assert study.trials[0].state == TrialState.FAIL
    # the waiting duplicates are trained for real, not told a copy of the failure
    again = s.suggest("r2")
    assert again is not None and again is not Searcher.FINISHED and again["number"] == 1
    assert study.trials[1].state == TrialState.RUNNING
    # a later session does not count the failure as an evaluation either
    s2 = _searcher(study, fixed, max_trials=4, session=2)
    assert s2._done_arch == {}


def test_failure_kinds() -> None:
    from evaluators.trainer import TrainingDiverged
    from nas.trial import InjectedFailure

    assert failure_kind(TrainingDiverged(1, 3, float("nan"))) == "nan"
    assert failure_kind(FloatingPointError("AP is nan")) == "nan"
    assert failure_kind(RuntimeError("CUDA out of memory. Tried to allocate")) == "oom"
    assert failure_kind(MemoryError()) == "oom"
    assert failure_kind(InjectedFailure("x")) == "injected"
    assert failure_kind(ValueError("bad")) == "exception"


def _run_dir(tmp_path: Path, tiny: Any) -> RunDir:
    rd = RunDir.create(tmp_path / "run", "run")
    dump_experiment(load_experiment(tiny("run")), rd.experiment_yaml)
    return rd


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True,
                          timeout=120)


def test_second_sweep_is_refused_naming_the_holder(tmp_path: Path, tiny: Any) -> None:
    rd = _run_dir(tmp_path, tiny)
    with RunLock(rd.path) as lock:
        assert lock.holder()["pid"] == os.getpid()
        with pytest.raises(LockHeld, match=f"pid {os.getpid()} on host"):
            RunLock(rd.path).acquire()
        res = _cli("resume", str(rd.path))
        assert res.returncode == 2
        assert f"already running in this run directory: pid {os.getpid()}" in res.stderr
        # opennac stop: a request file the driver's StopWatch picks up
        res = _cli("stop", str(rd.path))
        assert res.returncode == 0 and f"pid {os.getpid()}" in res.stdout
        assert (rd.path / "stop").is_file()
        fired: list[bool] = []
        watch = StopWatch(rd.path, lambda: fired.append(True), interval=0.05).start()
        watch._thread.join(timeout=5)
        assert fired == [True] and not (rd.path / "stop").exists()
    assert not (rd.path / ".lock.json").exists()
    assert request_stop(rd.path) is None  # nothing runs: nothing requested
    assert _cli("stop", str(rd.path)).returncode == 1


def test_stale_lock_of_a_dead_driver_is_taken_over(tmp_path: Path, tiny: Any) -> None:
    rd = _run_dir(tmp_path, tiny)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (rd.path / ".lock.json").write_text(json.dumps(
        {"pid": dead.pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}))
    lock = RunLock(rd.path).acquire()
    try:
        assert lock.warning and f"pid {dead.pid}" in lock.warning
        assert "no longer running" in lock.warning
        assert lock.holder()["pid"] == os.getpid()
    finally:
        lock.release()


@pytest.mark.parametrize(("changes", "message"), [
    ({"latency": {"backend": "onnx"}},
     "latency.backend: expected one of torch, torch-cudagraph, onnxruntime, tensorrt, got 'onnx'"),
    ({"latency": {"precision": "fp8"}},
     "latency.precision: expected one of fp32, fp16, bf16, int8, got 'fp8'"),
    ({"latency": {"precision": "fp16"}}, "latency.precision: 'torch' on cpu runs fp32, bf16"),
    ({"latency": {"backend": "tensorrt"}}, "latency.backend: 'tensorrt' needs latency.device"),
    ({"latency": {"device": "cuda"}, "resources": {"gpu": 0.5}},
     "resources.gpu: latency.device is 'cuda'"),
    ({"sampler": {"type": "cmaes"}}, "sampler.type: expected one of nsga2, tpe, gp, random"),
    ({"scheduler": {"type": "hyperband"}},
     "scheduler.type: expected one of asha, pareto_asha, none"),
])
def test_enums_and_gpu_share_checked_at_load(tiny: Any, changes: dict, message: str) -> None:
    with pytest.raises(ExperimentError, match="^.*" + message.replace("(", r"\(")):
        load_experiment(tiny("bad", **changes))


def test_whole_gpu_with_cuda_latency_loads(tiny: Any) -> None:
    exp = load_experiment(tiny("ok", latency={"device": "cuda", "backend": "torch-cudagraph",
                                              "precision": "fp16"}, resources={"gpu": 1}))
    assert exp.resources.gpu == 1


def test_a_reference_stopped_early_gives_no_ap(tmp_path: Path, tiny: Any) -> None:
    from nas.report import build_report
    from nas.variants import update_variants

    rd, exp, df = make_hand_run(tmp_path, tiny("refs", variants={"match_references": True}))
    partial = df["reference"] == "yolo_nas_pose_m"  # stopped by ASHA after 1 of 30 epochs
    df.loc[partial, ["status", "epochs_done"]] = ["STOPPED", 1]
    df.loc[partial, "full_fidelity"] = False
    df = rd.write_trials(df.to_dict("records"))
    update_variants(rd, exp, df, measure_missing=False)
    from models import load_arch_record

    m = load_arch_record(rd.variants_dir / "m.yaml").metrics
    assert m["reference"] == "yolo_nas_pose_m" and "reference_ap" not in m
    assert "reference_trial" not in m and "not fully trained" in m["reference_note"]
    assert "1 of 30 epochs" in m["reference_note"]
    s = load_arch_record(rd.variants_dir / "s.yaml").metrics  # a complete reference counts
    assert s["reference_ap"] == pytest.approx(0.17) and s["reference_trial"] == 1
    assert rd.meta()["variant_claims"]["m"]["verdict"] != "beats"
    report = build_report([rd.path], tmp_path / "report")
    v = {x["variant"]: x for x in report.runs[0].variants}
    assert v["m"]["reference_ap"] is None and v["m"]["reference_trial"] is None
    md = (tmp_path / "report" / "report.md").read_text()
    assert "not fully trained" in md
