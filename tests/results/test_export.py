"""Export: NMS in the ONNX graph equals the PyTorch pipeline; the CLI; portable frozen files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.data import CocoDataset, load_data_config
from evaluators.synth import make_synthetic
from models import build_model, fuse, get_preset, save_arch
from models.export_nms import (
    NmsSettings,
    add_postprocess,
    compare_detections,
    export_deployable,
    run_onnx,
    torch_postprocess,
)
from nas.cli import main as cli

REPO = Path(__file__).resolve().parents[2]


def _spread_scores(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random-weight heads give nearly equal scores (bias -log(99), small weights): re-draw the
    score convs so that detections are many, well separated in score (ties would make the order
    of near-equal candidates, and so NMS, depend on float rounding) and overlapping."""
    gen = torch.Generator().manual_seed(seed)
    spec = model.spec
    score_channels = spec.num_classes if spec.task == "detection" else 1 + spec.num_keypoints
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.out_channels == score_channels:
                if module.bias is not None and module.kernel_size == (1, 1):
                    # scores now depend strongly on the image, not only on the bias
                    w = torch.randn(module.weight.shape, generator=gen)
                    module.weight.copy_(w * 3.0 / module.weight[0].numel() ** 0.5)
                    module.bias.copy_(torch.randn(score_channels, generator=gen) - 1.0)
    return model


def _synthetic_batch(tmp_path: Path, task: str, batch: int, size: int) -> np.ndarray:
    """Letterboxed validation images of the synthetic data set, uint8 pixels [B, 3, S, S]."""
    data = load_data_config(make_synthetic(tmp_path / task, task, images=8, image_size=96), task)
    ds = CocoDataset(data.val_images, data.val_annotations, task, size)
    images = [ds[i % len(ds)][0] for i in range(batch)]
    return torch.stack(images).numpy()


@pytest.mark.parametrize("preset", ["yolo_nas_tiny", "yolo_nas_pose_tiny"])
def test_onnx_nms_equals_pytorch_pipeline_on_synthetic_images(tmp_path, preset) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = get_preset(preset)
    model = _spread_scores(build_model(spec)).eval()
    x = _synthetic_batch(tmp_path, spec.task, batch=2, size=64)
    settings = NmsSettings(iou=0.5, score=0.05, max_det=40, top_k=200)
    path = tmp_path / f"{preset}.onnx"
    report = export_deployable(model, path, image_size=64, batch=2, nms=settings, check=False)
    got = run_onnx(path, x)  # fed uint8 pixels, as documented
    with torch.no_grad():
        outs = fuse(model)(torch.from_numpy(x).float() / 255.0)  # what training feeds
    want = torch_postprocess(outs, spec.task, settings)
    counts = [len(d["scores"]) for d in want]
    assert all(c > 0 for c in counts), counts  # the comparison is not vacuous
    assert any(c < 40 for c in counts)  # ... and NMS or the threshold removed something
    assert [len(d["scores"]) for d in got] == counts
    err = compare_detections(got, want, box_tol=1e-3)
    assert err is not None and err <= 1e-3
    for g, w in zip(got, want, strict=True):  # same order: by score, best first
        np.testing.assert_allclose(g["scores"], w["scores"], rtol=1e-4, atol=1e-6)
        assert np.all(np.diff(g["scores"]) <= 0)
    if spec.task == "pose":
        assert report.output_names[-1] == "keypoints"
        assert got[0]["keypoints"].shape[1:] == (spec.num_keypoints, 3)
    # the export-time check of the same file agrees
    checked = export_deployable(model, path, image_size=64, batch=2, nms=settings,
                                check_images=x)  # fmt: skip
    assert checked.detections == sum(counts) and checked.max_box_err <= 1e-3


def test_compare_detections_rejects_a_moved_box() -> None:
    det = {"boxes": np.array([[0, 0, 10, 10.0]]), "scores": np.array([0.9]),
           "labels": np.array([1])}  # fmt: skip
    moved = dict(det, boxes=det["boxes"] + 0.01)
    assert compare_detections([det], [det]) == 0.0
    assert compare_detections([moved], [det]) is None
    assert compare_detections([dict(det, labels=np.array([2]))], [det]) is None


def test_add_postprocess_refuses_a_model_without_the_network_outputs(tmp_path) -> None:
    import onnx

    report = export_deployable(get_preset("yolo_nas_tiny"), tmp_path / "n.onnx", image_size=64,
                               nms=NmsSettings(), check=False)  # fmt: skip
    with_nms = onnx.load(str(report.path))
    with pytest.raises(ValueError, match="expected a model with outputs"):
        add_postprocess(with_nms, "detection", 4)
    with pytest.raises(ValueError, match="iou"):
        NmsSettings(iou=1.5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_export_cli_uses_checkpoint_ema_weights(tmp_path, capsys) -> None:
    import onnxruntime as ort

    from evaluators.checkpoint import save_checkpoint

    torch.set_num_threads(1)
    spec = get_preset("yolo_nas_tiny")
    torch.manual_seed(1)
    model, ema = build_model(spec), _spread_scores(build_model(spec), seed=3)
    ckpt = save_checkpoint(tmp_path / "last.pt", spec=spec, model=model, ema=ema, epoch=2)
    arch = save_arch(spec, tmp_path / "tiny.yaml", name="tiny")
    out = tmp_path / "tiny.onnx"
    argv = ["export", str(arch), "--checkpoint", str(ckpt), "--onnx", str(out),
            "--image-size", "64", "--torchscript", str(tmp_path / "tiny.pt")]  # fmt: skip
    assert cli(argv) == 0
    printed = capsys.readouterr()
    assert "EMA weights" in printed.out and "warning" not in printed.err
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 64), dtype=np.uint8)
    got = ort.InferenceSession(str(out)).run(None, {"images": x})  # default input: uint8
    with torch.no_grad():
        x01 = torch.from_numpy(x).float() / 255.0
        want_ema = fuse(ema.eval())(x01)
        want_model = fuse(model.eval())(x01)
    np.testing.assert_allclose(got[1], want_ema[1].numpy(), atol=1e-5)
    assert not np.allclose(got[1], want_model[1].numpy(), atol=1e-3)
    traced = torch.jit.load(str(tmp_path / "tiny.pt"))
    with torch.no_grad():
        torch.testing.assert_close(traced(torch.from_numpy(x))[1], want_ema[1])


def test_export_cli_warns_without_weights_and_rejects_bad_input(tmp_path, capsys) -> None:
    out = tmp_path / "pose.onnx"
    argv = ["export", "yolo_nas_pose_tiny", "--onnx", str(out), "--image-size", "64", "--nms",
            "--score", "0.01", "--fp16", "--input", "float"]  # fmt: skip
    assert cli(argv) == 0
    printed = capsys.readouterr()
    assert "no --checkpoint" in printed.err
    assert "keypoints" in printed.out and "float16" in printed.out
    import onnx

    graph = onnx.load(str(out)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert any(n.op_type == "NonMaxSuppression" for n in graph.node)

    assert cli(["export", "yolo_nas_tiny", "--onnx", str(out), "--iou", "0.5"]) == 2
    assert "--iou needs --nms" in capsys.readouterr().err
    assert cli(["export", "yolo_nas_tiny"]) == 2
    assert "nothing to write" in capsys.readouterr().err
    other = save_arch(get_preset("yolo_nas_pose_tiny"), tmp_path / "pose.yaml")
    from evaluators.checkpoint import save_checkpoint

    spec = get_preset("yolo_nas_tiny")
    ckpt = save_checkpoint(tmp_path / "c.pt", spec=spec, model=build_model(spec), epoch=1)
    assert cli(["export", str(other), "--checkpoint", str(ckpt), "--onnx", str(out)]) == 2
    assert "is not the one given" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert cli(["export", "yolo_nas_tiny", "--checkpoint", str(tmp_path / "junk.pt"),
                "--onnx", str(out)]) == 2  # fmt: skip
    assert "junk.pt" in capsys.readouterr().err


def test_frozen_file_rebuilds_without_ray_or_optuna(tmp_path) -> None:
    path = save_arch(get_preset("yolo_nas_pose_tiny"), tmp_path / "frozen.yaml", name="p")
    script = textwrap.dedent(
        f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("ray", "optuna"):
                    raise ImportError(f"blocked import of {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        for name in [m for m in sys.modules if m.split(".")[0] in ("ray", "optuna")]:
            del sys.modules[name]
        try:
            import optuna  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the import blocker does not work")
        import torch
        import models

        spec = models.load_arch({str(path)!r})
        model = models.build_model(spec).eval()
        boxes, scores, kpts = model(torch.zeros(1, 3, 64, 64))
        assert kpts.shape[-2:] == (spec.num_keypoints, 3)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "optuna"))
        assert not leaked, leaked
        print("rebuilt", spec.arch_id[:12])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rebuilt" in done.stdout


def test_tied_candidate_scores_are_counted() -> None:
    from models.export_nms import tied_candidates

    scores = np.array([[[0.9, 0.5], [0.5, 0.2], [0.9, 0.01]]], dtype=np.float32)  # [1, 3, 2]
    assert tied_candidates(scores, NmsSettings(score=0.1)) == 2  # 0.9 twice, 0.5 twice
    assert tied_candidates(scores, NmsSettings(score=0.1, top_k=2)) == 1  # only 0.9, 0.9
    assert tied_candidates(scores, NmsSettings(score=0.6)) == 1


@pytest.mark.parametrize(
    ("preset", "want_k"), [("yolo_nas_tiny", 1000), ("yolo_nas_pose_tiny", 300)]
)
def test_default_pre_nms_top_k_is_the_evaluation_pipeline(tmp_path, preset, want_k) -> None:
    """The graph keeps as many candidates before NMS as `models.postprocess` does for the task
    (pose: 300), so an exported model scores like its checkpoint."""
    import onnx
    from onnx import numpy_helper

    from models.postprocess import PRE_NMS_TOPK

    assert PRE_NMS_TOPK[get_preset(preset).task] == want_k
    model = build_model(get_preset(preset)).eval()
    path = tmp_path / f"{preset}.onnx"
    export_deployable(model, path, image_size=320, nms=NmsSettings(), check=False)
    graph = onnx.load(str(path)).graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    # the candidate selection is the TopK with a constant k (the others select detections)
    ks = [int(consts[n.input[1]].reshape(-1)[0]) for n in graph.node
          if n.op_type == "TopK" and n.input[1] in consts]  # fmt: skip
    assert ks == [want_k]
