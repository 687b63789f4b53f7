"""Files written before objectives became data still load: a run directory made by main
1ef9614 (``opennac-run/1``, ``opennac-experiment/1`` with the three fixed constraints and one
latency section; tests/fixtures/run_v1_main, copied without study.db and weights) and the
single ``latency:`` form."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from nas.experiment import DEFAULT_TARGET, load_experiment
from nas.results import load_run
from nas.rundir import RunDir

OLD_RUN = Path(__file__).resolve().parent.parent / "fixtures" / "run_v1_main"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy (reading it may save the hypervolume reference point into run.json)."""
    return Path(shutil.copytree(OLD_RUN, tmp_path / "old-v1"))


def test_old_experiment_file_loads(old_run: Path) -> None:
    exp = load_experiment(old_run / "experiment.yaml")
    assert exp.constraints == {}  # max_latency_ms: null etc. are no limits
    assert list(exp.targets) == [DEFAULT_TARGET] and exp.latency.image_size == 64
    assert exp.variants.budgets == {"s": 1000.0} and not exp.variants.uses_references
    again = load_experiment(exp.to_dict())  # written back in the new form, same meaning
    assert again == exp and again.to_dict()["format"] == "opennac-experiment/2"
    assert again.to_dict()["latency"]["device"] == "cpu"  # one target: the flat form


def test_old_run_directory_loads_and_reports(old_run: Path, tmp_path: Path) -> None:
    rd = RunDir.open(old_run)
    assert rd.meta()["format"] == "opennac-run/1"
    df = load_run(old_run)
    assert list(df["number"]) == [0, 1] and set(df["status"]) == {"COMPLETE"}
    assert str(df["params"].dtype) == "Int64" and df["latency_ms"].dtype == float
    assert df["feasible"].all() and df["lat_device"].notna().all()
    assert not any("@" in c for c in df.columns)  # one target: no suffixed columns
    from nas.report import build_report

    report = build_report([old_run], tmp_path / "report")
    text = report.files["report.md"].read_text()
    assert "### Front" in text and "Front on target" not in text
    assert report.runs[0].variants and report.runs[0].variants[0]["variant"] == "s"


def test_single_latency_form_has_no_suffix(tiny: Any) -> None:
    from nas.settings import trial_settings

    exp = load_experiment(tiny("single", latency={"image_size": 64, "device": "cpu"}))
    settings = trial_settings(exp, "unused", "unused")
    assert settings.suffixes(settings.primary) == [""]
    assert [o.key for o in settings.measured] == ["params", "gflops", "latency_ms"]
