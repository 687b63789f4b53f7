"""super-gradients weight import (models.sg_import), without super-gradients installed.

The names and shapes of the real super-gradients 3.7.1 models are pinned as hashes in
golden_sg_keys.json; the fixture checkpoints come from our own models (tests/_sg_fixture.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from _sg_fixture import key_digest, max_diff, reference_outputs, sg_fixture, sg_shapes

from models.build import build_model
from models.presets import RELEASED, get_preset
from models.sg_import import (
    WeightImportError,
    export_sg_state_dict,
    import_state_dict,
    sg_mapping,
    unwrap_sg_checkpoint,
)

GOLDEN = json.loads((Path(__file__).parent / "golden_sg_keys.json").read_text())
TINY = ("yolo_nas_tiny", "yolo_nas_pose_tiny")


def _shared_stem_pose():
    """The tiny pose preset with a shared stem and unequal widths (one 1x1 adapter per level)."""
    spec = get_preset("yolo_nas_pose_tiny")
    head = dataclasses.replace(spec.head, shared_stem=True, pose_inter=(192, 128, 256))
    return dataclasses.replace(spec, head=head)


def test_golden_covers_every_released_preset() -> None:
    assert sorted(GOLDEN["presets"]) == sorted(RELEASED)


@pytest.mark.parametrize("name", RELEASED)
def test_names_and_shapes_equal_super_gradients(name: str) -> None:
    """Every tensor of the real super-gradients model maps (hash of names and shapes)."""
    spec = get_preset(name)
    shapes = sg_shapes(spec)
    assert len(shapes) == GOLDEN["presets"][name]["tensors"]
    assert key_digest(shapes) == GOLDEN["presets"][name]["sha256"]
    mapping = sg_mapping(spec)
    assert len(set(mapping.names.values())) == len(mapping.names)  # one-to-one
    assert len(mapping.folds) == 2 and len(mapping.qarepvgg) > 0


@pytest.mark.parametrize("name", RELEASED)
def test_round_trip_without_forward(name: str) -> None:
    """export then import gives back every tensor's name, shape and dtype (meta tensors)."""
    spec = get_preset(name)
    with torch.device("meta"):
        state = build_model(spec).state_dict()
    back = import_state_dict(export_sg_state_dict(spec, state), spec)
    assert {k: (v.shape, v.dtype) for k, v in back.items()} == {
        k: (v.shape, v.dtype) for k, v in state.items()
    }


def test_round_trip_values() -> None:
    """export then import gives back every value (each tensor filled with its own index)."""
    spec = get_preset("yolo_nas_pose_n")
    shapes = sg_mapping(spec).shapes
    state = {k: torch.full(s, float(i)) for i, (k, s) in enumerate(shapes.items())}
    back = import_state_dict(export_sg_state_dict(spec, state), spec)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize("name", [*TINY, "shared_stem_pose"])
def test_imported_outputs_equal_the_source(name: str) -> None:
    """Biased upsamples and random rbr_reparam in the source; float64; eval mode."""
    spec = _shared_stem_pose() if name == "shared_stem_pose" else get_preset(name)
    fx = sg_fixture(spec, seed=3)
    x = torch.rand(2, 3, 96, 64, dtype=torch.float64) * 4 - 2
    want = reference_outputs(fx, x)
    plain = fx.model(x)
    assert max_diff(want, plain) > 1e-3  # the biases matter
    model = build_model(spec).double().eval()
    state = import_state_dict(fx.sg_state, spec)
    model.load_state_dict({k: v.double() if v.is_floating_point() else v
                           for k, v in state.items()})
    with torch.no_grad():
        got = model(x)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 1e-6
    # float32 import (what the CLI writes) stays close too
    model32 = build_model(spec).eval()
    model32.load_state_dict(state)
    with torch.no_grad():
        got32 = model32(x.float())
    assert max_diff(got32, want) < 1e-3


def test_unwrap_prefers_ema_and_strips_ddp_prefix() -> None:
    a, b = {"x.weight": torch.zeros(1)}, {"x.weight": torch.ones(1)}
    state, key = unwrap_sg_checkpoint({"net": a, "ema_net": b, "epoch": 3, "acc": 0.5})
    assert key == "ema_net" and torch.equal(state["x.weight"], b["x.weight"])
    assert unwrap_sg_checkpoint({"net": a, "ema_net": None})[1] == "net"
    assert unwrap_sg_checkpoint({"net": a, "ema_net": b}, "net")[0]["x.weight"].item() == 0
    ddp = {"module.x.weight": torch.ones(1), "module.y.bias": torch.ones(2)}
    state, key = unwrap_sg_checkpoint(ddp)
    assert key == "state_dict" and sorted(state) == ["x.weight", "y.bias"]
    with pytest.raises(WeightImportError, match="'ema_net'"):
        unwrap_sg_checkpoint({"net": a}, "ema_net")
    with pytest.raises(WeightImportError, match="'epoch' is not a tensor"):
        unwrap_sg_checkpoint({"epoch": 3, "x.weight": torch.ones(1)})


def _sg(spec_name: str = "yolo_nas_tiny") -> tuple[dict, object]:
    spec = get_preset(spec_name)
    return sg_fixture(spec).sg_state, spec


def test_refuses_missing_tensor() -> None:
    sg, spec = _sg()
    del sg["neck.neck3.blocks.conv1.bn.running_var"]
    with pytest.raises(WeightImportError, match=r"missing tensor 'neck\.neck3\.blocks\.conv1"):
        import_state_dict(sg, spec)


def test_refuses_missing_upsample_bias() -> None:
    sg, spec = _sg()
    del sg["neck.neck2.upsample.bias"]
    with pytest.raises(WeightImportError, match=r"missing tensor 'neck\.neck2\.upsample\.bias'"):
        import_state_dict(sg, spec)


def test_refuses_wrong_shape() -> None:
    sg, spec = _sg()
    sg["heads.head2.cls_pred.weight"] = torch.zeros(80, 32, 1, 1)
    with pytest.raises(WeightImportError, match=r"'heads\.head2\.cls_pred\.weight' has shape"):
        import_state_dict(sg, spec)


def test_refuses_extra_tensor() -> None:
    sg, spec = _sg()
    sg["heads.head4.cls_pred.weight"] = torch.zeros(4, 8, 1, 1)
    with pytest.raises(WeightImportError, match=r"unexpected tensor 'heads\.head4"):
        import_state_dict(sg, spec)


def test_refuses_fused_checkpoint() -> None:
    sg, spec = _sg()
    block = "backbone.stage2.downsample"
    for k in [k for k in sg if k.startswith(block) and "rbr_reparam" not in k
              and "post_bn" not in k]:  # fmt: skip
        del sg[k]
    with pytest.raises(WeightImportError, match=r"'backbone\.stage2\.downsample' has "
                                                r"'rbr_reparam'.*fused"):
        import_state_dict(sg, spec)


def test_rbr_reparam_is_optional() -> None:
    sg, spec = _sg()
    sg = {k: v for k, v in sg.items() if "rbr_reparam" not in k}
    assert import_state_dict(sg, spec).keys() == build_model(spec).state_dict().keys()


def test_pose_checkpoint_into_detection_arch_is_refused() -> None:
    sg, _ = _sg("yolo_nas_pose_tiny")
    with pytest.raises(WeightImportError, match=r"unexpected tensor 'heads\.head1\."):
        import_state_dict(sg, get_preset("yolo_nas_tiny"))
