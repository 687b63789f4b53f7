"""`opennac latency` and `opennac latency-table`: output and user errors (exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


TINY = ["latency", "yolo_nas_tiny", "--image-size", "64"]


def test_latency_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*TINY, "--iters", "5", "--warmup", "1", "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    for key in ("median_ms", "p90_ms", "cv", "device_name", "backend"):
        assert key in info
    assert info["backend"] == "torch" and info["image_size"] == 64 and info["median_ms"] > 0
    assert info["name"] == "yolo_nas_tiny"


def test_latency_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*TINY, "--iters", "3", "--warmup", "0", "--target", "cpu"], capsys)
    assert code == 0 and "median" in out and "p90" in out and "versions" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "tvm"], "unknown backend 'tvm'"),
        (["--precision", "fp16"], "fp16 is not supported on CPU"),
        (["--backend", "torch-cudagraph"], "needs a CUDA device"),
        (["--backend", "onnxruntime", "--precision", "bf16"], "cannot run precision 'bf16'"),
        (["--target", "NVIDIA T4"], "does not match the measuring device"),
        (["--image-size", "100"], "multiple of 32"),
    ],
)
def test_latency_user_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["latency", "yolo_nas_tiny", *args], capsys)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("opennac latency: error:")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_latency_cuda_without_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["latency", "yolo_nas_tiny", "--device", "cuda"], capsys)
    assert code == 2 and "no CUDA GPU" in err


def test_latency_unknown_arch(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["latency", "no_such_model"], capsys)
    assert code == 2 and "neither a preset nor an architecture file" in err


@pytest.mark.parametrize(
    "argv",
    [["latency"], ["latency-table"], ["latency-table", "build"], ["latency-table", "check"]],
)
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_latency_table_build_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "table.json"
    code, out, _ = run(
        [
            "latency-table",
            "build",
            "--space",
            "yolo_nas_pose",
            "--space-arg",
            "width_scale=0.25",
            "--image-size",
            "64",
            "--samples",
            "2",
            "--warmup",
            "1",
            "--iters",
            "3",
            "--out",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0 and out_file.exists() and "blocks from 2 architectures" in out
    assert "context timing" in out and json.loads(out_file.read_text())["fit_points"]
    code, out, _ = run(
        ["latency-table", "check", str(out_file), "--samples", "2", "--json"], capsys
    )
    assert code == 0
    report = json.loads(out)
    assert report["samples"] == 2 and "kendall_tau" in report and "within_10pct" in report
    assert report["context"]["space"] == "yolo_nas_pose"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--space", "no_such_space"], "unknown search space"),
        (["build", "--space", "yolo_nas", "--backend", "onnxruntime"], "--backend"),
        (["build", "--space", "yolo_nas", "--space-arg", "width_scale"], "KEY=VALUE"),
        (["build", "--space", "yolo_nas", "--samples", "0"], "--samples"),
        (["build", "--space", "yolo_nas", "--precision", "fp16"], "fp16"),
        (["check", "/nonexistent/table.json"], "no such latency table"),
    ],
)
def test_latency_table_user_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["latency-table", *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
