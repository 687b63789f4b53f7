"""ONNX export of the fused model, checked independently with ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models import build_model, fuse, get_preset
from models.export import export_onnx


@pytest.mark.parametrize(
    "name,size", [("yolo_nas_tiny", 64), ("yolo_nas_pose_tiny", (64, 96)), ("yolo_nas_s", 64)]
)
def test_onnx_matches_pytorch(name: str, size, tmp_path: Path, randomize_bn) -> None:
    model = build_model(get_preset(name))
    randomize_bn(model)
    report = export_onnx(model, tmp_path / "m.onnx", image_size=size, batch=2)
    assert report.max_rel_err is not None and report.max_rel_err < 1e-4
    graph = onnx.load(str(report.path))
    ops = {node.op_type for node in graph.graph.node}
    assert "BatchNormalization" not in ops and ops & {"Conv", "ConvTranspose"}  # fused graph
    # Identity nodes may only alias equal initializers (the exporter's de-duplication)
    weights = {init.name for init in graph.graph.initializer}
    assert all(set(n.input) <= weights for n in graph.graph.node if n.op_type == "Identity")
    assert graph.opset_import[0].version >= 17
    # an independent input through ONNX Runtime and the fused PyTorch model
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.rand(2, 3, h, w) * 255
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = fuse(model)(x / 255.0)  # the graph takes pixels 0-255 and scales them itself
    assert [o.name for o in session.get_outputs()] == list(report.output_names)
    for g, t in zip(got, want, strict=True):
        t = t.numpy()
        assert g.shape == t.shape
        assert np.abs(g - t).max() / np.abs(t).max() < 1e-4


def test_export_leaves_model_alone(tmp_path: Path) -> None:
    model = build_model(get_preset("yolo_nas_tiny")).train()
    export_onnx(model, tmp_path / "t.onnx", image_size=32, check=False)
    assert model.training and any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_export_rejects_bad_arguments(tmp_path: Path) -> None:
    spec = get_preset("yolo_nas_tiny")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(spec, tmp_path / "a.onnx", image_size=64, opset=11)
    with pytest.raises(ValueError, match="image_size"):
        export_onnx(spec, tmp_path / "a.onnx", image_size=65)
    with pytest.raises(ValueError, match="batch"):
        export_onnx(spec, tmp_path / "a.onnx", image_size=64, batch=0)
