"""`opennac data synth`, `opennac train`, `opennac eval`: end to end on tiny data, and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nas.cli import main


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


@pytest.mark.parametrize("argv", [["data", "synth", "--help"], ["train", "--help"],
                                  ["eval", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: opennac" in capsys.readouterr().out


def test_synth_train_eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "det"
    assert main(["data", "synth", str(data), "--task", "detection", "--images", "12",
                 "--image-size", "64", "--seed", "2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train_images"] == 9 and info["val_images"] == 3
    assert (data / "data.yaml").is_file() and (data / "images/val").is_dir()

    out = tmp_path / "run"
    argv = ["train", "yolo_nas_tiny", "--data", str(data), "--epochs", "2", "--image-size", "64",
            "--batch", "5", "--train-images", "6", "--out", str(out), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout holds exactly one JSON object
    assert {"ap", "ap50", "epochs", "train_images", "image_size"} <= set(result)
    assert (result["epochs"], result["train_images"], result["image_size"]) == (2, 6, 64)
    assert result["recipe"] == "yolo_nas_s/v1"  # tiny head: the nearest released recipe
    assert "recipe yolo_nas_s/v1" in captured.err
    assert "epoch   1/2" in captured.err and "epoch   2/2" in captured.err  # progress
    assert (out / "last.pt").is_file() and (out / "metrics.json").is_file()

    assert main(["eval", str(out / "last.pt"), "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["ap"] == pytest.approx(result["ap"]) and ev["image_size"] == 64
    assert main(["eval", str(out / "last.pt"), "--data", str(data)]) == 0
    assert "AP50" in capsys.readouterr().out


def test_cli_errors(det_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "no_such_model", "--data", str(det_data)]) == 2
    assert "neither a preset nor an architecture file" in _err_line(capsys)

    assert main(["train", "yolo_nas_tiny", "--data", str(tmp_path / "missing")]) == 2
    assert "data file not found" in _err_line(capsys)

    assert main(["train", "yolo_nas_pose_tiny", "--data", str(det_data)]) == 2
    assert "but the model's task is 'pose'" in _err_line(capsys)

    assert main(["train", "yolo_nas_tiny", "--data", str(det_data), "--image-size", "100"]) == 2
    assert _err_line(capsys).endswith("--image-size: expected a multiple of 32, got 100")

    broken = tmp_path / "broken"
    shutil.copytree(det_data.parent, broken)
    (broken / "annotations/instances_train.json").write_text('{"images": [], "licenses": []}')
    assert main(["train", "yolo_nas_tiny", "--data", str(broken), "--epochs", "1",
                 "--image-size", "64", "--out", str(tmp_path / "o")]) == 2
    line = _err_line(capsys)
    assert "instances_train.json: not a COCO file: key 'annotations'" in line

    assert main(["train", "yolo_nas_tiny", "--data", str(det_data), "--recipe", "nope"]) == 2
    assert "--recipe: unknown recipe 'nope' (known: yolo_nas_l" in _err_line(capsys)
    assert main(["train", "yolo_nas_tiny", "--data", str(det_data), "--recipe",
                 "yolo_nas_pose_s"]) == 2
    assert "is a pose recipe, the model is detection" in _err_line(capsys)

    assert main(["eval", str(det_data), "--data", str(det_data)]) == 2
    assert "not an OpenNAC checkpoint" in _err_line(capsys)
    assert main(["eval", str(tmp_path / "none.pt"), "--data", str(det_data)]) == 2
    assert "checkpoint not found" in _err_line(capsys)

    assert main(["data", "synth", str(tmp_path / "s"), "--images", "1"]) == 2
    assert "--images: expected at least 2" in _err_line(capsys)
