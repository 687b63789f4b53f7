"""`opennac predict` with a variant's kept weights and with its ONNX export: pictures and COCO
results that score like `opennac eval`; pose keypoints drawn with the skeleton."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluators.coco_eval import evaluate
from evaluators.data import load_coco, load_data_config
from evaluators.predict import COCO_SKELETON, draw
from nas.cli import main as cli


@pytest.mark.slow
def test_predict_variant_and_onnx(deploy_run: Path, deploy_data: Path, tmp_path: Path,
                                  capsys) -> None:  # fmt: skip
    from evaluators.trainer import evaluate_checkpoint

    cfg = load_data_config(deploy_data, "detection")
    variant = deploy_run / "variants" / "m.yaml"
    out = tmp_path / "pred"
    argv = ["predict", str(variant), str(cfg.val_images), "--out", str(out), "--score", "0.01",
            "--data", str(deploy_data), "--min-side", "0"]  # fmt: skip
    assert cli(argv) == 0
    assert "checkpoint" in capsys.readouterr().out
    results = json.loads((out / "detections.json").read_text())
    val = load_coco(cfg.val_annotations)
    assert {r["image_id"] for r in results} <= set(val.getImgIds())
    assert {r["category_id"] for r in results} <= set(val.getCatIds())
    ap = evaluate(val, results, "bbox")["ap"]
    want = evaluate_checkpoint(deploy_run / "weights" / "trial_0000.pt", deploy_data)["ap"]
    assert abs(ap - want) <= 0.005, (ap, want)
    pictures = sorted(out.glob("*.jpg"))
    assert len(pictures) == len(val.getImgIds())
    original = np.asarray(Image.open(cfg.val_images / pictures[0].name).convert("RGB"))
    drawn = np.asarray(Image.open(pictures[0]))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 60

    # the exported model predicts the same detections
    onnx_path = tmp_path / "m.onnx"
    assert cli(["export", str(variant), "--onnx", str(onnx_path), "--nms", "--score", "0.2",
                "--image-size", "96"]) == 0  # fmt: skip
    images = sorted(cfg.val_images.glob("*.jpg"))[:4]
    for weights, folder in ((variant, "a"), (onnx_path, "b")):
        assert cli(["predict", str(weights), *map(str, images), "--out", str(tmp_path / folder),
                    "--score", "0.3", "--no-draw"]) == 0  # fmt: skip
    a = json.loads((tmp_path / "a" / "detections.json").read_text())
    b = json.loads((tmp_path / "b" / "detections.json").read_text())
    assert len(a) == len(b) > 0
    key = lambda r: (r["image_id"], -r["score"])  # noqa: E731
    for ra, rb in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        assert ra["image_id"] == rb["image_id"] and ra["category_id"] == rb["category_id"]
        np.testing.assert_allclose(ra["bbox"], rb["bbox"], atol=0.05)
    assert not list((tmp_path / "a").glob("*.jpg"))  # --no-draw


def test_predict_refuses_a_variant_without_weights(tmp_path: Path, capsys) -> None:
    from models import get_preset, save_arch

    arch = save_arch(get_preset("yolo_nas_tiny"), tmp_path / "x.yaml")
    image = tmp_path / "1.jpg"
    Image.new("RGB", (40, 30)).save(image)
    assert cli(["predict", str(arch), str(image), "--out", str(tmp_path / "o")]) == 2
    assert "names no kept weights" in capsys.readouterr().err
    assert cli(["predict", str(arch), str(tmp_path / "missing.jpg")]) == 2


def test_draw_joins_pose_keypoints_with_the_coco_skeleton() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    kpts = np.zeros((1, 17, 3), np.float32)
    kpts[0, :, 2] = 0.9
    kpts[0, :, 0] = 50.0
    kpts[0, :, 1] = np.linspace(10, 90, 17)  # a vertical column of keypoints
    det = {"boxes": np.array([[20.0, 5.0, 80.0, 95.0]]), "scores": np.array([0.9]),
           "labels": np.array([0]), "keypoints": kpts}  # fmt: skip
    pil = np.asarray(draw(image, det, names=["person"]))
    a, b = COCO_SKELETON[0]  # keypoints 16 and 14: a line between their y positions
    ya, yb = sorted((kpts[0, a - 1, 1], kpts[0, b - 1, 1]))
    mid = int((ya + yb) / 2)
    assert pil[mid, 50].max() > 0  # the skeleton line is drawn
    hidden = dict(det, keypoints=kpts * np.array([1, 1, 0], np.float32))  # not visible
    assert np.asarray(draw(image, hidden))[mid, 50].max() == 0
    big = np.asarray(draw(image, det, min_side=400))  # small images drawn enlarged
    assert big.shape == (400, 400, 3) and big[4 * mid, 200].max() > 0
