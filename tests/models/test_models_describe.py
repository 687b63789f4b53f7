"""`opennac describe`: text and JSON output, errors as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models import get_preset, save_arch
from models.complexity import complexity
from nas.cli import main


def test_describe_json_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "yolo_nas_pose_tiny", "--json", "--image-size", "320"]) == 0
    info = json.loads(capsys.readouterr().out)
    spec = get_preset("yolo_nas_pose_tiny")
    cost = complexity(spec, 320)
    assert info["arch_id"] == spec.arch_id and info["task"] == "pose"
    assert (info["params"], info["fused_params"]) == (cost.params, cost.fused_params)
    assert info["gflops"] == pytest.approx(cost.gflops)
    assert [s["name"] for s in info["stages"]][:2] == ["stem", "stage1"]
    assert sum(s["params"] for s in info["stages"]) == cost.params


def test_describe_text_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.yaml"
    save_arch(get_preset("yolo_nas_tiny"), path, name="mine")
    assert main(["describe", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mine" in out and get_preset("yolo_nas_tiny").arch_id in out
    assert "GFLOPs" in out and "2 x" in out and "stage4" in out and "down2" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["describe", "yolo_nas_xxl"], "neither a preset nor"),
        (["describe", "missing.yaml"], "missing.yaml"),
        (["describe", "yolo_nas_tiny", "--image-size", "100"], "multiples of 32"),
    ],
)
def test_describe_errors(args, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_describe_help_in_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nas", "describe", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--image-size" in done.stdout and "--json" in done.stdout
