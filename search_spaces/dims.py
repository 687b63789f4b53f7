"""Building blocks of the YOLO-NAS search spaces: tables, channel scaling, dimensions, checks.

`search_spaces.yolo_nas` (and through it the pose space) builds its spaces from these: the tier
macro widths (`TIERS`), the per-position depth and hidden-channel choices (`DEPTHS`, `HIDDEN`),
`scale_channels` / `scale_spec` for the ``width_scale`` override, and `Dim`, one search
parameter. Nothing here imports Optuna.

Example:
    >>> scale_channels(96, 0.5), scale_choices((16, 24, 32), 0.25)
    (48, (8,))
    >>> cat_dim("kind", ("qsp", "qci")).values()
    ('qsp', 'qci')
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from models.spec import ArchSpec, DetectionHeadSpec, HeadSpec, NeckSpec, StageSpec
from search_spaces.base import SpaceError
from search_spaces.trials import match_choice, match_int

# -- the space's tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class MacroWidths:
    """Output channels fixed by a tier."""

    stem: int
    stages: tuple[int, int, int, int]  # backbone stage outputs (strides 4, 8, 16, 32)
    spp: int
    neck: tuple[int, int, int, int]  # up1, up2, down1, down2 outputs

    def scaled(self, width_scale: float) -> MacroWidths:
        def s(c: int) -> int:
            return scale_channels(c, width_scale)

        return MacroWidths(
            s(self.stem),
            tuple(s(c) for c in self.stages),  # type: ignore[arg-type]
            s(self.spp),
            tuple(s(c) for c in self.neck),  # type: ignore[arg-type]
        )

    @classmethod
    def of(cls, spec: ArchSpec) -> MacroWidths:
        b, n = spec.backbone, spec.neck
        return cls(
            b.stem,
            tuple(s.out_channels for s in b.stages),  # type: ignore[arg-type]
            b.spp,
            (n.up1.out_channels, n.up2.out_channels, n.down1.out_channels, n.down2.out_channels),
        )


TIERS: dict[str, MacroWidths] = {
    "n": MacroWidths(32, (64, 128, 256, 512), 512, (128, 64, 128, 256)),
    "sml": MacroWidths(48, (96, 192, 384, 768), 768, (192, 96, 192, 384)),
}

POSITIONS = ("stage1", "stage2", "stage3", "stage4", "up1", "up2", "down1", "down2")
KINDS = ("qsp", "qci")

# Depth (bottlenecks) range per position; the released models use 2/3/4-5/2 and 2-4 in the neck.
DEPTHS: dict[str, tuple[int, int]] = {
    "stage1": (1, 3),
    "stage2": (1, 4),
    "stage3": (1, 6),
    "stage4": (1, 3),
    "up1": (1, 4),
    "up2": (1, 4),
    "down1": (1, 4),
    "down2": (1, 4),
}

# Hidden channel choices per tier and position (increasing: ``<pos>_hidden_idx`` indexes them);
# they include every released value.
HIDDEN: dict[str, dict[str, tuple[int, ...]]] = {
    "n": {
        "stage1": (16, 24, 32, 48),
        "stage2": (32, 48, 64, 96),
        "stage3": (48, 64, 96, 128),
        "stage4": (96, 128, 192, 256),
        "up1": (32, 48, 64, 96),
        "up2": (16, 24, 32, 48),
        "down1": (32, 48, 64, 96),
        "down2": (32, 48, 64, 96),
    },
    "sml": {
        "stage1": (32, 48, 64, 96),
        "stage2": (64, 96, 128, 192),
        "stage3": (96, 128, 192, 256),
        "stage4": (192, 256, 384, 512),
        "up1": (64, 96, 128, 192),
        "up2": (48, 64, 96, 128),
        "down1": (64, 96, 128, 192),
        "down2": (64, 128, 192, 256),
    },
}

HEAD_WIDTHS = (0.33, 0.5, 0.75, 1.0)
DETECTION_INTER = (128, 256, 512)  # head base channels per level, before width_mult and scale
SPP_KERNELS = (5, 9, 13)
REG_MAX = 16


def scale_channels(channels: int, width_scale: float) -> int:
    """``channels * width_scale`` rounded to the nearest multiple of 8 (at least 8).

    A scale of 1 leaves the channels unchanged.
    """
    if width_scale == 1:
        return channels
    return max(8, int(channels * width_scale / 8 + 0.5) * 8)


def scale_spec(spec: ArchSpec, width_scale: float) -> ArchSpec:
    """``spec`` with every channel count (stem, stage outputs and hidden, SPP, neck, head base
    channels) scaled by `scale_channels`. Head width multipliers and depths are unchanged."""
    if width_scale == 1:
        return spec

    def s(c: int) -> int:
        return scale_channels(c, width_scale)

    def st(x: StageSpec) -> StageSpec:
        return dataclasses.replace(x, out_channels=s(x.out_channels), hidden=s(x.hidden))

    b, n, h = spec.backbone, spec.neck, spec.head
    backbone = dataclasses.replace(
        b, stem=s(b.stem), stages=tuple(st(x) for x in b.stages), spp=s(b.spp)
    )
    neck = NeckSpec(st(n.up1), st(n.up2), st(n.down1), st(n.down2))
    head: HeadSpec
    if isinstance(h, DetectionHeadSpec):
        head = dataclasses.replace(h, inter=tuple(s(c) for c in h.inter))
    else:
        head = dataclasses.replace(
            h,
            bbox_inter=tuple(s(c) for c in h.bbox_inter),
            pose_inter=tuple(s(c) for c in h.pose_inter),
        )
    return dataclasses.replace(spec, backbone=backbone, neck=neck, head=head)


def scale_choices(choices: Iterable[int], width_scale: float) -> tuple[int, ...]:
    """Scaled channel choices, duplicates removed, order kept."""
    out: list[int] = []
    for c in choices:
        v = scale_channels(c, width_scale)
        if v not in out:
            out.append(v)
    return tuple(out)


# -- dimensions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dim:
    """One search parameter: an integer range or a list of categorical choices.

    Every trial suggests every dimension (no conditional parameters: a sampler that models the
    intersection search space, NSGA-II or GP, then models all of them).
    """

    name: str
    kind: str  # "int" | "categorical"
    choices: tuple[Any, ...] = ()  # categorical
    low: int = 0  # int
    high: int = 0  # int

    def values(self) -> tuple[Any, ...]:
        if self.kind == "int":
            return tuple(range(self.low, self.high + 1))
        return self.choices

    def suggest(self, trial: Any) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high)
        return trial.suggest_categorical(self.name, list(self.choices))

    def match(self, value: Any) -> Any:
        """The canonical value equal to ``value``; TrialValueError if it is not a choice."""
        if self.kind == "int":
            return match_int(self.name, value, self.low, self.high)
        return match_choice(self.name, value, self.choices)

    def narrowed(self, value: Any) -> Dim:
        v = self.match(value)
        if self.kind == "int":
            return dataclasses.replace(self, low=v, high=v)
        return dataclasses.replace(self, choices=(v,))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.kind == "int":
            d.update(low=self.low, high=self.high)
        else:
            d["choices"] = list(self.choices)
        return d


def int_dim(name: str, low: int, high: int) -> Dim:
    return Dim(name, "int", low=low, high=high)


def cat_dim(name: str, choices: Sequence[Any]) -> Dim:
    return Dim(name, "categorical", choices=tuple(choices))


# -- override checks --------------------------------------------------------------------------


def _check_int(space: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SpaceError(
            f"space {space}: override {key}: expected an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def _check_scale(space: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 4:
        raise SpaceError(
            f"space {space}: override width_scale: expected a number in (0, 4], got {value!r}"
        )
    return float(value)


def _check_tiers(space: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(
            f"space {space}: override tiers: expected a non-empty list of tiers from "
            f"{list(TIERS)}, got {value!r}"
        )
    out: list[str] = []
    for t in value:
        if t not in TIERS:
            raise SpaceError(
                f"space {space}: override tiers: unknown tier {t!r} (known: {list(TIERS)})"
            )
        if t not in out:
            out.append(t)
    return tuple(out)


__all__ = [
    "DEPTHS",
    "DETECTION_INTER",
    "HEAD_WIDTHS",
    "HIDDEN",
    "KINDS",
    "POSITIONS",
    "REG_MAX",
    "SPP_KERNELS",
    "TIERS",
    "Dim",
    "MacroWidths",
    "cat_dim",
    "int_dim",
    "scale_channels",
    "scale_choices",
    "scale_spec",
]
