"""The study's storage and the driver's clock: new runs write ``study.journal``, runs made
before it (``opennac-run/2``, SQLite ``study.db``) are reopened on their SQLite study; the
driver's time is recorded per session (`nas.drivertime`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from nas.drivertime import DriverClock
from nas.experiment import dump_experiment, load_experiment
from nas.results import load_run
from nas.rundir import RunDir
from nas.search import _Session
from nas.searcher import make_sampler
from nas.storage import STUDY_DB, STUDY_JOURNAL, run_storage


def _opened(rd: RunDir, exp: Any) -> Any:
    """The study a session of ``rd`` opens (no Ray: the steps before it)."""
    session = _Session(rd, exp, None, progress=False)
    session.session = len(rd.meta().get("sessions") or []) + 1
    session.space = exp.space_object()
    return session._open_study(make_sampler("random", 0, 4))


def test_new_run_writes_a_journal(tmp_path: Path, tiny: Any) -> None:
    exp = load_experiment(tiny("fresh"))
    rd = RunDir.create(tmp_path / "fresh", "fresh")
    study = _opened(rd, exp)
    trial = study.ask()
    trial.suggest_int("depth", 1, 4)
    study.tell(trial, [0.1, 2.0])
    assert (rd.path / STUDY_JOURNAL).is_file() and not (rd.path / STUDY_DB).exists()
    assert rd.meta()["format"] == "opennac-run/3"
    again = optuna.load_study(study_name="fresh", storage=rd.storage_url())
    done = [t for t in again.trials if t.state.name == "COMPLETE"]
    assert [t.params for t in done] == [{"depth": trial.params["depth"]}]
    assert 0 in set(load_run(rd.path / STUDY_JOURNAL)["number"])


def test_old_sqlite_run_is_reopened_on_its_study(tmp_path: Path, tiny: Any) -> None:
    exp = load_experiment(tiny("old"))
    rd = RunDir.create(tmp_path / "old", "old")
    rd.update_meta(format="opennac-run/2", status="interrupted",
                   sessions=[{"session": 1, "elapsed_s": 1.0}])
    dump_experiment(exp, rd.experiment_yaml)
    url = f"sqlite:///{rd.path / STUDY_DB}"
    old = optuna.create_study(study_name="old", storage=url,
                              directions=["maximize", "minimize"])
    trial = old.ask()
    trial.suggest_int("depth", 1, 4)
    trial.set_user_attr("status", "COMPLETE")
    old.tell(trial, [0.2, 3.0])
    rd = RunDir.open(rd.path)
    assert run_storage(rd.path) == f"sqlite:///{(rd.path / STUDY_DB).resolve()}"
    study = _opened(rd, exp)  # session 2 continues the SQLite study
    assert study.trials[0].number == 0 and study.trials[0].values == [0.2, 3.0]
    assert not (rd.path / STUDY_JOURNAL).exists()
    assert run_storage(rd.path, "sqlite:///elsewhere.db") == "sqlite:///elsewhere.db"


def test_driver_clock_counts_each_second_once() -> None:
    clock = DriverClock()
    with clock.phase("startup", "setup"):
        time.sleep(0.01)
    t0 = time.monotonic()
    with clock.per_trial("ask_s"):
        time.sleep(0.02)
        with clock.per_trial("tell_s"):  # a reused architecture told while asking
            time.sleep(0.03)
            with clock.per_trial("files_s"):
                time.sleep(0.01)
    wall = time.monotonic() - t0
    clock.trials = 2
    s = clock.summary()
    assert s["startup"]["setup"] >= 0.01 and s["startup_s"] == s["startup"]["setup"]
    per = s["per_trial"]  # means over 2 trials
    assert per["ask_s"] >= 0.01 and per["tell_s"] >= 0.015 and per["files_s"] >= 0.005
    assert abs(2 * per["driver_s"] - wall) < 0.005  # nested steps: no second counted twice
