"""`opennac calibrate`: short vs long training under Ray, resumable, quoted by the report.

One tiny calibration (3 architectures, 2 seeds at 1 epoch, 2 seeds at 2 epochs, on the
session's local Ray), then: the --json line, the files, a second call that trains nothing, a
folder made with other settings refused, and a run whose experiment points at the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _handrun import make_hand_run  # tests/search/_handrun.py

from nas.calibrate import CalibrationError, _check_plan, rank_agreement
from nas.cli import main
from nas.noise import run_noise
from nas.report import build_report

KEYS = ("kendall_tau", "spearman", "seed_sd_short", "seed_sd_long", "pairs_correct", "archs")


def test_rank_agreement() -> None:
    out = rank_agreement([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.3, 0.4])
    assert out["pairs"] == 6 and out["pairs_correct"] == pytest.approx(5 / 6, abs=1e-4)
    assert out["kendall_tau"] == pytest.approx(4 / 6, abs=1e-4)
    assert out["spearman"] == pytest.approx(0.8)


def test_plan_check_ignores_result_neutral_and_later_keys(tmp_path: Path) -> None:
    """A folder written before `workers`, `eval_every`, `channels_last` and `amp_cpu` existed is
    reused by a run with those at their old behaviour; a change that moves results is refused."""
    fid_then = {"image_size": 96, "batch": 8, "lr": 0.01, "threads": 1, "deterministic": True}
    old = {"format": "opennac-calibration-plan/1", "archs": ["a"],
           "fingerprint": {"task": "detection", "fidelity": fid_then}}
    out = tmp_path / "cal"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps(old))

    def plan(**fid):
        return {**old, "fingerprint": {"task": "detection", "fidelity": {
            **fid_then, "workers": None, "eval_every": None, "channels_last": False,
            "amp_cpu": False, **fid}}}

    _check_plan(out, plan())  # the same settings as then: accepted (and the plan rewritten)
    _check_plan(out, plan(workers=3, eval_every=1))  # loader workers, more evaluations: same AP
    for changed in ({"amp_cpu": True}, {"channels_last": True}, {"lr": 0.02}):
        with pytest.raises(CalibrationError, match="fidelity differ"):
            _check_plan(out, plan(**changed))


@pytest.mark.slow
def test_calibrate_cli(tmp_path: Path, tiny, ray_local, capsys) -> None:
    exp_file = tmp_path / "exp.yaml"
    exp_file.write_text(yaml.safe_dump(tiny("cal")))
    out = tmp_path / "cal"
    args = ["calibrate", str(exp_file), "--archs", "3", "--seeds", "2", "--long-epochs", "2",
            "--long-seeds", "2", "--output", str(out), "--json"]
    assert main(args) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(printed[-1])
    assert all(k in summary for k in KEYS) and summary["archs"] == 3
    assert sum("short 1 epochs" in line for line in printed) == 6
    assert sum("long 2 epochs" in line for line in printed) == 6
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["format"] == "opennac-calibration/1" and (out / "calibration.png").is_file()
    assert [a["label"] for a in cal["per_arch"]] == ["yolo_nas_pose_n", "yolo_nas_pose_s",
                                                     "yolo_nas_pose_m"]
    assert all(len(a["short_aps"]) == 2 and len(a["long_aps"]) == 2 for a in cal["per_arch"])
    assert cal["seed_dof_short"] == 3 and cal["seed_dof_long"] == 3

    # resumable: everything is done, nothing is trained again
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "12 done before" in again and "epochs seed" not in again

    # a folder made with other settings is refused (exit 2, one line naming what differs)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(tiny("cal", fidelity={"epochs": 1, "image_size": 96,
                                                          "batch": 4, "seed": 0})))
    assert main(["calibrate", str(other), "--archs", "3", "--output", str(out)]) == 2
    assert "fidelity differ" in capsys.readouterr().err

    # a search pointing at it: no trial has two seeds, so its seed sd stands in; quoted
    rd, exp, df = make_hand_run(tmp_path, tiny("quoted", calibration=str(out)),
                                refs={"yolo_nas_pose_n": ([0.1], 2.0)})
    band = run_noise(df, exp)
    assert band.source == "calibration" and band.seed_sd == cal["seed_sd_short"]
    build_report([rd.path], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert f"calibration `{out}`: 3 archs, 1 vs 2 epochs" in md
