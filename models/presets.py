"""The released YOLO-NAS models (and tiny test models) as specs.

Numbers follow ``shared/reference/yolo-nas-architecture.md`` (super-gradients 3.7.1 facts).

Example:
    >>> from models.presets import get_preset, list_presets
    >>> get_preset("yolo_nas_s").backbone.stem
    48
    >>> list_presets("yolo_nas_pose_*")[:2]
    ['yolo_nas_pose_l', 'yolo_nas_pose_m']
"""

from __future__ import annotations

import fnmatch

from models.spec import (
    ArchSpec,
    BackboneSpec,
    DetectionHeadSpec,
    NeckSpec,
    PoseHeadSpec,
    StageSpec,
)

COCO_KEYPOINTS = 17


def _st(out: int, depth: int, hidden: int, qci: bool = False) -> StageSpec:
    return StageSpec(out_channels=out, depth=depth, hidden=hidden, kind="qci" if qci else "qsp")


# Backbones: stem, stage1..4 (out/depth/hidden/intermediate concat), SPP out.
_BACKBONES = {
    "s": BackboneSpec(
        48, (_st(96, 2, 32), _st(192, 3, 64), _st(384, 5, 96), _st(768, 2, 192)), 768
    ),
    "m": BackboneSpec(
        48,
        (_st(96, 2, 64, True), _st(192, 3, 128, True), _st(384, 5, 256, True), _st(768, 2, 384)),
        768,
    ),
    "l": BackboneSpec(
        48,
        (
            _st(96, 2, 96, True),
            _st(192, 3, 128, True),
            _st(384, 5, 256, True),
            _st(768, 2, 512, True),
        ),
        768,
    ),
    "pose_n": BackboneSpec(
        32, (_st(64, 2, 32), _st(128, 3, 48), _st(256, 4, 64), _st(512, 2, 128)), 512
    ),
    "tiny": BackboneSpec(16, (_st(16, 1, 8), _st(32, 1, 16), _st(64, 1, 16), _st(96, 1, 32)), 96),
}

# Necks: up1, up2, down1, down2 (out/depth/hidden), all last-output concat.
_NECKS = {
    "s": NeckSpec(_st(192, 2, 64), _st(96, 2, 48), _st(192, 2, 64), _st(384, 2, 64)),
    "m": NeckSpec(_st(192, 2, 192), _st(96, 3, 64), _st(192, 2, 192), _st(384, 3, 256)),
    "l": NeckSpec(_st(192, 4, 128), _st(96, 4, 128), _st(192, 4, 128), _st(384, 4, 256)),
    "pose_n": NeckSpec(_st(128, 2, 48), _st(64, 2, 32), _st(128, 2, 48), _st(256, 2, 48)),
    "tiny": NeckSpec(_st(48, 1, 16), _st(32, 1, 16), _st(48, 1, 16), _st(96, 1, 24)),
}


def _detection(size: str, width: float, num_classes: int = 80, **head: object) -> ArchSpec:
    return ArchSpec(
        task="detection",
        backbone=_BACKBONES[size],
        neck=_NECKS[size],
        head=DetectionHeadSpec(width_mult=width, **head),  # type: ignore[arg-type]
        num_classes=num_classes,
    )


def _pose(size: str, width: float, **head: object) -> ArchSpec:
    return ArchSpec(
        task="pose",
        backbone=_BACKBONES[size],
        neck=_NECKS[size],
        head=PoseHeadSpec(width_mult=width, **head),  # type: ignore[arg-type]
        num_classes=1,
        num_keypoints=COCO_KEYPOINTS,
    )


_PRESETS: dict[str, ArchSpec] = {
    "yolo_nas_s": _detection("s", 0.5),
    "yolo_nas_m": _detection("m", 0.75),
    "yolo_nas_l": _detection("l", 1.0),
    "yolo_nas_pose_n": _pose("pose_n", 0.33),
    "yolo_nas_pose_s": _pose("s", 0.5),
    "yolo_nas_pose_m": _pose("m", 0.75),
    "yolo_nas_pose_l": _pose("l", 1.0),
    # Tiny models (a few hundred thousand parameters) for tests and CPU demos.
    # Head widths 32/32/64 keep them near 0.4M parameters.
    "yolo_nas_tiny": _detection("tiny", 0.25, num_classes=4, inter=(128, 128, 256)),
    "yolo_nas_pose_tiny": _pose(
        "tiny",
        0.25,
        bbox_inter=(128, 128, 256),
        pose_inter=(128, 128, 256),
        bbox_blocks=(1, 1, 1),
        pose_blocks=(1, 1, 1),
    ),
}

RELEASED = tuple(n for n in _PRESETS if not n.endswith("_tiny"))


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the presets matching a glob pattern, sorted."""
    return sorted(n for n in _PRESETS if fnmatch.fnmatch(n, pattern))


def get_preset(name: str) -> ArchSpec:
    """The spec of a preset; KeyError names the known presets."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise KeyError(
            f"unknown preset {name!r} (known: {', '.join(list_presets())})"
        ) from None


def preset_name(spec: ArchSpec) -> str | None:
    """The preset whose spec equals ``spec``, if any."""
    for name, preset in _PRESETS.items():
        if preset == spec:
            return name
    return None
