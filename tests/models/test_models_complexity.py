"""complexity(): golden numbers, hand-checked MACs, and the published parameter counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models import build_model, get_preset, list_presets
from models.blocks import QARepVGG
from models.complexity import breakdown, complexity

GOLDEN = json.loads((Path(__file__).parent / "golden_complexity.json").read_text())

# Published sizes of the released models (millions). super-gradients' QARepVGG block always
# allocates an (unused in training) fused 3x3 conv with bias next to its branches, and the
# published counts include it; our training form does not carry that dead weight.
PUBLISHED_M = {
    "yolo_nas_s": 19.0,
    "yolo_nas_m": 51.1,
    "yolo_nas_l": 66.9,
    "yolo_nas_pose_n": 9.9,
    "yolo_nas_pose_s": 22.2,
    "yolo_nas_pose_m": 58.2,
    "yolo_nas_pose_l": 79.4,
}


def test_golden_covers_every_preset() -> None:
    assert sorted(GOLDEN["presets"]) == list_presets()


@pytest.mark.parametrize("name", list_presets())
def test_golden_complexity(name: str) -> None:
    want = GOLDEN["presets"][name]
    got = complexity(get_preset(name), GOLDEN["image_size"])
    assert got.params == want["params"]
    assert got.fused_params == want["fused_params"]
    assert got.gflops == pytest.approx(want["gflops"], abs=1e-4)
    assert got.gflops == 2 * got.gmacs and got.image_size == 640


@pytest.mark.parametrize("name", ["yolo_nas_tiny", "yolo_nas_pose_tiny", "yolo_nas_s"])
def test_params_match_the_real_model(name: str) -> None:
    model = build_model(get_preset(name))
    assert complexity(get_preset(name), 64).params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_released_models_match_published_sizes(name: str) -> None:
    with torch.device("meta"):
        model = build_model(get_preset(name))
    params = sum(p.numel() for p in model.parameters())
    extra = sum(
        b.conv3.weight.numel() + b.out_ch for b in model.modules() if isinstance(b, QARepVGG)
    )
    assert (params + extra) / 1e6 == pytest.approx(PUBLISHED_M[name], rel=0.005)
    assert complexity(get_preset(name), 64).released_form_params == params + extra


def test_macs_by_hand_and_scaling() -> None:
    spec = get_preset("yolo_nas_s")
    stem = breakdown(spec, 640)[0]
    assert stem.name == "stem"
    # fused stem: one 3x3 conv 3 -> 48 at stride 2: 320 * 320 * 48 * 3 * 9 MACs
    assert stem.gmacs * 1e9 == 320 * 320 * 48 * 3 * 9
    assert stem.fused_params == 48 * 3 * 9 + 48
    # every layer runs at a fixed fraction of the input: MACs scale with the area exactly
    assert complexity(spec, 320).gmacs * 4 == pytest.approx(complexity(spec, 640).gmacs)
    assert complexity(spec, (320, 640)).gmacs * 2 == pytest.approx(complexity(spec, 640).gmacs)
    parts = breakdown(spec, 640)
    assert sum(p.gmacs for p in parts) == pytest.approx(complexity(spec, 640).gmacs)
    assert sum(p.params for p in parts) == complexity(spec, 640).params


@pytest.mark.parametrize("bad", [100, 0, (64, 30), "640", True])
def test_bad_image_size(bad: object) -> None:
    with pytest.raises(ValueError, match="image_size"):
        complexity(get_preset("yolo_nas_tiny"), bad)  # type: ignore[arg-type]
