"""Variants never destroy files; kept weights are pruned to the front and the variants."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from models import get_preset, load_arch_record, save_arch
from nas.cli import main as cli
from nas.weights import prune_weights, weights_name


@pytest.fixture()
def run_copy(deploy_run: Path, tmp_path: Path) -> Path:
    """A private copy of the deployment sweep's run directory (its study included)."""
    dest = tmp_path / deploy_run.name
    shutil.copytree(deploy_run, dest, ignore=shutil.ignore_patterns("ray", "data"))
    exp = (dest / "experiment.yaml").read_text()
    (dest / "experiment.yaml").write_text(exp.replace(str(deploy_run), str(dest)))
    return dest


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.yaml"))}


@pytest.mark.slow
def test_new_budgets_write_a_new_set_and_leave_earlier_files(run_copy: Path, capsys) -> None:
    variants = run_copy / "variants"
    before = _snapshot(variants)
    assert list(before) == ["m.yaml"]
    assert cli(["variants", str(run_copy), "--budget", "tiny=700", "--budget", "big=1200"]) == 0
    out = capsys.readouterr().out
    assert "variant tiny:" in out and "variant big:" in out
    after = _snapshot(variants)
    assert after["m.yaml"] == before["m.yaml"]  # the earlier selection is untouched
    new = variants / "tiny700ms_big1200ms"
    assert sorted(p.name for p in new.glob("*.yaml")) == ["big.yaml", "tiny.yaml"]
    rec = load_arch_record(new / "tiny.yaml")
    kept = (new / rec.provenance["checkpoint"]).resolve()
    assert kept == (run_copy / weights_name(0)).resolve() and kept.is_file()
    assert rec.metrics["budget_ms"] == 700.0 and rec.provenance["recipe"]["epochs"] == 12

    # the same label with another budget would replace a file: refused, then forced
    argv = ["variants", str(run_copy), "--budget", "tiny=650", "--label", "tiny700ms_big1200ms"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "tiny.yaml exists" in err and "--force" in err
    assert _snapshot(variants) == after
    assert cli([*argv, "--force"]) == 0
    assert load_arch_record(new / "tiny.yaml").metrics["budget_ms"] == 650.0
    assert (new / "big.yaml").is_file() and _snapshot(variants)["m.yaml"] == before["m.yaml"]

    # an empty selection names the budget, writes nothing and exits 2
    capsys.readouterr()
    assert cli(["variants", str(run_copy), "--budget", "n=0.0001"]) == 2
    err = capsys.readouterr().err
    assert "n (none within 0.00 ms)" in err and "nothing written" in err
    assert not (variants / "n0.0001ms").exists()

    # the run's own budgets refresh the run's own set in place
    assert cli(["variants", str(run_copy)]) == 0
    assert sorted(_snapshot(variants)) == sorted(after)


def test_prune_keeps_front_variants_and_running_trials(tmp_path: Path) -> None:
    run = tmp_path / "run"
    df = pd.DataFrame({
        "number": [0, 1, 2, 3, 4],
        "status": ["COMPLETE", "COMPLETE", "COMPLETE", "COMPLETE", "RUNNING"],
        "ap": [0.5, 0.3, 0.2, 0.1, None],
        "latency_ms": [4.0, 2.0, 5.0, 6.0, None],  # 2 and 3 are dominated by 0
        "full_fidelity": [True] * 4 + [False],
        "feasible": [True] * 4 + [None],
    })  # fmt: skip
    for n in range(5):
        (run / weights_name(n)).parent.mkdir(parents=True, exist_ok=True)
        (run / weights_name(n)).write_bytes(b"weights")
    save_arch(get_preset("yolo_nas_tiny"), run / "variants" / "old" / "x.yaml",
              provenance={"checkpoint": "../../" + weights_name(3)})  # fmt: skip
    objectives = {"ap": "max", "latency_ms": "min"}
    assert prune_weights(run, df, objectives, keep="all") == []
    deleted = prune_weights(run, df, objectives)
    assert [p.name for p in deleted] == ["trial_0002.pt"]  # 3: a variant; 4: still running
    assert sorted(p.name for p in (run / "weights").glob("*.pt")) == [
        "trial_0000.pt", "trial_0001.pt", "trial_0003.pt", "trial_0004.pt"]
