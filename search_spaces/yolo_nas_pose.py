"""The ``yolo_nas_pose`` search space: the detection space's backbone and neck plus the pose head.

Head dimensions, suggested after the backbone and neck (see `search_spaces.yolo_nas`):

- ``head_width``: width multiplier (0.33, 0.5, 0.75, 1.0);
- ``head_shared_stem``: one 1x1 stem for the box and pose paths (True) or one each (False);
- per level ``p3``, ``p4``, ``p5`` (strides 8, 16, 32): ``head_bbox_blocks_<l>`` (3x3
  Conv-BN-ReLU blocks on each box branch, 1..3), ``head_pose_blocks_<l>`` (blocks on the pose
  path, 1..4), ``head_bbox_inter_<l>`` and ``head_pose_inter_<l>`` (base channels of each path,
  before the width multiplier).

The released YOLO-NAS-Pose N/S/M/L models (`models.presets`: separate stems, box path of
128/256/512 base channels, pose path of 2/2/3 blocks of 128/512/512) are exact points.

Example:
    >>> from search_spaces import get_space
    >>> from models.presets import get_preset
    >>> space = get_space("yolo_nas_pose")
    >>> space.replay(space.reference_points()["yolo_nas_pose_n"]) == get_preset("yolo_nas_pose_n")
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from models.presets import COCO_KEYPOINTS, get_preset
from models.spec import ArchSpec, BackboneSpec, HeadSpec, NeckSpec, PoseHeadSpec
from search_spaces.base import SpaceError
from search_spaces.registry import register_space
from search_spaces.yolo_nas import (
    HEAD_WIDTHS,
    REG_MAX,
    Dim,
    YoloNasSpace,
    _check_int,
    cat_dim,
    int_dim,
    scale_choices,
    scale_spec,
)

LEVELS = ("p3", "p4", "p5")
BBOX_BLOCKS = (1, 3)  # range of 3x3 blocks per box branch
POSE_BLOCKS = (1, 4)  # range of 3x3 blocks on the pose path
# Base channel choices per level (strides 8, 16, 32); they include the released 128/256/512 (box)
# and 128/512/512 (pose).
BBOX_INTER = ((64, 96, 128, 192), (128, 192, 256, 384), (256, 384, 512, 768))
POSE_INTER = ((64, 96, 128, 192), (192, 256, 384, 512), (256, 384, 512, 768))


@register_space("yolo_nas_pose")
class YoloNasPoseSpace(YoloNasSpace):
    """YOLO-NAS-Pose: the `YoloNasSpace` backbone/neck dimensions plus a searched pose head.

    Overrides: those of `YoloNasSpace`, plus ``num_keypoints`` (int, default 17);
    ``num_classes`` is accepted only as 1 (a pose model has one class). ``max_depth`` caps CSP
    depths only, not head blocks (pin those with ``fixed``).
    """

    name = "yolo_nas_pose"
    task = "pose"
    REFERENCES = ("yolo_nas_pose_n", "yolo_nas_pose_s", "yolo_nas_pose_m", "yolo_nas_pose_l")
    OVERRIDES = ("width_scale", "num_keypoints", "num_classes", "tiers", "max_depth", "fixed")

    def _parse_task_overrides(self, overrides: Mapping[str, Any]) -> None:
        if "num_classes" in overrides and overrides["num_classes"] != 1:
            raise SpaceError(
                f"space {self.name}: override num_classes: a pose model has 1 class, got "
                f"{overrides['num_classes']!r}"
            )
        self.num_keypoints = _check_int(
            self.name, "num_keypoints", overrides.get("num_keypoints", COCO_KEYPOINTS), 1
        )

    def _task_overrides(self) -> dict[str, Any]:
        return {"num_keypoints": self.num_keypoints}

    def _head_dims(self) -> list[Dim]:
        dims = [cat_dim("head_width", HEAD_WIDTHS), cat_dim("head_shared_stem", (False, True))]
        for i, lvl in enumerate(LEVELS):
            dims.append(int_dim(f"head_bbox_blocks_{lvl}", *BBOX_BLOCKS))
            dims.append(int_dim(f"head_pose_blocks_{lvl}", *POSE_BLOCKS))
            dims.append(
                cat_dim(f"head_bbox_inter_{lvl}", scale_choices(BBOX_INTER[i], self.width_scale))
            )
            dims.append(
                cat_dim(f"head_pose_inter_{lvl}", scale_choices(POSE_INTER[i], self.width_scale))
            )
        return dims

    def _sample_head(self, trial: Any) -> HeadSpec:
        d = self.dims
        width = d["head_width"].suggest(trial)
        shared = d["head_shared_stem"].suggest(trial)
        per_level: dict[str, list[int]] = {
            "bbox_blocks": [],
            "pose_blocks": [],
            "bbox_inter": [],
            "pose_inter": [],
        }
        for lvl in LEVELS:
            for key in per_level:
                per_level[key].append(d[f"head_{key}_{lvl}"].suggest(trial))
        return PoseHeadSpec(
            width_mult=width,
            bbox_inter=tuple(per_level["bbox_inter"]),
            pose_inter=tuple(per_level["pose_inter"]),
            bbox_blocks=tuple(per_level["bbox_blocks"]),
            pose_blocks=tuple(per_level["pose_blocks"]),
            shared_stem=shared,
            reg_max=REG_MAX,
        )

    def _head_params(self, head: HeadSpec) -> dict[str, Any] | None:
        if not isinstance(head, PoseHeadSpec):
            return None
        params: dict[str, Any] = {
            "head_width": head.width_mult,
            "head_shared_stem": head.shared_stem,
        }
        for i, lvl in enumerate(LEVELS):
            params[f"head_bbox_blocks_{lvl}"] = head.bbox_blocks[i]
            params[f"head_pose_blocks_{lvl}"] = head.pose_blocks[i]
            params[f"head_bbox_inter_{lvl}"] = head.bbox_inter[i]
            params[f"head_pose_inter_{lvl}"] = head.pose_inter[i]
        return params

    def _make_arch(self, backbone: BackboneSpec, neck: NeckSpec, head: HeadSpec) -> ArchSpec:
        return ArchSpec(
            self.task, backbone, neck, head, num_classes=1, num_keypoints=self.num_keypoints
        )

    def _reference_spec(self, name: str) -> ArchSpec:
        spec = dataclasses.replace(get_preset(name), num_keypoints=self.num_keypoints)
        return scale_spec(spec, self.width_scale)


__all__ = ["BBOX_INTER", "LEVELS", "POSE_INTER", "YoloNasPoseSpace"]
