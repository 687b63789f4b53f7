"""Must show: a tiny sweep keeps its weights -> `opennac export VARIANT --nms` -> ONNX Runtime
on the synthetic validation images fed uint8 as documented -> pycocotools AP equal to
`opennac eval` of the kept checkpoint, and far above what untrained weights reach."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _deploy import AP_FLOOR

from evaluators.checkpoint import load_checkpoint
from evaluators.coco_eval import evaluate
from evaluators.data import CocoDataset, load_data_config
from models import load_arch_record
from models.export import read_metadata
from models.export_nms import run_onnx
from models.letterbox import PAD_VALUES, letterbox_image, load_image, to_batch, to_original
from nas.cli import main as cli

pytestmark = pytest.mark.slow


def _eval_json(path: Path, data: Path, capsys: pytest.CaptureFixture) -> dict:
    capsys.readouterr()
    assert cli(["eval", str(path), "--data", str(data), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def ckpt_ap(deploy_run: Path, deploy_data: Path) -> float:
    """`opennac eval` of the kept checkpoint (in process)."""
    from evaluators.trainer import evaluate_checkpoint

    return evaluate_checkpoint(deploy_run / "weights" / "trial_0000.pt", deploy_data)["ap"]


def _documented_ap(onnx_path: Path, data: Path, batch: int = 1) -> float:
    """What docs/export.md tells a user to do: letterbox with models.letterbox, feed
    [B, 3, H, W] uint8 RGB, map boxes back with to_original; then pycocotools."""
    meta = read_metadata(onnx_path)
    h, w = (int(v) for v in meta["opennac.image_size"].split("x"))
    cfg = load_data_config(data, "detection")
    ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", h)
    results = []
    for start in range(0, len(ds), batch):
        ids = ds.image_ids[start:start + batch]
        files = [cfg.val_images / ds.coco.imgs[i]["file_name"] for i in ids]
        boxed = [letterbox_image(load_image(f), (h, w), PAD_VALUES["detection"]) for f in files]
        x = to_batch([b for b, _ in boxed])
        assert x.dtype == np.uint8 and x.shape == (len(ids), 3, h, w)
        for image_id, det, (_, lb) in zip(ids, run_onnx(onnx_path, x), boxed, strict=True):
            det = to_original(det, lb)
            for box, score, label in zip(det["boxes"], det["scores"], det["labels"],
                                         strict=True):  # fmt: skip
                x0, y0, x1, y1 = (float(v) for v in box)
                results.append({"image_id": int(image_id),
                                "category_id": ds.label_to_cat[int(label)],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
    return evaluate(ds.coco, results, "bbox", ds.image_ids)["ap"]


def test_sweep_keeps_weights_of_its_front_and_variant(deploy_run: Path) -> None:
    kept = deploy_run / "weights" / "trial_0000.pt"
    assert kept.is_file()
    doc = load_checkpoint(kept)
    assert doc["optimizer"] is None and doc["ema_state_dict"] is None  # EMA weights only
    assert doc["train_config"]["epochs"] == 12 and doc["epoch"] == 12
    rec = load_arch_record(deploy_run / "variants" / "m.yaml")
    assert (deploy_run / "variants" / rec.provenance["checkpoint"]).resolve() == kept.resolve()
    recipe = dict(rec.provenance["recipe"])
    training = recipe.pop("recipe")  # the training recipe (models.recipe) and its switches
    assert re.fullmatch(r"yolo_nas_[sml]/v1", training), training
    assert {k: recipe.pop(k) for k in ("mosaic", "rot90", "mixup")} == {
        "mosaic": False, "rot90": False, "mixup": True}
    assert recipe == {"epochs": 12, "batch": 8, "lr": 0.01, "image_size": 96, "seed": 0,
                      "init": "scratch"}  # fmt: skip
    assert doc["spec"].arch_id == rec.spec.arch_id


def test_exported_variant_reproduces_the_checkpoint_ap(
    deploy_run: Path, deploy_data: Path, ckpt_ap: float, tmp_path: Path, capsys
) -> None:
    assert _eval_json(deploy_run / "weights" / "trial_0000.pt", deploy_data, capsys)["ap"] == (
        pytest.approx(ckpt_ap, abs=1e-9))  # `opennac eval CHECKPOINT`
    assert ckpt_ap > AP_FLOOR, ckpt_ap
    out = tmp_path / "m.onnx"
    assert cli(["export", str(deploy_run / "variants" / "m.yaml"), "--onnx", str(out), "--nms",
                "--score", "0.01", "--image-size", "96"]) == 0  # fmt: skip
    res = capsys.readouterr()
    assert "weights:" in res.out and "trial_0000.pt" in res.out  # kept weights found
    assert "warning" not in res.err
    assert "uint8" in res.out and "0-255" in res.out
    meta = read_metadata(out)
    assert meta["opennac.input_type"] == "uint8" and meta["opennac.input_range"] == "0-255"
    assert meta["opennac.pad_value"] == "114" and "divides by 255" in meta["opennac.input"]
    onnx_ap = _documented_ap(out, deploy_data)
    assert onnx_ap > AP_FLOOR
    assert abs(onnx_ap - ckpt_ap) <= 0.005, (onnx_ap, ckpt_ap)
    # `opennac eval` of the ONNX file agrees too
    via_cli = _eval_json(out, deploy_data, capsys)
    assert abs(via_cli["ap"] - ckpt_ap) <= 0.005 and via_cli["input_type"] == "uint8"


def test_float_input_and_batched_export_agree(
    deploy_run: Path, deploy_data: Path, ckpt_ap: float, tmp_path: Path
) -> None:
    """--input float takes the same 0-255 pixels (as float32); a batch of 4 gives the same
    detections as one image at a time."""
    import onnxruntime as ort

    out = tmp_path / "m_float.onnx"
    assert cli(["export", str(deploy_run / "variants" / "m.yaml"), "--onnx", str(out), "--nms",
                "--score", "0.01", "--image-size", "96", "--input", "float",
                "--batch", "4"]) == 0  # fmt: skip
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert abs(_documented_ap(out, deploy_data, batch=4) - ckpt_ap) <= 0.005


def test_letterbox_helper_gives_the_evaluation_pixels(deploy_data: Path) -> None:
    """models.letterbox (what users call) == the letterbox `opennac eval` scores on."""
    cfg = load_data_config(deploy_data, "detection")
    ds = CocoDataset(cfg.val_images, cfg.val_annotations, "detection", 96)
    for i in range(3):
        image, target = ds[i]
        sample = ds.load_sample(i)
        boxed, lb = letterbox_image(sample.image, 96, PAD_VALUES["detection"])
        assert np.array_equal(boxed.transpose(2, 0, 1), image.numpy())
        assert lb.scale == pytest.approx(float(target["scale"]))
        assert lb.pad == pytest.approx(tuple(target["pad"].tolist()))
        back = to_original({"boxes": target["boxes"].double()}, lb)["boxes"]
        torch.testing.assert_close(back.float(), torch.from_numpy(sample.boxes), atol=1e-3,
                                   rtol=0)  # fmt: skip


def test_pad_values_match_the_training_letterbox() -> None:
    from evaluators.transforms import PAD_VALUES as TRAINING

    assert PAD_VALUES == TRAINING
