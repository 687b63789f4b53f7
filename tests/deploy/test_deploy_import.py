"""``opennac import-weights``: super-gradients-named checkpoints in, opennac-ckpt/1 out.

The sources are made from our own models (tests/_sg_fixture.py), saved as super-gradients
training checkpoints ({"net", "ema_net", ...}); no super-gradients needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from _sg_fixture import max_diff, reference_outputs, sg_fixture

from evaluators.checkpoint import load_checkpoint, model_from_checkpoint
from models.archfile import save_arch
from models.presets import get_preset
from models.sg_import import export_sg_state_dict, sg_mapping
from nas.cli import main


def _save_sg(path: Path, sg_state: dict, *, ddp: bool = False, **extra: object) -> Path:
    state = {(f"module.{k}" if ddp else k): v.float() if v.is_floating_point() else v
             for k, v in sg_state.items()}  # fmt: skip
    junk = {k: torch.zeros_like(v) for k, v in state.items()}  # 'net' differs from 'ema_net'
    torch.save({"net": junk, "ema_net": state, "epoch": 12, "acc": torch.tensor(0.5), **extra},
               path)  # fmt: skip
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("name,ddp", [("yolo_nas_tiny", False), ("yolo_nas_pose_tiny", True)])
def test_import_weights_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            name: str, ddp: bool) -> None:  # fmt: skip
    spec = get_preset(name)
    fx = sg_fixture(spec, seed=5)
    src = _save_sg(tmp_path / "ckpt_best.pth", fx.sg_state, ddp=ddp)
    out = tmp_path / "imported.pt"
    assert main(["import-weights", str(src), "--arch", name, "--out", str(out)]) == 0
    assert "[ema_net]" in capsys.readouterr().out
    doc = load_checkpoint(out)
    assert doc["epoch"] == 0 and doc["spec"] == spec and doc["ema_state_dict"] is None
    assert doc["train_config"]["imported_from"] == str(src.resolve())
    assert doc["train_config"]["imported_key"] == "ema_net"
    assert doc["recipe"]["task"] == spec.task
    from evaluators.inherit import inherit_from_checkpoint
    from models.build import build_model
    from nas.parent import check_parent

    assert check_parent(out, spec)["arch_id"] == spec.arch_id  # a search's parent
    assert inherit_from_checkpoint(build_model(spec), spec, out).fraction == 1.0  # an --init
    model, _ = model_from_checkpoint(out)
    x = torch.rand(1, 3, 64, 96)
    want = reference_outputs(fx, x.double())
    with torch.no_grad():
        got = model(x)
    assert max_diff(got, want) < 1e-3

    # OUT exists: refused without --force (file untouched), replaced with it
    before = out.stat().st_mtime_ns
    assert main(["import-weights", str(src), "--arch", name, "--out", str(out)]) == 2
    assert "--force" in _one_error_line(capsys) and out.stat().st_mtime_ns == before
    assert main(["import-weights", str(src), "--arch", name, "--out", str(out), "--force",
                 "--state-key", "net"]) == 0  # fmt: skip
    assert load_checkpoint(out)["train_config"]["imported_key"] == "net"


def _bad(sg: dict, case: str) -> tuple[dict, str]:
    sg = dict(sg)
    if case == "missing":
        del sg["neck.neck1.reduce_skip2.bn.running_mean"]
        return sg, "missing tensor 'neck.neck1.reduce_skip2.bn.running_mean'"
    if case == "shape":
        sg["backbone.stage3.blocks.conv3.conv.weight"] = torch.zeros(64, 8, 1, 1)
        return sg, "tensor 'backbone.stage3.blocks.conv3.conv.weight' has shape (64, 8, 1, 1)"
    if case == "extra":
        sg["neck.neck5.conv.conv.weight"] = torch.zeros(1)
        return sg, "unexpected tensor 'neck.neck5.conv.conv.weight'"
    assert case == "fused"
    for k in [k for k in sg if ".branch_" in k]:
        del sg[k]
    return sg, "'backbone.stem.conv' has 'rbr_reparam' but no"


@pytest.mark.parametrize("case", ["missing", "shape", "extra", "fused"])
def test_bad_checkpoints_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         case: str) -> None:  # fmt: skip
    sg, expected = _bad(sg_fixture(get_preset("yolo_nas_tiny")).sg_state, case)
    src = _save_sg(tmp_path / "bad.pth", sg)
    out = tmp_path / "out.pt"
    assert main(["import-weights", str(src), "--arch", "yolo_nas_tiny", "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert err.startswith("opennac import-weights: error: ") and str(src) in err
    assert expected in err, err
    assert not out.exists()


def test_pickled_objects_and_foreign_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sg = sg_fixture(get_preset("yolo_nas_tiny")).sg_state
    src = _save_sg(tmp_path / "obj.pth", sg, processing_params=argparse.Namespace(a=1))
    args = ["--arch", "yolo_nas_tiny", "--out", str(tmp_path / "o.pt")]
    assert main(["import-weights", str(src), *args]) == 2
    err = _one_error_line(capsys)
    assert "weights_only=True" in err and "argparse.Namespace" in err
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    assert main(["import-weights", str(text), *args]) == 2
    assert "not a PyTorch checkpoint" in _one_error_line(capsys)
    assert main(["import-weights", str(tmp_path / "absent.pth"), *args]) == 2
    assert "not found" in _one_error_line(capsys)
    other = {"epoch": 3, "model": {"a": torch.zeros(1)}}
    torch.save(other, tmp_path / "other.pth")
    assert main(["import-weights", str(tmp_path / "other.pth"), *args]) == 2
    assert "'epoch' is not a tensor" in _one_error_line(capsys)


@pytest.mark.slow
def test_imported_trained_weights_eval_and_export(deploy_run: Path, deploy_data: Path,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Trained weights -> super-gradients naming (+ a neck bias folded back into the BN
    means) -> import-weights -> `opennac eval` gives the trained checkpoint's AP; `opennac
    export` and `opennac train --init`-style loading take the file."""
    trained = deploy_run / "weights" / "trial_0000.pt"
    model, doc = model_from_checkpoint(trained)
    spec = doc["spec"]
    arch = save_arch(spec, tmp_path / "arch.yaml")
    sg = export_sg_state_dict(spec, model.state_dict())
    gen, mapping = torch.Generator().manual_seed(0), sg_mapping(spec)
    for fold in mapping.folds:  # a biased upsample, its effect moved into the BN mean
        bias = torch.rand(fold.channels, generator=gen) - 0.5
        weight = sg[mapping.names[fold.conv_weight]][:, : fold.channels, 0, 0]
        sg[fold.sg_bias] = bias
        sg[mapping.names[fold.running_mean]] += weight @ bias
    src = _save_sg(tmp_path / "trained_sg.pth", sg)
    out = tmp_path / "imported.pt"
    assert main(["import-weights", str(src), "--arch", str(arch), "--out", str(out)]) == 0
    capsys.readouterr()
    evals = []
    for ckpt in (trained, out):
        assert main(["eval", str(ckpt), "--data", str(deploy_data), "--image-size", "96",
                     "--json"]) == 0  # fmt: skip
        evals.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert evals[0]["ap"] > 0.05
    assert abs(evals[0]["ap"] - evals[1]["ap"]) < 1e-3
    onnx = tmp_path / "imported.onnx"
    assert main(["export", str(arch), "--checkpoint", str(out), "--onnx", str(onnx),
                 "--image-size", "96"]) == 0  # fmt: skip
    assert onnx.stat().st_size > 0
