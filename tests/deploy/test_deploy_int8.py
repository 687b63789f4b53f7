"""INT8: the quantized model of a trained variant runs in ONNX Runtime, its AP next to the FP32
one; --trt without TensorRT is a clear error before anything is written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from _deploy import AP_FLOOR

from evaluators.onnx_eval import evaluate_onnx
from models.export import read_metadata
from models.export_nms import run_onnx
from models.quantize import count_qdq
from nas.cli import main as cli


@pytest.mark.slow
def test_int8_export_runs_and_reports_its_ap(deploy_run: Path, deploy_data: Path,
                                             tmp_path: Path, capsys) -> None:  # fmt: skip
    out = tmp_path / "m.onnx"
    argv = ["export", str(deploy_run / "variants" / "m.yaml"), "--onnx", str(out), "--nms",
            "--score", "0.01", "--image-size", "96", "--int8", "--calib-data", str(deploy_data),
            "--calib-images", "16"]  # fmt: skip
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    match = re.search(r"FP32 (\d\.\d{4}), INT8 (\d\.\d{4}) \(change ([+-]\d\.\d{4})\)", printed)
    assert match, printed
    fp32, int8, change = (float(g) for g in match.groups())
    assert change == pytest.approx(int8 - fp32, abs=2e-4)
    quantized = tmp_path / "m.int8.onnx"
    assert count_qdq(quantized) > 20 and count_qdq(out) == 0
    meta = read_metadata(quantized)
    assert meta["opennac.precision"] == "int8" and meta["opennac.input_type"] == "uint8"
    # it runs in ONNX Runtime on the documented input and still detects the objects
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 96, 96), dtype=np.uint8)
    assert set(run_onnx(quantized, x)[0]) == {"boxes", "scores", "labels"}
    again = evaluate_onnx(quantized, deploy_data)
    assert again["ap"] == pytest.approx(int8, abs=1e-4)
    assert int8 > AP_FLOOR / 2 and abs(change) < 0.1, printed


def test_int8_and_trt_options_are_checked_first(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.onnx"
    base = ["export", "yolo_nas_tiny", "--onnx", str(out), "--image-size", "64"]
    assert cli([*base, "--int8"]) == 2
    assert "--calib-data" in capsys.readouterr().err
    assert cli([*base, "--int8", "--fp16", "--calib-data", str(tmp_path)]) == 2
    assert cli(["export", "yolo_nas_tiny", "--int8", "--calib-data", str(tmp_path)]) == 2
    if importlib.util.find_spec("tensorrt") is None:
        assert cli([*base, "--trt", str(tmp_path / "t.engine")]) == 2
        assert "TensorRT is not installed" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written
