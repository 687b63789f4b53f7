"""Weight inheritance (evaluators/inherit.py): exact into the parent's own architecture, top-L1
slices into narrower/shallower candidates with every consumer on the same indices, detection ->
pose backbone and neck only, `train_candidate(init=...)` and `opennac train --init CKPT`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import optuna
import pytest
import torch
from torch import Tensor, nn

from evaluators.checkpoint import load_checkpoint, save_checkpoint
from evaluators.inherit import inherit_from_checkpoint, inherit_weights
from evaluators.trainer import TrainConfig, train_candidate
from models.build import build_model
from models.presets import get_preset
from models.spec import ArchSpec, StageSpec
from nas.cli import main
from search_spaces import get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trained_like(spec: ArchSpec, seed: int = 1) -> nn.Module:
    """A network of ``spec`` whose every tensor differs from a fresh one (BN statistics,
    residual alphas, weights): stands in for a trained parent."""
    torch.manual_seed(seed)
    model = build_model(spec)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif t.dtype.is_floating_point:
                t.add_(0.05 * torch.randn_like(t))
    return model.eval()


def _top_l1(weight: Tensor, k: int, out_dim: int = 0) -> Tensor:
    """Independent reference: the k filters of largest L1 norm, in index order."""
    dims = [d for d in range(weight.dim()) if d != out_dim]
    return weight.abs().sum(dims).topk(k).indices.sort().values


def _stage(st: StageSpec, **changes: object) -> StageSpec:
    return dataclasses.replace(st, **changes)


@pytest.mark.parametrize("name", ["yolo_nas_tiny", "yolo_nas_pose_tiny"])
def test_same_architecture_reproduces_outputs(name: str) -> None:
    spec = get_preset(name)
    parent = _trained_like(spec)
    child = build_model(spec)
    result = inherit_weights(child, spec, parent, spec)
    n_params = len(list(child.parameters()))
    assert result.fraction == 1.0 and result.tensors_whole == n_params
    assert result.tensors_sliced == result.tensors_fresh == 0
    for key, value in parent.state_dict().items():  # buffers included
        assert torch.equal(child.state_dict()[key], value), key
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(parent(x), child.eval()(x), strict=True):
        assert torch.equal(a, b)


def _narrow_pose_pair() -> tuple[ArchSpec, ArchSpec]:
    """Parent: pose tiny with a 2-block, 16-hidden stage 2. Child: stage 1 narrower (16 -> 8
    out), stage 2 shallower and narrower (1 block, 8 hidden), a narrower head (width 0.25 ->
    0.125), the rest as the parent."""
    base = get_preset("yolo_nas_pose_tiny")
    bb = base.backbone
    p_stages = (bb.stages[0], _stage(bb.stages[1], depth=2, hidden=16), *bb.stages[2:])
    parent = dataclasses.replace(base, backbone=dataclasses.replace(bb, stages=p_stages))
    c_stages = (_stage(bb.stages[0], out_channels=8), _stage(bb.stages[1], depth=1, hidden=8),
                *bb.stages[2:])  # fmt: skip
    child = dataclasses.replace(
        base, backbone=dataclasses.replace(bb, stages=c_stages),
        head=dataclasses.replace(base.head, width_mult=0.125),
    )  # fmt: skip
    return parent, child


def test_narrower_shallower_takes_top_l1_slices_everywhere() -> None:
    parent_spec, child_spec = _narrow_pose_pair()
    parent = _trained_like(parent_spec)
    child = build_model(child_spec)
    result = inherit_weights(child, child_spec, parent, parent_spec)
    # a sub-network of the parent: every element comes from it, many tensors are slices
    assert result.fraction == 1.0 and result.tensors_fresh == 0
    assert result.tensors_sliced > 0 and result.tensors_whole > 0
    child.eval()
    boxes, scores, kpts = child(torch.randn(1, 3, 64, 64))
    assert torch.isfinite(boxes).all() and torch.isfinite(kpts).all()

    P, C = parent.backbone, child.backbone  # noqa: N806
    # stage 1 is narrower (16 -> 8 channels): its output = the top-L1 filters of body.out ...
    sel = _top_l1(P.stages[0].body.out.conv.weight, 8)
    assert torch.equal(C.stages[0].body.out.conv.weight, P.stages[0].body.out.conv.weight[sel])
    for attr in ("weight", "bias", "running_mean", "running_var"):
        got, want = getattr(C.stages[0].body.out.bn, attr), getattr(P.stages[0].body.out.bn, attr)
        assert torch.equal(got, want[sel]), attr
    # ... and both of its consumers read those channels: stage 2's downsample and the neck (C2)
    for branch in ("conv3", "conv1"):
        want = getattr(P.stages[1].down, branch).weight[:, sel]
        assert torch.equal(getattr(C.stages[1].down, branch).weight, want)
    up2_p, up2_c = parent.neck.up2.reduce_skip2, child.neck.up2.reduce_skip2
    assert torch.equal(up2_c.conv.weight, up2_p.conv.weight[:, sel])
    # stage 1's downsample, also narrower: top-L1 of conv3 + conv1 filters, body inputs follow
    pd = P.stages[0].down
    score = pd.conv3.weight.abs().sum((1, 2, 3)) + pd.conv1.weight.abs().sum((1, 2, 3))
    dsel = score.topk(8).indices.sort().values
    assert torch.equal(C.stages[0].down.conv3.weight, pd.conv3.weight[dsel])
    want = P.stages[0].body.path1.conv.weight[:, dsel]
    assert torch.equal(C.stages[0].body.path1.conv.weight, want)

    # stage 2 is shallower (2 -> 1 block) and narrower (16 -> 8 hidden)
    pb, cb = P.stages[1].body, C.stages[1].body
    assert len(cb.bottlenecks) == 1
    s1, s2 = _top_l1(pb.path1.conv.weight, 8), _top_l1(pb.path2.conv.weight, 8)
    assert torch.equal(cb.path1.conv.weight, pb.path1.conv.weight[s1])  # input: same width
    assert torch.equal(cb.path2.conv.weight, pb.path2.conv.weight[s2])
    assert torch.equal(cb.path1.bn.running_mean, pb.path1.bn.running_mean[s1])
    # the bottleneck (residual, QARepVGG identity) keeps path 1's channels: in and out = s1
    for blk in ("block1", "block2"):
        pq, cq = getattr(pb.bottlenecks[0], blk), getattr(cb.bottlenecks[0], blk)
        assert torch.equal(cq.conv3.weight, pq.conv3.weight[s1][:, s1])
        assert torch.equal(cq.conv1.bias, pq.conv1.bias[s1])
        assert torch.equal(cq.post_bn.weight, pq.post_bn.weight[s1])
    assert torch.equal(cb.bottlenecks[0].skip.alpha, pb.bottlenecks[0].skip.alpha)
    # QSP concat [last block, path 2]: the parent's slices are s1 and 16 + s2
    cat = torch.cat([s1, 16 + s2])
    assert torch.equal(cb.out.conv.weight, pb.out.conv.weight[:, cat])

    # head narrower: the stem's top-L1 outputs feed the 3x3 convs
    for cl, pl in zip(child.head.levels, parent.head.levels, strict=True):
        n = cl.bbox_stem.conv.out_channels
        hs = _top_l1(pl.bbox_stem.conv.weight, n)
        assert torch.equal(cl.bbox_stem.conv.weight, pl.bbox_stem.conv.weight[hs])
        cs = _top_l1(pl.cls_convs[0].conv.weight, n)
        assert torch.equal(cl.cls_convs[0].conv.weight, pl.cls_convs[0].conv.weight[cs][:, hs])
        assert torch.equal(cl.cls_pred.weight, pl.cls_pred.weight[:, cs])
        assert torch.equal(cl.cls_pred.bias, pl.cls_pred.bias)


def test_deeper_and_other_kind_start_fresh() -> None:
    """Extra blocks and a body of the other kind (QSP -> QCI) keep the child's fresh init."""
    base = get_preset("yolo_nas_pose_tiny")
    bb = base.backbone
    stages = (_stage(bb.stages[0], depth=2), _stage(bb.stages[1], kind="qci"), *bb.stages[2:])
    child_spec = dataclasses.replace(base, backbone=dataclasses.replace(bb, stages=stages))
    parent = _trained_like(base)
    torch.manual_seed(3)
    child = build_model(child_spec)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    inherit_weights(child, child_spec, parent, base)
    after = child.state_dict()
    first, extra = "backbone.stages.0.body.bottlenecks.0.", "backbone.stages.0.body.bottlenecks.1."
    assert torch.equal(after[first + "block1.conv3.weight"],
                       parent.state_dict()[first + "block1.conv3.weight"])  # fmt: skip
    other = "backbone.stages.1.body."
    for key in after:
        if key.startswith((extra, other)):
            assert torch.equal(after[key], before[key]), key


def test_detection_parent_gives_pose_backbone_and_neck_only() -> None:
    parent_spec, child_spec = get_preset("yolo_nas_tiny"), get_preset("yolo_nas_pose_tiny")
    parent = _trained_like(parent_spec)
    child = build_model(child_spec)
    fresh_head = {k: v.clone() for k, v in child.head.state_dict().items()}
    result = inherit_weights(child, child_spec, parent, parent_spec)
    for key, value in child.head.state_dict().items():
        assert torch.equal(value, fresh_head[key]), key
    p_state = parent.state_dict()
    for key, value in child.state_dict().items():
        if key.startswith(("backbone.", "neck.")):
            assert torch.equal(value, p_state[key]), key
    body = sum(p.numel() for m in (child.backbone, child.neck) for p in m.parameters())
    total = sum(p.numel() for p in child.parameters())
    assert result.fraction == pytest.approx(body / total) and 0 < result.fraction < 1
    assert result.tensors_fresh == len(list(child.head.parameters()))


def test_quickstart_candidates_build_and_run() -> None:
    space = get_space("yolo_nas_pose", width_scale=0.25)
    parent_spec = space.replay(space.reference_points()["yolo_nas_pose_n"])
    parent = _trained_like(parent_spec)
    for seed in range(3):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)).ask()
        spec = space.sample(trial)
        child = build_model(spec)
        result = inherit_weights(child, spec, parent, parent_spec)
        assert 0.0 < result.fraction < 1.0, spec
        assert result.tensors_whole + result.tensors_sliced + result.tensors_fresh == len(
            list(child.parameters()))
        outs = child.eval()(torch.randn(1, 3, 64, 64))
        assert all(torch.isfinite(o).all() for o in outs)
    same = build_model(parent_spec)
    assert inherit_weights(same, parent_spec, parent, parent_spec).fraction == 1.0


# -- trainer and CLI ---------------------------------------------------------------------------


def _ckpt_parent_spec() -> ArchSpec:
    spec = _narrow_pose_pair()[0]
    return dataclasses.replace(spec, head=dataclasses.replace(spec.head, shared_stem=True))


@pytest.fixture(scope="module")
def parent_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the narrow-pair parent (pose) with a shared-stem head (so that the
    children below, with separate stems, are not sub-networks) and distinct EMA weights."""
    spec = _ckpt_parent_spec()
    path = tmp_path_factory.mktemp("parent") / "last.pt"
    save_checkpoint(path, spec=spec, model=build_model(spec), ema=_trained_like(spec), epoch=1)
    return path


def test_inherit_from_checkpoint_uses_ema(parent_ckpt: Path) -> None:
    child_spec = _narrow_pose_pair()[1]
    ema = load_checkpoint(parent_ckpt)["ema_state_dict"]
    child = build_model(child_spec)
    result = inherit_from_checkpoint(child, child_spec, parent_ckpt)
    key = "backbone.stages.2.body.path1.conv.weight"  # same shape in both: copied whole
    assert torch.equal(child.state_dict()[key], ema[key]) and 0 < result.fraction < 1


def test_trainer_init_of_another_arch(parent_ckpt: Path, pose_data: Path, tmp_path: Path) -> None:
    child_spec = _narrow_pose_pair()[1]
    expected = inherit_from_checkpoint(build_model(child_spec), child_spec, parent_ckpt)
    cfg = TrainConfig(epochs=1, image_size=64, batch=8, train_images=8, val_images=2)
    result = train_candidate(child_spec, pose_data, cfg, out_dir=tmp_path, init=parent_ckpt)
    assert result.epochs == 1 and 0 < expected.fraction < 1
    assert result.inherited_fraction == pytest.approx(expected.fraction)
    tc = load_checkpoint(tmp_path / "last.pt")["train_config"]
    assert tc["init"] == str(parent_ckpt)
    assert tc["inherited_fraction"] == pytest.approx(expected.fraction)


def test_trainer_init_refuses_other_task(parent_ckpt: Path, det_data: Path) -> None:
    cfg = TrainConfig(epochs=1, image_size=64, batch=8, train_images=4, val_images=2)
    with pytest.raises(ValueError, match=re.escape(f"{parent_ckpt}: init checkpoint of a pose")):
        train_candidate(get_preset("yolo_nas_tiny"), det_data, cfg, init=parent_ckpt)


def test_cli_init_checkpoint(parent_ckpt: Path, pose_data: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    base = ["train", "yolo_nas_pose_tiny", "--data", str(pose_data), "--epochs", "1",
            "--image-size", "64", "--batch", "8", "--train-images", "4", "--val-images", "2"]
    missing = tmp_path / "nope.pt"
    assert main([*base, "--init", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert main([*base, "--init", str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(junk) in err[0] and "not an OpenNAC checkpoint" in err[0]
    assert main([*base, "--init", str(parent_ckpt), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"init {parent_ckpt}: " in out and "of the parameters inherited" in out
    assert load_checkpoint(tmp_path / "run/last.pt")["train_config"]["init"] == str(parent_ckpt)
