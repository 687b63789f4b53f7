"""describe(): dimensions, hidden channels and an exact size, checked by enumerating narrowed
spaces."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from search_spaces import get_space
from search_spaces.base import SearchSpace


class PathTrial:
    """Follows a path of choice indices, then takes the first option; records the options seen."""

    def __init__(self, prefix: Sequence[int]) -> None:
        self.prefix = list(prefix)
        self.path: list[int] = []
        self.options: list[int] = []
        self.params: dict[str, Any] = {}

    def _pick(self, name: str, options: list[Any]) -> Any:
        i = len(self.path)
        index = self.prefix[i] if i < len(self.prefix) else 0
        self.path.append(index)
        self.options.append(len(options))
        self.params[name] = options[index]
        return options[index]

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False):
        return self._pick(name, list(range(low, high + 1, step)))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._pick(name, list(choices))


def enumerate_space(space: SearchSpace) -> list[str]:
    """arch_ids of every leaf of the space's define-by-run decision tree (depth-first)."""
    ids = []
    stack: list[list[int]] = [[]]
    while stack:
        prefix = stack.pop()
        trial = PathTrial(prefix)
        ids.append(space.sample(trial).arch_id)
        for i in range(len(prefix), len(trial.path)):
            for alt in range(1, trial.options[i]):
                stack.append(trial.path[:i] + [alt])
    return ids


def narrowed(name: str, free: set[str], **overrides: Any) -> SearchSpace:
    """The space with every parameter pinned to its first value except those in ``free``."""
    base = get_space(name, **overrides)
    fixed = {d.name: d.values()[0] for d in base.dims.values() if d.name not in free}
    return get_space(name, fixed=fixed, **overrides)


CASES = [
    # detection, both tiers: tier x stage2 kind x depth (1..2) x up1 hidden (4) x head width (4)
    (
        "yolo_nas",
        {"tier", "stage2_kind", "stage2_depth", "up1_hidden_idx", "head_width"},
        {"max_depth": 2},
        2 * 2 * 2 * 4 * 4,
    ),
    # pose, tier n only: shared stem x p5 pose blocks (4) x p3 box channels (4) x stage3 hidden
    (
        "yolo_nas_pose",
        {"head_shared_stem", "head_pose_blocks_p5", "head_bbox_inter_p3", "stage3_hidden_idx"},
        {"tiers": ["n"]},
        2 * 4 * 4 * 4,
    ),
    # scaled: 0.125 collapses the n-tier stage1 hidden choices (2, 3, 4, 6 -> 8) to one, the
    # sml ones (4, 6, 8, 12 -> 8, 8, 8, 16) to two: the shared index repeats them
    (
        "yolo_nas",
        {"tier", "stage1_hidden_idx", "down2_kind"},
        {"width_scale": 0.125},
        2 * (1 + 2),
    ),
]


@pytest.mark.parametrize("name,free,overrides,expected", CASES)
def test_size_matches_enumeration(name: str, free: set[str], overrides: dict, expected: int):
    space = narrowed(name, free, **overrides)
    ids = enumerate_space(space)
    assert len(set(ids)) == expected  # distinct architectures (an index past a tier's last
    # choice repeats it)
    desc = space.describe()
    assert desc["size"] == space.size() == expected
    assert sum(desc["size_per_tier"].values()) == expected


def test_describe_lists_dimensions_and_conditions() -> None:
    space = get_space("yolo_nas_pose")
    desc = space.describe()
    json.dumps(desc)  # JSON-ready
    dims = {d["name"]: d for d in desc["dimensions"]}
    assert list(dims) == space.param_names()
    assert dims["tier"]["choices"] == ["n", "sml"]
    assert dims["stage3_kind"]["choices"] == ["qsp", "qci"]
    assert dims["stage3_depth"]["low"] == 1 and dims["stage3_depth"]["high"] >= 5
    assert dims["stage4_hidden_idx"] == {"name": "stage4_hidden_idx", "type": "int", "low": 0,
                                         "high": 3}
    assert desc["hidden_channels"]["sml"]["stage4"] == [192, 256, 384, 512]
    assert desc["hidden_channels"]["n"]["stage4"] == [96, 128, 192, 256]
    assert not any("when" in d for d in dims.values())  # no conditional parameter
    assert {0.33, 0.5, 0.75, 1.0} <= set(dims["head_width"]["choices"])
    assert dims["head_shared_stem"]["choices"] == [False, True]
    assert desc["tiers"]["sml"]["stem"] == 48 and desc["tiers"]["n"]["stem"] == 32
    assert desc["reference_points"] == list(space.reference_points())
    assert desc["size"] > 10**15


def test_pinning_a_parameter_divides_the_size() -> None:
    full = get_space("yolo_nas").size()
    assert get_space("yolo_nas", fixed={"stage3_depth": 5}).size() * 6 == full
    assert get_space("yolo_nas", fixed={"head_width": 0.5}).size() * 4 == full
    n_only = get_space("yolo_nas", tiers=["n"]).size()
    assert get_space("yolo_nas", fixed={"tier": "n"}).size() == n_only
    assert n_only == get_space("yolo_nas").size_per_tier()["n"]
