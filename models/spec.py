"""Architecture as data: the ArchSpec tree of frozen dataclasses.

An ArchSpec describes a YOLO-NAS-family network completely; `models.build_model(spec)` turns it
into an ``nn.Module`` and nothing else is needed. Specs are hashable, comparable and carry a
content hash (`arch_id`) over their canonical form (`canonical_dict`): every field of the
``opennac-arch/1`` layout (`V1_FIELDS`), plus any field added later only when it differs from its
default. Adding a defaulted field therefore moves no id; the golden ids of the presets are pinned
in ``tests/models/golden_arch_ids.json``.

Example:
    >>> from models.spec import ArchSpec
    >>> from models.presets import get_preset
    >>> spec = get_preset("yolo_nas_s")
    >>> ArchSpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

BLOCK_KINDS = ("qsp", "qci")
TASKS = ("detection", "pose")
NUM_LEVELS = 3  # heads at strides 8, 16, 32
NUM_STAGES = 4  # backbone stages at strides 4, 8, 16, 32


class SpecError(ValueError):
    """An invalid architecture: the message names the field and the allowed values."""


def round_up_8(channels: int, mult: float) -> int:
    """Channel rounding used by YOLO-NAS heads: ceil(int(c * mult) / 8) * 8."""
    return int(math.ceil(int(channels * mult) / 8) * 8)


def _check_int(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{owner}.{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise SpecError(f"{owner}.{name}: expected an integer >= {minimum}, got {value}")


def _check_levels(owner: str, name: str, values: Any, minimum: int) -> None:
    if not isinstance(values, tuple) or len(values) != NUM_LEVELS:
        raise SpecError(
            f"{owner}.{name}: expected {NUM_LEVELS} values (strides 8/16/32), got {values!r}"
        )
    for i, v in enumerate(values):
        _check_int(owner, f"{name}[{i}]", v, minimum)


@dataclass(frozen=True)
class StageSpec:
    """One CSP position (a backbone stage or a neck stage).

    ``qsp``: path 1's last output is concatenated with path 2 (2 * hidden channels).
    ``qci``: path 1's input and every bottleneck output are concatenated with path 2
    (hidden * (2 + depth) channels). A 1x1 ConvBNAct maps the concat to ``out_channels``.
    """

    out_channels: int  # channels leaving the position
    depth: int  # bottlenecks on path 1
    hidden: int  # channels of each of the two paths
    kind: str = "qsp"  # "qsp" | "qci"

    def __post_init__(self) -> None:
        _check_int("stage", "out_channels", self.out_channels, 1)
        _check_int("stage", "depth", self.depth, 1)
        _check_int("stage", "hidden", self.hidden, 1)
        if self.kind not in BLOCK_KINDS:
            raise SpecError(f"stage.kind: expected one of {BLOCK_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class BackboneSpec:
    """Stem + four stages (strides 4, 8, 16, 32) + SPP after the last stage."""

    stem: int  # stem output channels (one QARepVGG block, stride 2)
    stages: tuple[StageSpec, ...]  # exactly four
    spp: int  # SPP output channels (C5)
    spp_kernels: tuple[int, ...] = (5, 9, 13)

    def __post_init__(self) -> None:
        _check_int("backbone", "stem", self.stem, 1)
        _check_int("backbone", "spp", self.spp, 1)
        if not isinstance(self.stages, tuple) or len(self.stages) != NUM_STAGES:
            raise SpecError(f"backbone.stages: expected {NUM_STAGES} stages, got {self.stages!r}")
        for i, s in enumerate(self.stages):
            if not isinstance(s, StageSpec):
                raise SpecError(f"backbone.stages[{i}]: expected a StageSpec, got {s!r}")
        if not self.spp_kernels or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0
            for k in self.spp_kernels
        ):
            raise SpecError(
                f"backbone.spp_kernels: expected odd positive integers, got {self.spp_kernels!r}"
            )

    @property
    def feature_channels(self) -> tuple[int, int, int, int]:
        """Channels of C2, C3, C4, C5 (C5 is the SPP output)."""
        s = self.stages
        return (s[0].out_channels, s[1].out_channels, s[2].out_channels, self.spp)


@dataclass(frozen=True)
class NeckSpec:
    """PAN neck with C2: two up stages then two down stages; outputs P3, P4, P5."""

    up1: StageSpec
    up2: StageSpec
    down1: StageSpec
    down2: StageSpec

    def __post_init__(self) -> None:
        for name in ("up1", "up2", "down1", "down2"):
            if not isinstance(getattr(self, name), StageSpec):
                raise SpecError(f"neck.{name}: expected a StageSpec")

    @property
    def out_channels(self) -> tuple[int, int, int]:
        """Channels of P3 (stride 8), P4 (16), P5 (32)."""
        return (self.up2.out_channels, self.down1.out_channels, self.down2.out_channels)


@dataclass(frozen=True)
class DetectionHeadSpec:
    """DFL detection head, one per stride 8/16/32.

    Per level: 1x1 stem to ``round_up_8(inter[i], width_mult)``, a 3x3 ConvBNAct on each of the
    cls and reg branches, cls 1x1 -> num_classes, reg 1x1 -> 4 * (reg_max + 1).
    """

    width_mult: float
    inter: tuple[int, ...] = (128, 256, 512)  # base channels per level, before width_mult
    reg_max: int = 16

    def __post_init__(self) -> None:
        _check_width("head", self.width_mult)
        _as_float(self, "width_mult")
        _check_levels("head", "inter", self.inter, 1)
        _check_int("head", "reg_max", self.reg_max, 1)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(round_up_8(c, self.width_mult) for c in self.inter)


@dataclass(frozen=True)
class PoseHeadSpec:
    """Pose head, one per stride 8/16/32: a bbox path (cls + DFL reg) and a pose path.

    Channels per level are ``round_up_8(base, width_mult)``. ``bbox_blocks[i]`` is the number of
    3x3 ConvBNAct on each of the cls and reg branches; ``pose_blocks[i]`` the number on the pose
    path. cls predicts 1 + num_keypoints channels (person score + keypoint visibility logits);
    the pose path predicts 2 * num_keypoints offsets.
    """

    width_mult: float
    bbox_inter: tuple[int, ...] = (128, 256, 512)
    pose_inter: tuple[int, ...] = (128, 512, 512)
    bbox_blocks: tuple[int, ...] = (1, 1, 1)
    pose_blocks: tuple[int, ...] = (2, 2, 3)
    shared_stem: bool = False  # one 1x1 stem for both paths instead of one each
    reg_max: int = 16

    def __post_init__(self) -> None:
        _check_width("head", self.width_mult)
        _as_float(self, "width_mult")
        _check_levels("head", "bbox_inter", self.bbox_inter, 1)
        _check_levels("head", "pose_inter", self.pose_inter, 1)
        _check_levels("head", "bbox_blocks", self.bbox_blocks, 1)
        _check_levels("head", "pose_blocks", self.pose_blocks, 1)
        if not isinstance(self.shared_stem, bool):
            raise SpecError(f"head.shared_stem: expected true or false, got {self.shared_stem!r}")
        _check_int("head", "reg_max", self.reg_max, 1)

    @property
    def bbox_channels(self) -> tuple[int, ...]:
        return tuple(round_up_8(c, self.width_mult) for c in self.bbox_inter)

    @property
    def pose_channels(self) -> tuple[int, ...]:
        return tuple(round_up_8(c, self.width_mult) for c in self.pose_inter)


def _check_width(owner: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 4:
        raise SpecError(f"{owner}.width_mult: expected a number in (0, 4], got {value!r}")


def _as_float(obj: Any, name: str) -> None:
    """Store a float field as float (1 and 1.0 are one architecture, so one arch_id)."""
    object.__setattr__(obj, name, float(getattr(obj, name)))


HeadSpec = DetectionHeadSpec | PoseHeadSpec


@dataclass(frozen=True)
class ArchSpec:
    """A complete YOLO-NAS-family architecture (no weights, no name).

    ``task`` decides the head type: ``detection`` -> DetectionHeadSpec, ``pose`` -> PoseHeadSpec
    (num_classes must be 1, num_keypoints >= 1).
    """

    task: str
    backbone: BackboneSpec
    neck: NeckSpec
    head: HeadSpec
    num_classes: int = 80
    num_keypoints: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SpecError(f"task: expected one of {TASKS}, got {self.task!r}")
        _check_int("arch", "num_classes", self.num_classes, 1)
        _check_int("arch", "num_keypoints", self.num_keypoints, 0)
        if self.task == "detection":
            if not isinstance(self.head, DetectionHeadSpec):
                raise SpecError("head: a detection task needs a DetectionHeadSpec")
            if self.num_keypoints != 0:
                raise SpecError("num_keypoints: expected 0 for task 'detection'")
        else:
            if not isinstance(self.head, PoseHeadSpec):
                raise SpecError("head: a pose task needs a PoseHeadSpec")
            if self.num_keypoints < 1:
                raise SpecError("num_keypoints: expected >= 1 for task 'pose'")
            if self.num_classes != 1:
                raise SpecError("num_classes: expected 1 for task 'pose' (one person class)")

    # -- dictionary form -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON/YAML-ready dictionary (tuples become lists)."""
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Any, where: str = "architecture") -> ArchSpec:
        """Strict inverse of `to_dict`: unknown keys, missing keys and wrong types raise
        SpecError naming the key path (prefixed by ``where``)."""
        if not isinstance(data, dict):
            raise SpecError(f"{where}: expected a mapping, got {type(data).__name__}")
        task = data.get("task")
        head_cls = PoseHeadSpec if task == "pose" else DetectionHeadSpec
        return _from_plain(cls, data, where, {"head": head_cls})

    def canonical_dict(self) -> dict[str, Any]:
        """The architecture's meaning as a plain dictionary: `to_dict()` without the fields
        added after ``opennac-arch/1`` that sit at their default (see `V1_FIELDS`)."""
        return _canonical(self)

    @property
    def arch_id(self) -> str:
        """sha256 (hex) of the canonical JSON of `canonical_dict()`."""
        return compute_arch_id(self.canonical_dict())

    @property
    def short_id(self) -> str:
        return self.arch_id[:12]


# The fields of the opennac-arch/1 layout, the one every pinned id was computed over. They are
# always hashed, at any value (so today's ids never move). Do NOT add a new field here: a field
# added later is hashed only when it differs from its default, and that default must keep
# meaning "as before the field existed" forever (changing it would change the architecture that
# the ids of older files name). Renaming or removing a field here needs a format bump with an
# upgrade step in models/archfile.py.
V1_FIELDS: dict[type, frozenset[str]] = {
    StageSpec: frozenset({"out_channels", "depth", "hidden", "kind"}),
    BackboneSpec: frozenset({"stem", "stages", "spp", "spp_kernels"}),
    NeckSpec: frozenset({"up1", "up2", "down1", "down2"}),
    DetectionHeadSpec: frozenset({"width_mult", "inter", "reg_max"}),
    PoseHeadSpec: frozenset({
        "width_mult", "bbox_inter", "pose_inter", "bbox_blocks", "pose_blocks", "shared_stem",
        "reg_max",
    }),  # fmt: skip
    ArchSpec: frozenset({"task", "backbone", "neck", "head", "num_classes", "num_keypoints"}),
}


def _v1_fields(cls: type) -> frozenset[str]:
    for base in cls.__mro__:  # a subclass (a later layout) inherits its base's v1 fields
        if base in V1_FIELDS:
            return V1_FIELDS[base]
    return frozenset()


def _at_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return False


def _canonical(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        keep = _v1_fields(type(obj))
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in keep or not _at_default(f, value):
                out[f.name] = _canonical(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    return obj


def canonical_json(arch: dict[str, Any]) -> str:
    """Key-sorted, compact JSON of an architecture dictionary (the bytes that are hashed)."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def compute_arch_id(arch: dict[str, Any]) -> str:
    """sha256 (hex) of `canonical_json(arch)`; for a spec use ``spec.arch_id``, which hashes
    its `canonical_dict`."""
    return hashlib.sha256(canonical_json(arch).encode("utf-8")).hexdigest()


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _from_plain(cls: type, data: Any, where: str, overrides: dict[str, type]) -> Any:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(f"{key}: missing required key")
            continue
        tp = overrides.get(name, hints[name])
        kwargs[name] = _convert(tp, data[name], key)
    try:
        return cls(**kwargs)
    except SpecError as exc:
        # Re-anchor the field path at `where` (messages start with "<owner>.<field>").
        msg = str(exc)
        head, _, rest = msg.partition(".")
        if rest and " " not in head:
            raise SpecError(f"{where}.{rest}") from None
        raise SpecError(f"{where}: {msg}") from None


def _convert(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _from_plain(tp, value, key, {})
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{key}: expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Union, types.UnionType):
        raise SpecError(f"{key}: cannot decide the type")  # pragma: no cover - head handled
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise SpecError(f"{key}: expected {_TYPE_NAMES[tp]}, got {value!r}")
        return value
    return value  # pragma: no cover


__all__ = [
    "ArchSpec",
    "BackboneSpec",
    "BLOCK_KINDS",
    "DetectionHeadSpec",
    "HeadSpec",
    "NeckSpec",
    "PoseHeadSpec",
    "SpecError",
    "StageSpec",
    "TASKS",
    "V1_FIELDS",
    "canonical_json",
    "compute_arch_id",
    "round_up_8",
]
