"""Every released model is an exact point of its space, whatever the trial object replaying it."""

from __future__ import annotations

import dataclasses

import pytest
from optuna.trial import FixedTrial

from models.presets import RELEASED, get_preset
from search_spaces import RandomTrial, get_space, scale_spec

SPACE_OF = {name: ("yolo_nas_pose" if "pose" in name else "yolo_nas") for name in RELEASED}


def test_every_released_model_is_a_reference_point() -> None:
    found = set(get_space("yolo_nas").reference_points()) | set(
        get_space("yolo_nas_pose").reference_points()
    )
    assert found == set(RELEASED)
    assert len(RELEASED) == 7


@pytest.mark.parametrize("preset", RELEASED)
def test_reference_replays_exactly(preset: str) -> None:
    space = get_space(SPACE_OF[preset])
    params = space.reference_points()[preset]
    want = get_preset(preset).arch_id

    fixed = FixedTrial(params)
    assert space.sample(fixed).arch_id == want
    assert fixed.params == params  # every given parameter was suggested, none missing

    rnd = RandomTrial(seed=123, params=params)
    assert space.sample(rnd).arch_id == want
    assert rnd.params == params  # nothing was drawn at random

    assert space.replay(params).arch_id == want
    assert space.reference_specs()[preset] == get_preset(preset)
    assert space.params_of(get_preset(preset)) == params


def test_reference_points_of_a_scaled_space_are_the_scaled_models() -> None:
    for space_name in ("yolo_nas", "yolo_nas_pose"):
        space = get_space(space_name, width_scale=0.25)
        specs = space.reference_specs()
        assert set(specs) == set(get_space(space_name).reference_points())
        for name, spec in specs.items():
            assert spec == scale_spec(get_preset(name), 0.25)
            assert spec.arch_id != get_preset(name).arch_id
            b = spec.backbone
            channels = [b.stem, b.spp] + [s.out_channels for s in b.stages]
            channels += [s.hidden for s in b.stages]
            assert all(c % 8 == 0 and c >= 8 for c in channels)
            # depths and the head multiplier are not scaled
            assert [s.depth for s in b.stages] == [
                s.depth for s in get_preset(name).backbone.stages
            ]
            assert spec.head.width_mult == get_preset(name).head.width_mult
    half = get_space("yolo_nas", width_scale=0.5).reference_specs()["yolo_nas_s"]
    assert half.backbone.stem == 24


def test_reference_points_follow_num_classes_and_keypoints() -> None:
    det = get_space("yolo_nas", num_classes=3).reference_specs()["yolo_nas_m"]
    assert det == dataclasses.replace(get_preset("yolo_nas_m"), num_classes=3)
    pose = get_space("yolo_nas_pose", num_keypoints=5).reference_specs()["yolo_nas_pose_s"]
    assert pose == dataclasses.replace(get_preset("yolo_nas_pose_s"), num_keypoints=5)


def test_reference_points_outside_a_narrowed_space_are_left_out() -> None:
    assert get_space("yolo_nas", max_depth=2).reference_points() == {}
    assert set(get_space("yolo_nas", fixed={"stage4_kind": "qci"}).reference_points()) == {
        "yolo_nas_l"
    }
    assert set(get_space("yolo_nas_pose", tiers=["n"]).reference_points()) == {"yolo_nas_pose_n"}
    assert get_space("yolo_nas", tiers=["n"]).reference_points() == {}


def test_specs_outside_the_space_have_no_params() -> None:
    space = get_space("yolo_nas")
    assert space.params_of(get_preset("yolo_nas_tiny")) is None  # other macro widths
    assert space.params_of(get_preset("yolo_nas_pose_s")) is None  # other task
    odd = dataclasses.replace(
        get_preset("yolo_nas_s"),
        backbone=dataclasses.replace(get_preset("yolo_nas_s").backbone, spp_kernels=(3, 5)),
    )
    assert space.params_of(odd) is None
