"""Overrides narrow or scale a space; bad overrides and bad params fail with a named key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from search_spaces import RandomTrial, SpaceError, get_space, list_spaces, register_space
from search_spaces.yolo_nas import POSITIONS


def _all_stages(spec):
    n = spec.neck
    return [*spec.backbone.stages, n.up1, n.up2, n.down1, n.down2]


def test_width_scale_scales_every_channel_to_multiples_of_8() -> None:
    full = get_space("yolo_nas_pose")
    small = get_space("yolo_nas_pose", width_scale=0.25)
    assert small.overrides["width_scale"] == 0.25
    for seed in range(20):
        spec = small.sample(RandomTrial(seed=seed))
        b, h = spec.backbone, spec.head
        channels = [b.stem, b.spp, *h.bbox_inter, *h.pose_inter, *h.bbox_channels]
        for st in _all_stages(spec):
            channels += [st.out_channels, st.hidden]
        assert all(c % 8 == 0 and c >= 8 for c in channels)
        assert b.stem in (8, 16)  # 32 * 0.25 and 48 * 0.25 rounded to multiples of 8
    assert small.size() < full.size()  # duplicate scaled choices collapse


def test_num_classes_and_keypoints() -> None:
    spec = get_space("yolo_nas", num_classes=4).sample(RandomTrial(seed=0))
    assert spec.num_classes == 4
    pose = get_space("yolo_nas_pose", num_keypoints=5).sample(RandomTrial(seed=0))
    assert pose.num_keypoints == 5 and pose.num_classes == 1
    assert get_space("yolo_nas_pose", num_classes=1).num_keypoints == 17


def test_tiers_and_max_depth_narrow_the_space() -> None:
    space = get_space("yolo_nas", tiers=["sml"], max_depth=2)
    assert "stage1_hidden_idx" in space.param_names() and "tier" in space.param_names()
    for seed in range(20):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        assert trial.params["tier"] == "sml" and spec.backbone.stem == 48
        assert all(st.depth <= 2 for st in _all_stages(spec))


def test_fixed_pins_parameters_and_keeps_them_in_params() -> None:
    fixed = {
        "tier": "n",
        "stage3_depth": 2,
        "up2_kind": "qci",
        "stage4_hidden_t_n": 192,  # the old per-tier name: read as stage4_hidden_idx 2
        "head_width": 1,
    }
    space = get_space("yolo_nas", fixed=fixed)
    assert not [k for k in space.param_names() if "_t_" in k]
    assert space.overrides["fixed"]["stage4_hidden_idx"] == 2
    for seed in range(10):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        assert trial.params["stage3_depth"] == 2 and spec.backbone.stages[2].depth == 2
        assert spec.neck.up2.kind == "qci"
        assert spec.backbone.stages[3].hidden == 192
        assert spec.head.width_mult == 1.0 and spec.backbone.stem == 32


@pytest.mark.parametrize(
    "name,overrides,words",
    [
        ("yolo_nas", {"depth": 3}, ["unknown override", "'depth'", "max_depth"]),
        ("yolo_nas", {"width_scale": "half"}, ["width_scale", "'half'"]),
        ("yolo_nas", {"width_scale": 0}, ["width_scale", "(0, 4]"]),
        ("yolo_nas", {"width_scale": True}, ["width_scale"]),
        ("yolo_nas", {"width_scale": 0.01}, ["width_scale", "identical"]),
        ("yolo_nas", {"num_classes": 0}, ["num_classes", ">= 1"]),
        ("yolo_nas", {"num_keypoints": 17}, ["unknown override", "num_keypoints"]),
        ("yolo_nas", {"tiers": ["xl"]}, ["tiers", "'xl'", "known"]),
        ("yolo_nas", {"tiers": []}, ["tiers", "non-empty"]),
        ("yolo_nas", {"max_depth": 0}, ["max_depth", ">= 1"]),
        ("yolo_nas", {"max_depth": 2.5}, ["max_depth", "integer"]),
        ("yolo_nas", {"fixed": [1, 2]}, ["fixed", "mapping"]),
        ("yolo_nas", {"fixed": {"stage1_depht": 2}}, ["fixed.stage1_depht", "stage1_depth"]),
        ("yolo_nas", {"fixed": {"stage1_depth": 9}}, ["fixed.stage1_depth", "9", "1..3"]),
        ("yolo_nas", {"fixed": {"stage1_kind": "csp"}}, ["fixed.stage1_kind", "'csp'", "qci"]),
        ("yolo_nas", {"fixed": {"head_width": True}}, ["fixed.head_width", "True"]),
        (
            "yolo_nas",
            {"tiers": ["n"], "fixed": {"stage1_hidden_t_sml": 32}},
            ["fixed.stage1_hidden_t_sml", "tier 'sml'", "stage1_hidden_idx"],
        ),
        (  # two tiers: one index cannot pin one tier's channels
            "yolo_nas",
            {"fixed": {"stage1_hidden_t_sml": 32}},
            ["fixed.stage1_hidden_t_sml", "tier 'sml'", "stage1_hidden_idx"],
        ),
        ("yolo_nas", {"fixed": {"stage1_hidden_idx": 4}}, ["fixed.stage1_hidden_idx", "0..3"]),
        ("yolo_nas_pose", {"num_classes": 80}, ["num_classes", "1 class"]),
        ("yolo_nas_pose", {"fixed": {"head_shared_stem": 1}}, ["head_shared_stem"]),
    ],
)
def test_bad_overrides_name_the_key(name: str, overrides: dict, words: list[str]) -> None:
    with pytest.raises(SpaceError) as err:
        get_space(name, **overrides)
    msg = str(err.value)
    assert name in msg
    for word in words:
        assert word in msg, msg


def test_bad_params_on_replay_name_the_parameter() -> None:
    space = get_space("yolo_nas")
    params = dict(space.reference_points()["yolo_nas_s"])
    missing = {k: v for k, v in params.items() if k != "up1_depth"}
    with pytest.raises(SpaceError, match="'up1_depth'.*missing"):
        space.replay(missing)
    with pytest.raises(SpaceError, match="'stage2_hidden_idx'.*not in 0..3"):
        space.replay({**params, "stage2_hidden_idx": 4})
    # the old per-tier encoding replays, as strictly
    old = space.with_encoding("tier").params_of(space.replay(params))
    assert old is not None and "stage2_hidden_t_sml" in old and space.replay(old) == \
        space.replay(params)
    with pytest.raises(SpaceError, match="'stage2_hidden_t_sml'.*65"):
        space.replay({**old, "stage2_hidden_t_sml": 65})
    with pytest.raises(SpaceError, match="'stage2_hidden_t_n'.*not used"):
        space.replay({**old, "stage2_hidden_t_n": 48})
    # Values read back from a table as floats still replay.
    as_floats = {k: float(v) if isinstance(v, int) else v for k, v in params.items()}
    assert space.replay(as_floats) == space.replay(params)


def test_registry() -> None:
    assert list_spaces() == ["yolo_nas", "yolo_nas_pose"]
    assert list_spaces("*pose") == ["yolo_nas_pose"]
    with pytest.raises(ValueError, match="already registered"):
        register_space("yolo_nas")(lambda **kw: None)
    assert get_space("yolo_nas").name == "yolo_nas"  # the original survives
    with pytest.raises(SpaceError, match="unknown search space 'yolo_v8'.*yolo_nas_pose"):
        get_space("yolo_v8")


def test_importing_spaces_does_not_import_optuna() -> None:
    code = (
        "import sys, search_spaces as s; "
        "spec = s.get_space('yolo_nas_pose').sample(s.RandomTrial(0)); "
        "assert 'optuna' not in sys.modules, 'optuna imported'; print(spec.task)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "pose"


def test_positions_cover_backbone_and_neck() -> None:
    assert POSITIONS == ("stage1", "stage2", "stage3", "stage4", "up1", "up2", "down1", "down2")


def test_none_means_default_and_spaces_pickle() -> None:
    import pickle

    space = get_space("yolo_nas_pose", width_scale=None, max_depth=None, fixed=None, tiers=None)
    assert space.overrides == get_space("yolo_nas_pose").overrides
    narrowed = get_space("yolo_nas", width_scale=0.5, fixed={"head_width": 1})
    assert narrowed.overrides["fixed"] == {"head_width": 1.0}
    copy = pickle.loads(pickle.dumps(narrowed))  # Ray ships spaces to its workers
    assert copy.sample(RandomTrial(seed=4)) == narrowed.sample(RandomTrial(seed=4))
    assert copy.describe() == narrowed.describe()
