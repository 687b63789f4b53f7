"""`opennac train RUN_DIR --variant m`: the run's recipe reproduces the search's score; --init
search starts from the kept weights."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evaluators.checkpoint import load_checkpoint
from nas.cli import main as cli

pytestmark = pytest.mark.slow


def _train(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    capsys.readouterr()
    assert cli(["train", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_final_training_uses_the_run_recipe(deploy_run: Path, tmp_path: Path, capsys) -> None:
    search_ap = float(pd.read_parquet(deploy_run / "trials.parquet")["ap"].iloc[0])
    out = tmp_path / "again"
    result = _train(capsys, str(deploy_run), "--variant", "m", "--out", str(out))
    cfg = load_checkpoint(out / "last.pt")["train_config"]
    assert (cfg["epochs"], cfg["batch"], cfg["lr"], cfg["image_size"], cfg["seed"]) == (
        12, 8, 0.01, 96, 0)
    assert cfg["init"] == "scratch" and result["train_images"] == 48
    assert result["ap"] == pytest.approx(search_ap, abs=1e-9)  # one thread: deterministic

    # an existing final checkpoint is not overwritten
    assert cli(["train", str(deploy_run), "--variant", "m", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_init_search_starts_from_the_kept_weights(deploy_run: Path, tmp_path: Path,
                                                  capsys) -> None:  # fmt: skip
    common = [str(deploy_run), "--variant", "m", "--epochs", "1"]
    scratch = _train(capsys, *common, "--out", str(tmp_path / "s"))
    warm = _train(capsys, *common, "--init", "search", "--out", str(tmp_path / "w"))
    assert scratch["ap"] < 0.02 < 0.08 < warm["ap"], (scratch["ap"], warm["ap"])
    init = load_checkpoint(tmp_path / "w" / "last.pt")["train_config"]["init"]
    assert init.endswith("trial_0000.pt")
    assert cli(["train", str(deploy_run)]) == 2
    assert "--variant" in capsys.readouterr().err
    assert cli(["train", "yolo_nas_tiny", "--variant", "m"]) == 2
