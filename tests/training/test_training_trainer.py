"""Trainer: config checks, callback, checkpoints and resume, divergence, optimizer, schedule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from evaluators.checkpoint import CKPT_FORMAT, CheckpointError, load_checkpoint
from evaluators.trainer import (
    ModelEMA,
    TrainConfig,
    TrainingDiverged,
    _lr_schedule,
    _optimizer,
    evaluate_checkpoint,
    train_candidate,
)
from models.build import build_model
from models.presets import get_preset
from models.recipe import get_recipe

TINY = dict(image_size=64, batch=6, warmup=0.5)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="image_size: expected a multiple of 32"):
        TrainConfig(image_size=100)
    with pytest.raises(ValueError, match="epochs: expected a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="train_images"):
        TrainConfig(train_images=-1)
    with pytest.raises(ValueError, match=r"training\.epoch: unknown key"):
        TrainConfig.from_dict({"epoch": 3})
    cfg = TrainConfig.from_dict({"epochs": 3, "lr": 0.01, "mosaic": True})
    assert (cfg.epochs, cfg.lr, cfg.augment().mosaic) == (3, 0.01, True)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    # Switches left at None follow the recipe; set ones win.
    pose_m = get_recipe("yolo_nas_pose_m")
    aug = TrainConfig(mosaic=False).augment(pose_m)
    assert (aug.mosaic, aug.rot90, aug.rot90_prob, aug.mixup) == (False, True, 0.5, False)
    resolved = TrainConfig(final_lr_ratio=0.2).resolved(pose_m)
    assert (resolved.recipe, resolved.weight_decay, resolved.final_lr_ratio) == (
        "yolo_nas_pose_m/v1", 1e-6, 0.2)
    assert (resolved.mosaic, resolved.rot90, resolved.mixup) == (True, True, False)
    spec = get_preset("yolo_nas_tiny")
    with pytest.raises(ValueError, match="recipe: yolo_nas_pose_m/v1 is a pose recipe"):
        TrainConfig(recipe="yolo_nas_pose_m").get_recipe(spec)
    with pytest.raises(ValueError, match="recipe: unknown recipe 'x'"):
        TrainConfig(recipe="x").get_recipe(spec)
    assert TrainConfig(recipe="yolo_nas_l/v1").get_recipe(spec).name == "yolo_nas_l"


def test_resume_continues_the_epoch_count(det_data: Path, tmp_path: Path) -> None:
    spec = get_preset("yolo_nas_tiny")
    seen: list[tuple[int, dict]] = []
    first = train_candidate(spec, det_data, TrainConfig(epochs=1, **TINY),
                            callback=lambda e, m: seen.append((e, m)), out_dir=tmp_path)
    assert first.epochs == 1 and [e for e, _ in seen] == [1]
    metrics = seen[0][1]
    assert {"ap", "ap50", "ap75", "loss", "epoch", "lr", "wall_s"} <= set(metrics)
    assert all(isinstance(v, (int, float)) for v in metrics.values())  # flat
    doc = torch.load(tmp_path / "last.pt", weights_only=True)  # plain types only
    assert doc["format"] == CKPT_FORMAT and doc["epoch"] == 1
    assert doc["arch"] == spec.to_dict() and doc["fidelity"]["image_size"] == 64
    assert set(doc) >= {"state_dict", "ema_state_dict", "optimizer", "metrics", "fidelity"}
    # The recipe travels with the weights: named, versioned, every value.
    assert doc["recipe"]["name"] == "yolo_nas_s" and doc["recipe"]["version"] == 1
    assert doc["fidelity"]["recipe"] == doc["train_config"]["recipe"] == "yolo_nas_s/v1"
    assert doc["train_config"]["mixup"] is True and doc["train_config"]["weight_decay"] == 1e-5
    assert first.recipe == "yolo_nas_s/v1"
    old = dict(doc)
    old.pop("recipe")  # a checkpoint written before recipes had names still loads
    torch.save(old, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["recipe"] is None

    seen.clear()
    second = train_candidate(spec, det_data, TrainConfig(epochs=2, **TINY),
                             callback=lambda e, m: seen.append((e, m)), out_dir=tmp_path,
                             resume=True)
    assert [e for e, _ in seen] == [2]  # epoch 1 is not repeated
    assert second.epochs == 2 and [h["epoch"] for h in second.history] == [1, 2]
    assert second.wall_s >= first.wall_s
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["fidelity"]["epochs_done"] == 2 and saved["metrics"]["epoch"] == 2
    # The eval command's path scores the stored EMA weights exactly as the trainer did.
    again = evaluate_checkpoint(tmp_path / "last.pt", det_data)
    assert again["ap"] == pytest.approx(second.ap) and again["epochs"] == 2

    other = get_preset("yolo_nas_pose_tiny")
    with pytest.raises(ValueError, match="checkpoint of another architecture"):
        train_candidate(dataclasses.replace(spec, num_classes=5), det_data,
                        TrainConfig(epochs=3, **TINY), out_dir=tmp_path, resume=True)
    assert other.task == "pose"


def test_callback_may_stop_the_run(det_data: Path, tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop(epoch: int, metrics: dict) -> None:
        raise Stop(epoch)

    with pytest.raises(Stop):
        train_candidate(get_preset("yolo_nas_tiny"), det_data,
                        TrainConfig(epochs=3, train_images=6, **TINY), callback=stop,
                        out_dir=tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_nan_loss_raises_training_diverged(det_data: Path) -> None:
    cfg = TrainConfig(epochs=2, lr=1e12, grad_clip=None, warmup=0, ema=False, train_images=6,
                      **{k: v for k, v in TINY.items() if k != "warmup"})
    threads = torch.get_num_threads()
    with pytest.raises(TrainingDiverged, match=r"is (nan|-?inf) at epoch \d, step \d") as info:
        train_candidate(get_preset("yolo_nas_tiny"), det_data, cfg)
    assert info.value.epoch in (1, 2) and info.value.step == info.value.epoch  # 1 step/epoch
    assert torch.get_num_threads() == threads  # restored even on error


def test_pose_metrics_and_class_count_check(pose_data: Path, det_data: Path) -> None:
    res = train_candidate(get_preset("yolo_nas_pose_tiny"), pose_data,
                          TrainConfig(epochs=1, train_images=6, **TINY))
    assert res.box_ap is not None and res.task == "pose"
    flat = res.to_dict()
    assert "history" not in flat and json.dumps(flat)
    assert {"ap", "ap50", "box_ap", "epochs", "train_images", "image_size"} <= set(flat)
    two_classes = dataclasses.replace(get_preset("yolo_nas_tiny"), num_classes=2)
    with pytest.raises(ValueError, match="4 categories but the model predicts 2 classes"):
        train_candidate(two_classes, det_data, TrainConfig(epochs=1, **TINY))


def test_optimizer_groups_schedule_and_ema() -> None:
    model = build_model(get_preset("yolo_nas_tiny"))
    opt = _optimizer(model, 1e-3, 1e-5)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    assert all(p.ndim <= 1 for p in no_decay["params"])  # biases, BN, scalars
    n_bn = sum(2 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert len(no_decay["params"]) >= n_bn

    lr = _lr_schedule(TrainConfig(epochs=10, lr=1.0, warmup=1.0), "detection", 10)
    assert lr(0) == pytest.approx(0.1) and lr(5) == pytest.approx(0.55)
    assert lr(10) == pytest.approx(1.0)
    assert lr(99) == pytest.approx(0.1)  # cosine floor: 0.1 x lr for detection
    assert all(lr(s) >= lr(s + 1) for s in range(10, 99))
    pose = _lr_schedule(TrainConfig(epochs=10, lr=1.0, warmup=1.0), "pose", 10)
    assert pose(99) == pytest.approx(0.05)

    ema = ModelEMA(model, decay=0.5, tau=1e-9)  # decay 0.5 from the first update
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    name, ref = next(iter(model.state_dict().items()))
    torch.testing.assert_close(ema.module.state_dict()[name], ref - 0.5)


def test_bad_checkpoint_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"x\.pt: not an OpenNAC checkpoint"):
        load_checkpoint(bad)
    torch.save({"format": "other/1"}, bad)
    with pytest.raises(CheckpointError, match=r"key 'format' is 'other/1'"):
        load_checkpoint(bad)


def test_oks_area_factor_option_reaches_the_loss_and_the_checkpoint(
    pose_data: Path, tmp_path: Path
) -> None:
    from models.losses import loss_for

    spec = get_preset("yolo_nas_pose_tiny")
    assert TrainConfig().get_recipe(spec).oks_area_factor == 0.53  # the reference's
    wide = TrainConfig(oks_area_factor=1.0).get_recipe(spec)
    assert wide.oks_area_factor == 1.0 and wide.label == "yolo_nas_pose_n/v1"
    assert loss_for(spec, wide).oks_area_factor == 1.0
    with pytest.raises(ValueError, match="oks_area_factor: expected a positive number"):
        TrainConfig(oks_area_factor=0)
    det = get_preset("yolo_nas_tiny")  # detection has no OKS: the option leaves it alone
    assert TrainConfig(oks_area_factor=1.0).get_recipe(det) == get_recipe("yolo_nas_s")

    cfg = TrainConfig(epochs=1, train_images=6, oks_area_factor=1.0, **TINY)
    train_candidate(spec, pose_data, cfg, out_dir=tmp_path)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["train_config"]["oks_area_factor"] == 1.0
    assert ckpt["recipe"]["oks_area_factor"] == 1.0
