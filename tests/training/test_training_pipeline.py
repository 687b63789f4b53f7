"""Trials that keep the device busy: evaluation only where asked, one loader whose worker
processes live across epochs (same samples as without workers), annotation files parsed once
per process, the channels-last and bf16 options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import evaluators.data as data_mod
from evaluators.data import CocoDataset, clear_index, load_data_config, make_loader
from evaluators.trainer import TrainConfig, train_candidate
from evaluators.transforms import Augment
from models.presets import get_preset

TINY = dict(image_size=64, batch=6, warmup=0.5)


def test_evaluation_only_at_the_asked_epochs_and_the_last(det_data: Path) -> None:
    every: list[tuple[int, bool]] = []
    evaluated: list[int] = []
    cfg = TrainConfig(epochs=3, eval_epochs=(2,), **TINY)
    result = train_candidate(
        get_preset("yolo_nas_tiny"), det_data, cfg,
        callback=lambda e, m: evaluated.append(e),
        on_epoch_end=lambda e, m: every.append((e, "ap" in m)),
    )  # fmt: skip
    assert every == [(1, False), (2, True), (3, True)] and evaluated == [2, 3]
    assert result.epochs == 3 and 0.0 <= result.ap <= 1.0
    assert [cfg.evaluates(e) for e in (1, 2, 3)] == [False, True, True]
    assert TrainConfig(epochs=4, eval_every=2).evaluates(2)
    assert not TrainConfig(epochs=4, eval_every=2).evaluates(3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="eval_epochs"):
        TrainConfig(eval_epochs=(0,))
    with pytest.raises(ValueError, match="workers: expected a count >= 0"):
        TrainConfig(workers=-1)


@pytest.mark.slow  # two worker processes start
def test_persistent_loader_workers_give_the_samples_of_no_workers(pose_data: Path) -> None:
    cfg = load_data_config(pose_data, "pose")
    ds = CocoDataset(cfg.train_images, cfg.train_annotations, "pose", 64, train=True,
                     aug=Augment(mosaic=True), seed=3)
    with_workers = make_loader(ds, 4, shuffle=True, seed=1, workers=2)
    without = make_loader(ds, 4, shuffle=True, seed=1, workers=0)
    for epoch in (1, 2):  # the same loader (and worker processes) for both epochs
        with_workers.sampler.set_epoch(epoch)
        without.sampler.set_epoch(epoch)
        a = [images for images, _ in with_workers]
        b = [images for images, _ in without]
        assert len(a) == len(b) == 3
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        if epoch == 1:
            first = a
    assert not all(torch.equal(x, y) for x, y in zip(first, a, strict=True))  # epochs differ


def test_annotation_file_parsed_once_per_process(pose_data: Path, monkeypatch) -> None:
    cfg = load_data_config(pose_data, "pose")
    calls: list[Path] = []
    real = data_mod.read_coco

    def counting(path, *args, **kwargs):  # the real parser, counted
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(data_mod, "read_coco", counting)
    clear_index()
    a = CocoDataset(cfg.train_images, cfg.train_annotations, "pose", 64, subset=8)
    b = CocoDataset(cfg.train_images, cfg.train_annotations, "pose", 64, subset=8, train=True)
    c = CocoDataset(cfg.train_images, cfg.train_annotations, "pose", 64)
    assert len(calls) == 1 and len(a) == len(b) == 8 and len(c) == 12
    assert a.image_ids == b.image_ids and a.report is not b.report
    st = os.stat(cfg.train_annotations)  # a new version of the file is parsed again
    os.utime(cfg.train_annotations, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    CocoDataset(cfg.train_images, cfg.train_annotations, "pose", 64)
    assert len(calls) == 2
    clear_index()


def test_fp32_channels_last_on_cpu_is_refused_before_training(det_data: Path, tmp_path) -> None:
    """fp32 channels-last backward on CPU corrupts memory in torch 2.14.1's oneDNN (the process
    aborts): the trainer refuses it with the reason before it builds anything."""
    cfg = TrainConfig(epochs=1, channels_last=True, **TINY)
    with pytest.raises(ValueError, match="channels_last on CPU needs amp_cpu"):
        train_candidate(get_preset("yolo_nas_tiny"), det_data, cfg, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_channels_last_and_bf16_train(det_data: Path) -> None:
    cfg = TrainConfig(epochs=1, channels_last=True, amp_cpu=True, **TINY)
    result = train_candidate(get_preset("yolo_nas_tiny"), det_data, cfg)
    assert result.epochs == 1 and result.loss is not None and result.loss == result.loss
