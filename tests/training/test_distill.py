"""Distillation: the loss (models/distill.py), the frozen teacher (evaluators/distill.py), the
trainer's ``teacher`` and ``opennac train --distill``."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from evaluators.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from evaluators.data import CocoDataset, load_data_config, make_loader
from evaluators.distill import Distiller, load_teacher, raw_mode
from evaluators.trainer import TrainConfig, train_candidate
from models.build import build_model
from models.distill import DistillLoss, binary_kl
from models.presets import get_preset
from models.spec import ArchSpec
from nas.cli import main

POSE = get_preset("yolo_nas_pose_tiny")
DET = get_preset("yolo_nas_tiny")
NO_AUG = dict(affine=False, flip=False, hsv=False, mosaic=False, rot90=False, mixup=False)


def _model(spec: ArchSpec, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return raw_mode(build_model(spec))


def _perturb(model: torch.nn.Module, branch: str) -> None:
    """Add noise to one prediction conv (``cls_pred``, ``reg_pred`` or ``pose_pred``)."""
    with torch.no_grad():
        for level in model.head.levels:
            conv = getattr(level, branch)
            conv.weight.add_(torch.randn_like(conv.weight) * 0.5)
            conv.bias.add_(torch.randn_like(conv.bias))


@pytest.mark.parametrize("spec", [DET, POSE], ids=["detection", "pose"])
def test_zero_for_the_same_network_positive_and_student_only_otherwise(spec: ArchSpec) -> None:
    x = torch.rand(2, 3, 64, 64)
    student = _model(spec, 0)
    teacher = copy.deepcopy(student)  # requires_grad left on: the loss must detach it
    for temperature in (1.0, 3.0):
        total, parts = DistillLoss(temperature)(student(x), teacher(x))
        assert abs(float(total.detach())) < 1e-6
        assert all(abs(float(v)) < 1e-6 for v in parts.values())
    expected = {"distill_cls", "distill_dfl"} | ({"distill_kpt"} if spec.task == "pose" else set())
    assert set(parts) == expected

    other = _model(spec, 1)  # another initialisation: every term positive
    total, parts = DistillLoss(2.0)(student(x), other(x))
    assert float(total.detach()) > 0 and all(float(v) > 0 for v in parts.values()), parts
    assert total.requires_grad and torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in student.head.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    assert all(p.grad is None for p in other.parameters())  # the teacher gets nothing


@pytest.mark.parametrize("branch,part", [("cls_pred", "distill_cls"), ("reg_pred", "distill_dfl"),
                                         ("pose_pred", "distill_kpt")])  # fmt: skip
def test_each_term_reads_its_own_branch(branch: str, part: str) -> None:
    x = torch.rand(2, 3, 64, 64)
    teacher = _model(POSE, 0)
    student = copy.deepcopy(teacher)
    _perturb(student, branch)
    _, parts = DistillLoss()(student(x), teacher(x))
    assert float(parts[part]) > 1e-3, parts
    for name, value in parts.items():
        if name != part:
            assert abs(float(value)) < 1e-6, (name, parts)


def test_binary_kl_and_temperature() -> None:
    s, t = torch.tensor([-2.0, 0.0, 3.0]), torch.tensor([1.0, 0.0, -1.0])
    p, q = t.sigmoid(), s.sigmoid()
    ref = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    assert torch.allclose(binary_kl(s, t), ref, atol=1e-6)
    assert torch.allclose(binary_kl(s, t, 2.0), binary_kl(s / 2, t / 2), atol=1e-7)
    for bad in (0, -1.0, float("nan"), True, "2"):
        with pytest.raises(ValueError, match="temperature: expected a positive number"):
            DistillLoss(bad)  # type: ignore[arg-type]


def test_incompatible_networks_are_refused(tmp_path: Path) -> None:
    x = torch.rand(1, 3, 64, 64)
    det = _model(DET, 0)(x)
    cases = [
        (_model(POSE, 0)(x), "the student is a detection model, the teacher a pose model"),
        (_model(dataclasses.replace(DET, num_classes=3), 0)(x), "class count 4, the teacher 3"),
        (_model(dataclasses.replace(DET, head=dataclasses.replace(DET.head, reg_max=8)), 0)(x),
         "reg_max 16, the teacher 8"),
        (_model(DET, 0)(torch.rand(1, 3, 96, 96)), "anchors 84, the teacher 189"),
    ]  # fmt: skip
    for teacher_out, message in cases:
        with pytest.raises(ValueError, match=message):
            DistillLoss()(det, teacher_out)
    # A wider teacher of the same task, classes and reg_max is fine.
    wide = dataclasses.replace(DET, head=dataclasses.replace(DET.head, width_mult=0.5))
    assert float(DistillLoss()(det, _model(wide, 0)(x))[0]) > 0
    # The checkpoint is checked before any training starts.
    path = save_checkpoint(tmp_path / "pose.pt", spec=POSE, model=build_model(POSE), epoch=1)
    with pytest.raises(ValueError, match=r"pose\.pt: teacher with task pose, the student has"):
        load_teacher(path, DET)


def test_config_and_pairing_checks(det_data: Path, tmp_path: Path) -> None:
    for key in ("distill_weight", "distill_temperature"):
        for bad in (0, -1.0, "1", True, float("inf")):
            with pytest.raises(ValueError, match=f"{key}: expected a positive number"):
                TrainConfig(**{key: bad})
    cfg = TrainConfig.from_dict({"distill_weight": 0.5, "distill_temperature": 2})
    assert (cfg.distill_weight, cfg.distill_temperature) == (0.5, 2)
    path = save_checkpoint(tmp_path / "t.pt", spec=DET, model=build_model(DET), epoch=1)
    tiny = dict(epochs=1, image_size=64, batch=6)
    with pytest.raises(ValueError, match="a teacher checkpoint and distill_weight go together"):
        train_candidate(DET, det_data, TrainConfig(**tiny), teacher=path)
    with pytest.raises(ValueError, match="a teacher checkpoint and distill_weight go together"):
        train_candidate(DET, det_data, TrainConfig(distill_weight=1.0, **tiny))


def _val_batch(data: Path) -> torch.Tensor:
    cfg = load_data_config(data, "pose")
    ds = CocoDataset(cfg.val_images, cfg.val_annotations, "pose", 64, num_keypoints=17)
    images, _ = next(iter(make_loader(ds, 16, shuffle=False)))
    return images.float() / 255.0


def _distance(student_state: dict, teacher: torch.nn.Module, x: torch.Tensor) -> float:
    """The distillation loss on ``x`` as training sees it (the student's BN on batch stats)."""
    student = build_model(POSE)
    student.load_state_dict(student_state)
    with torch.no_grad():
        return float(DistillLoss()(student.train()(x), raw_mode(teacher)(x))[0])


@pytest.mark.slow
def test_training_with_a_teacher(
    pose_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A teacher trained a few epochs; a student of another seed trained with and without
    distillation: it moves toward the teacher only with it; the teacher stays as it was."""
    base = dict(image_size=64, batch=6, warmup=0.5, oks_area_factor=1.0, **NO_AUG)
    teacher_run = train_candidate(POSE, pose_data, TrainConfig(epochs=15, seed=7, lr=5e-3, **base),
                                  out_dir=tmp_path / "teacher")  # fmt: skip
    ckpt = Path(teacher_run.checkpoint)

    distillers: list[Distiller] = []
    original = Distiller.from_checkpoint.__func__  # keep a handle on the one the trainer makes

    def spy(cls: type[Distiller], *args: object, **kwargs: object) -> Distiller:
        distillers.append(original(cls, *args, **kwargs))
        return distillers[-1]

    monkeypatch.setattr(Distiller, "from_checkpoint", classmethod(spy))
    runs = {}
    for name, extra in (("plain", {}), ("distilled", {"distill_weight": 1.0})):
        cfg = TrainConfig(epochs=4, seed=0, **base, **extra)
        runs[name] = train_candidate(POSE, pose_data, cfg, out_dir=tmp_path / name,
                                     teacher=ckpt if extra else None)  # fmt: skip

    history = runs["distilled"].history
    assert all({"loss_distill_cls", "loss_distill_dfl", "loss_distill_kpt"} <= set(r)
               for r in history)  # fmt: skip
    assert not any(k.startswith("loss_distill") for k in runs["plain"].history[0])
    doc = load_checkpoint(tmp_path / "distilled" / "last.pt")
    assert doc["train_config"]["teacher"] == str(ckpt)
    assert doc["train_config"]["distill_weight"] == 1.0
    assert load_checkpoint(tmp_path / "plain" / "last.pt")["train_config"]["teacher"] is None

    # The teacher the trainer used: frozen, BN statistics untouched, same outputs as the file.
    (distiller,) = distillers
    reference, _ = model_from_checkpoint(ckpt)
    for (name, a), b in zip(distiller.teacher.state_dict().items(),
                            reference.state_dict().values(), strict=True):  # fmt: skip
        assert torch.equal(a, b), name
    assert all(not p.requires_grad and p.grad is None for p in distiller.teacher.parameters())

    # Distillation pulls the student toward the teacher, the task loss alone does not as much.
    x = _val_batch(pose_data)
    torch.manual_seed(0)
    start = _distance(build_model(POSE).state_dict(), reference, x)
    plain = _distance(load_checkpoint(tmp_path / "plain" / "last.pt")["state_dict"], reference, x)
    distilled = _distance(doc["state_dict"], reference, x)
    assert distilled < plain and distilled < start, (start, plain, distilled)


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_distill(det_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.pt"
    assert main(["train", "yolo_nas_tiny", "--data", str(det_data), "--distill",
                 str(missing)]) == 2  # fmt: skip
    assert f"--distill: {missing}: checkpoint not found" in _err_line(capsys)
    assert main(["train", "yolo_nas_tiny", "--data", str(det_data), "--distill-weight",
                 "2"]) == 2  # fmt: skip
    assert "--distill-weight: needs --distill CKPT" in _err_line(capsys)

    # A wider teacher of another architecture, one epoch, weight and temperature recorded.
    wide = dataclasses.replace(DET, head=dataclasses.replace(DET.head, width_mult=0.5))
    teacher = save_checkpoint(tmp_path / "wide.pt", spec=wide, model=build_model(wide), epoch=1)
    base = ["train", "yolo_nas_tiny", "--data", str(det_data), "--epochs", "1", "--image-size",
            "64", "--batch", "6", "--distill", str(teacher)]
    assert main([*base, "--distill-weight", "0"]) == 2
    assert _err_line(capsys).endswith("--distill-weight: expected a positive number, got 0.0")
    out = tmp_path / "run"
    assert main([*base, "--distill-weight", "0.5", "--distill-temperature", "2", "--out",
                 str(out), "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert json.loads(captured.out)["epochs"] == 1
    assert f"teacher {teacher}" in captured.err
    doc = load_checkpoint(out / "last.pt")
    tc = doc["train_config"]
    assert (tc["teacher"], tc["distill_weight"], tc["distill_temperature"]) == (
        str(teacher), 0.5, 2.0)
    assert {"loss_distill_cls", "loss_distill_dfl"} <= set(doc["history"][0])
