"""CUDA training: mixed precision learns, checkpoints reload on CPU (skipped without a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluators.checkpoint import load_checkpoint
from evaluators.synth import make_synthetic
from evaluators.trainer import TrainConfig, evaluate_checkpoint, train_candidate
from models.presets import get_preset

pytestmark = pytest.mark.cuda


def test_mixed_precision_training_learns_on_cuda(tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", "detection", images=64, image_size=96, seed=0)
    cfg = TrainConfig(
        epochs=25, image_size=96, batch=8, lr=5e-3, eval_every=25, seed=0, device="cuda"
    )
    assert cfg.amp  # mixed precision is the default on CUDA
    result = train_candidate(get_preset("yolo_nas_tiny"), data, cfg, out_dir=tmp_path / "run")
    assert result.ap50 >= 0.5, result.to_dict()
    # The checkpoint holds float32 CPU-loadable tensors and scores the same on re-evaluation.
    ckpt = load_checkpoint(result.checkpoint)
    weights = ckpt.get("ema_state_dict") or ckpt["state_dict"]
    assert all(t.dtype != torch.float16 for t in weights.values() if t.is_floating_point())
    again = evaluate_checkpoint(result.checkpoint, data, device="cuda")
    assert again["ap"] == pytest.approx(result.ap, abs=0.02)
