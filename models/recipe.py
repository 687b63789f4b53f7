"""Training recipes: one named, versioned set of facts per released model.

A `Recipe` says how a network of the YOLO-NAS family is trained: the loss weights and target
rules (`models.losses`), the BatchNorm momentum, the optimiser facts the trainer reads (weight
decay, cosine floor) and which augmentations are on (with their probabilities). The values are
those of the released models' recipes (super-gradients 3.7.1, see docs/training.md); a score is
only comparable to another trained with the same `Recipe.label` (``name/vVERSION``), which is
written into every checkpoint and trial row.

Selection (`recipe_for`): a released preset trains with its own recipe. Any other architecture
(a searched one, the tiny test presets) takes the recipe of the released model of its task whose
head width multiplier is nearest (N 0.33, S 0.5, M 0.75, L 1.0): the search space's ``tier``
alone cannot decide, since the ``sml`` tier holds S, M and L, whose recipes differ, while the
released sizes differ exactly in head width.

Example:
    >>> from models.presets import get_preset
    >>> from models.recipe import get_recipe, recipe_for
    >>> recipe_for(get_preset("yolo_nas_pose_m")).label
    'yolo_nas_pose_m/v1'
    >>> r = get_recipe("yolo_nas_pose_s")
    >>> (r.dfl_weight, r.pose_weight, r.bn_momentum)
    (0.01, 34.0, 0.1)
    >>> recipe_for(get_preset("yolo_nas_pose_tiny")).name
    'yolo_nas_pose_n'
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any

from torch import nn

from models.spec import ArchSpec


@dataclass(frozen=True)
class Recipe:
    """How a model is trained. Bump ``version`` whenever a value changes."""

    name: str  # "yolo_nas_pose_s" style: the released model whose recipe this is
    version: int
    task: str  # "detection" | "pose"
    # Losses (models.losses): weights of each term.
    cls_weight: float = 1.0
    iou_weight: float = 2.5
    dfl_weight: float = 0.5
    pose_weight: float = 0.0  # keypoint OKS regression (pose only)
    vis_weight: float = 0.0  # keypoint visibility (pose only)
    vis_alpha: float = 0.25  # focal alpha of the visibility loss (<= 0: none)
    oks_area_factor: float = 0.53  # OKS scale in assigner and loss: box area x this
    min_visible_keypoints: int = 1  # persons with fewer labelled joints are not targets
    # Network: BatchNorm momentum while training (PyTorch convention).
    bn_momentum: float = 0.03
    # Optimiser and schedule (evaluators.trainer): AdamW, no decay on biases and BN.
    weight_decay: float = 1e-5
    final_lr_ratio: float = 0.1  # cosine decay floor, x the peak rate
    # Augmentations (evaluators.transforms): switches and probabilities.
    pad_value: int = 114  # letterbox padding
    mosaic: bool = False
    mosaic_prob: float = 0.5
    # Mosaic centre range (x the output size): (1, 1) tiles four whole images, as the reference.
    mosaic_center: tuple[float, float] = (1.0, 1.0)
    rot90: bool = False
    rot90_prob: float = 0.5
    mixup: bool = False
    mixup_prob: float = 0.5
    mixup_scale: tuple[float, float] = (0.5, 1.5)

    @property
    def label(self) -> str:
        """``name/vVERSION``: what a trial row and a checkpoint record."""
        return f"{self.name}/v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["mixup_scale"] = list(self.mixup_scale)
        d["mosaic_center"] = list(self.mosaic_center)
        return d

    @classmethod
    def from_dict(cls, data: Any, where: str = "recipe") -> Recipe:
        """Strict inverse of `to_dict`; unknown keys raise ValueError naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(names)})")
        kw = dict(data)
        for key in ("mixup_scale", "mosaic_center"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


_DETECTION = Recipe(name="", version=1, task="detection", mixup=True)
# Pose N and S (arch params bn_momentum 0.03 / 0.1): DFL 0.01, pose regression 34.
_POSE_NS = Recipe(
    name="", version=1, task="pose", dfl_weight=0.01, pose_weight=34.0, vis_weight=1.0,
    weight_decay=1e-6, final_lr_ratio=0.05, pad_value=127, mosaic=True,
)  # fmt: skip
# Pose M and L ("mosaic heavy" data params add the 90-degree rotation): DFL 0.5, pose 10.
_POSE_ML = dataclasses.replace(_POSE_NS, dfl_weight=0.5, pose_weight=10.0, rot90=True)

_RECIPES: dict[str, Recipe] = {
    "yolo_nas_s": dataclasses.replace(_DETECTION, name="yolo_nas_s"),
    "yolo_nas_m": dataclasses.replace(_DETECTION, name="yolo_nas_m"),
    "yolo_nas_l": dataclasses.replace(_DETECTION, name="yolo_nas_l"),
    "yolo_nas_pose_n": dataclasses.replace(_POSE_NS, name="yolo_nas_pose_n"),
    "yolo_nas_pose_s": dataclasses.replace(_POSE_NS, name="yolo_nas_pose_s", bn_momentum=0.1),
    "yolo_nas_pose_m": dataclasses.replace(_POSE_ML, name="yolo_nas_pose_m", bn_momentum=0.1),
    "yolo_nas_pose_l": dataclasses.replace(_POSE_ML, name="yolo_nas_pose_l"),
}

# Head width multiplier of each released size (the size groups of the recipes).
_HEAD_WIDTHS = {
    "detection": {"yolo_nas_s": 0.5, "yolo_nas_m": 0.75, "yolo_nas_l": 1.0},
    "pose": {
        "yolo_nas_pose_n": 0.33, "yolo_nas_pose_s": 0.5, "yolo_nas_pose_m": 0.75,
        "yolo_nas_pose_l": 1.0,
    },
}  # fmt: skip


def list_recipes(pattern: str = "*") -> list[str]:
    """Names of the recipes matching a glob pattern, sorted."""
    return sorted(n for n in _RECIPES if fnmatch.fnmatch(n, pattern))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (``name/vN`` is accepted when N is the current version);
    KeyError names the known recipes."""
    base, _, version = name.partition("/v")
    recipe = _RECIPES.get(base)
    if recipe is None or (version and version != str(recipe.version)):
        raise KeyError(f"unknown recipe {name!r} (known: {', '.join(list_recipes())})")
    return recipe


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Set the momentum of every BatchNorm of ``model`` (PyTorch convention)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = momentum


def recipe_for(spec: ArchSpec) -> Recipe:
    """The recipe ``spec`` trains with: its preset's, else the nearest released head width's."""
    from models.presets import preset_name

    name = preset_name(spec)
    if name in _RECIPES:
        return _RECIPES[name]
    widths = _HEAD_WIDTHS[spec.task]
    nearest = min(widths, key=lambda n: (abs(widths[n] - spec.head.width_mult), widths[n]))
    return _RECIPES[nearest]


__all__ = ["Recipe", "get_recipe", "list_recipes", "recipe_for", "set_bn_momentum"]
