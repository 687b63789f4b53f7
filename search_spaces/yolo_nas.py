"""The ``yolo_nas`` detection search space (and the machinery the pose space shares).

Dimensions, in the order a trial suggests them:

- ``tier``: macro widths (stem, stage, SPP and neck output channels). ``sml`` = the widths shared
  by the released S, M and L models (stem 48, stages 96/192/384/768, SPP 768, neck
  192/96/192/384); ``n`` = the narrower Pose-N widths (32, 64/128/256/512, 512, 128/64/128/256).
- for each CSP position (backbone ``stage1..stage4``, neck ``up1, up2, down1, down2``):
  ``<pos>_kind`` (``qsp`` | ``qci``), ``<pos>_depth`` (bottlenecks), and ``<pos>_hidden_idx``
  (hidden channels as an index into the tier's increasing choices, `HIDDEN`: the same integer
  parameter in every trial whatever its tier, so a sampler that models the intersection search
  space, NSGA-II or GP, models it; see `hidden_channels`).
- ``head_width``: the head's width multiplier (0.33, 0.5, 0.75, 1.0).

Every trial suggests every parameter (no conditional names). Runs made before this encoding
stored ``<pos>_hidden_t_<tier>`` (channels, one name per tier): `YoloNasSpace.replay` reads
those too (`is_legacy`), and ``space.with_encoding("tier")`` samples that way (an old study
resumed, `nas.search`).

Every released model is an exact point (`reference_points`). Overrides (``get_space(name,
**overrides)``): ``width_scale``, ``num_classes``, ``tiers``, ``max_depth``, ``fixed``; see
`YoloNasSpace`. The tables, channel scaling and `Dim` live in `search_spaces.dims` and are
re-exported here.

Example:
    >>> from search_spaces import get_space
    >>> from models.presets import get_preset
    >>> space = get_space("yolo_nas")
    >>> params = space.reference_points()["yolo_nas_m"]
    >>> space.replay(params) == get_preset("yolo_nas_m")
    True
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from models.presets import get_preset
from models.spec import ArchSpec, BackboneSpec, DetectionHeadSpec, HeadSpec, NeckSpec, StageSpec
from search_spaces import dims
from search_spaces.base import SearchSpace, SpaceError
from search_spaces.dims import (
    DEPTHS,
    DETECTION_INTER,
    HEAD_WIDTHS,
    HIDDEN,
    KINDS,
    POSITIONS,
    REG_MAX,
    SPP_KERNELS,
    TIERS,
    Dim,
    MacroWidths,
    _check_int,
    _check_scale,
    _check_tiers,
    cat_dim,
    int_dim,
    scale_channels,
    scale_choices,
    scale_spec,
)
from search_spaces.registry import register_space
from search_spaces.trials import TrialValueError, match_choice

ENCODINGS = ("index", "tier")
LEGACY_HIDDEN = re.compile(r"(?P<pos>\w+?)_hidden_t_(?P<tier>\w+)")


def is_legacy(params: Mapping[str, Any]) -> bool:
    """True when ``params`` use the old per-tier names ``<pos>_hidden_t_<tier>``."""
    return any(LEGACY_HIDDEN.fullmatch(str(k)) for k in params)


# -- the space --------------------------------------------------------------------------------


@register_space("yolo_nas")
class YoloNasSpace(SearchSpace):
    """YOLO-NAS detection: tier, kind/depth/hidden at 8 CSP positions, head width.

    Overrides:

    - ``width_scale`` (float in (0, 4], default 1): every channel count (tier widths, hidden
      choices, head base channels) is multiplied and rounded to a multiple of 8 (at least 8).
      The reference points are then the released models scaled the same way (`scale_spec`).
    - ``num_classes`` (int, default 80): classes of the detection head.
    - ``tiers`` (list from ``["n", "sml"]``): keep only these tiers.
    - ``max_depth`` (int >= 1): cap every CSP position's depth range at this value.
    - ``fixed`` (mapping param -> value): pin parameters to one value (still suggested, with a
      single choice, so trial params stay complete). An old ``<pos>_hidden_t_<tier>: channels``
      is read as the matching ``<pos>_hidden_idx`` when ``tier`` is the space's only tier.

    An override given as None means its default. ``space.overrides`` holds the validated values.

    Reference points outside a narrowed space (e.g. ``max_depth`` below a released depth) are
    left out of `reference_points`.
    """

    name = "yolo_nas"
    task = "detection"
    REFERENCES: tuple[str, ...] = ("yolo_nas_s", "yolo_nas_m", "yolo_nas_l")
    OVERRIDES: tuple[str, ...] = ("width_scale", "num_classes", "tiers", "max_depth", "fixed")

    def __init__(self, **overrides: Any) -> None:
        super().__init__()
        unknown = [k for k in overrides if k not in self.OVERRIDES]
        if unknown:
            raise SpaceError(
                f"space {self.name}: unknown override {unknown[0]!r} "
                f"(allowed: {', '.join(self.OVERRIDES)})"
            )
        overrides = {k: v for k, v in overrides.items() if v is not None}  # None = default
        self._parse_task_overrides(overrides)
        self.width_scale = _check_scale(self.name, overrides.get("width_scale", 1.0))
        tiers = _check_tiers(self.name, overrides.get("tiers", list(TIERS)))
        self.widths = {t: TIERS[t].scaled(self.width_scale) for t in tiers}
        if len(set(self.widths.values())) < len(self.widths):
            raise SpaceError(
                f"space {self.name}: override width_scale: {self.width_scale} makes tiers "
                f"{list(self.widths)} identical; use a larger width_scale or one tier"
            )
        max_depth = overrides.get("max_depth")
        if max_depth is not None:
            max_depth = _check_int(self.name, "max_depth", max_depth, 1)
        self.encoding = "index"  # or "tier": the names of runs made before (`with_encoding`)
        # hidden channel choices per tier and position: scaled, duplicates merged, increasing
        self.hidden: dict[str, dict[str, tuple[int, ...]]] = {
            t: {pos: scale_choices(HIDDEN[t][pos], self.width_scale) for pos in POSITIONS}
            for t in tiers
        }
        self.dims: dict[str, Dim] = {d.name: d for d in self._all_dims(tiers, max_depth)}
        fixed = self._legacy_fixed(overrides.get("fixed") or {}, tiers)
        self._apply_fixed(fixed)
        kept = self.dims["tier"].choices  # `fixed: {tier: ...}` may have narrowed the tiers
        self.widths = {t: w for t, w in self.widths.items() if t in kept}
        self.hidden = {t: h for t, h in self.hidden.items() if t in kept}
        self.overrides = {
            "width_scale": self.width_scale,
            **self._task_overrides(),
            "tiers": list(tiers),
            "max_depth": max_depth,
            "fixed": {k: self.dims[k].values()[0] for k in fixed},
        }
        self.tiers: tuple[str, ...] = tuple(self.dims["tier"].choices)

    # -- task hooks (the pose space overrides these) ------------------------------------------
    def _parse_task_overrides(self, overrides: Mapping[str, Any]) -> None:
        num_classes = overrides.get("num_classes", 80)
        self.num_classes = _check_int(self.name, "num_classes", num_classes, 1)

    def _task_overrides(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}

    def _head_dims(self) -> list[Dim]:
        return [cat_dim("head_width", HEAD_WIDTHS)]

    def _sample_head(self, trial: Any) -> HeadSpec:
        width = self.dims["head_width"].suggest(trial)
        inter = tuple(scale_channels(c, self.width_scale) for c in DETECTION_INTER)
        return DetectionHeadSpec(width_mult=width, inter=inter, reg_max=REG_MAX)

    def _head_params(self, head: HeadSpec) -> dict[str, Any] | None:
        if not isinstance(head, DetectionHeadSpec):
            return None
        return {"head_width": head.width_mult}

    def _make_arch(self, backbone: BackboneSpec, neck: NeckSpec, head: HeadSpec) -> ArchSpec:
        return ArchSpec(self.task, backbone, neck, head, num_classes=self.num_classes)

    def _reference_spec(self, name: str) -> ArchSpec:
        spec = dataclasses.replace(get_preset(name), num_classes=self.num_classes)
        return scale_spec(spec, self.width_scale)

    # -- construction -------------------------------------------------------------------------
    def _all_dims(self, tiers: Sequence[str], max_depth: int | None) -> list[Dim]:
        dims = [cat_dim("tier", tiers)]
        for pos in POSITIONS:
            low, high = DEPTHS[pos]
            if max_depth is not None:
                low, high = min(low, max_depth), min(high, max_depth)
            dims.append(cat_dim(f"{pos}_kind", KINDS))
            dims.append(int_dim(f"{pos}_depth", low, high))
            most = max(len(self.hidden[t][pos]) for t in tiers)
            dims.append(int_dim(f"{pos}_hidden_idx", 0, most - 1))
        dims.extend(self._head_dims())
        return dims

    def _legacy_fixed(self, fixed: Any, tiers: Sequence[str]) -> Any:
        """``fixed`` with old ``<pos>_hidden_t_<tier>: channels`` keys read as
        ``<pos>_hidden_idx`` (only when that tier is the space's one tier: with two tiers an
        index pins both)."""
        if not isinstance(fixed, Mapping):
            return fixed
        out: dict[str, Any] = {}
        for key, value in fixed.items():
            m = LEGACY_HIDDEN.fullmatch(str(key))
            if m is None or m["pos"] not in POSITIONS:
                out[key] = value
                continue
            pos, tier = m["pos"], m["tier"]
            only = fixed.get("tier", tiers[0] if len(tiers) == 1 else None)
            if tier not in tiers or only != tier:
                raise SpaceError(
                    f"space {self.name}: override fixed.{key}: a per-tier name of the old "
                    f"encoding, usable only when tier {tier!r} is the one tier; pin "
                    f"{pos}_hidden_idx (an index into each tier's choices, see describe) "
                    f"and tier instead"
                )
            try:
                choice = match_choice(str(key), value, self.hidden[tier][pos])
            except TrialValueError as exc:
                raise SpaceError(f"space {self.name}: override fixed.{key}: {exc}") from None
            out[f"{pos}_hidden_idx"] = self.hidden[tier][pos].index(choice)
        return out

    def _apply_fixed(self, fixed: Any) -> None:
        if not isinstance(fixed, Mapping):
            raise SpaceError(
                f"space {self.name}: override fixed: expected a mapping of parameter -> value, "
                f"got {fixed!r}"
            )
        for key, value in fixed.items():
            if key not in self.dims:
                close = difflib.get_close_matches(str(key), list(self.dims), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SpaceError(
                    f"space {self.name}: override fixed.{key}: unknown parameter{hint}; "
                    f"parameters: {', '.join(self.dims)}"
                )
            dim = self.dims[key]
            try:
                self.dims[key] = dim.narrowed(value)
            except TrialValueError as exc:
                raise SpaceError(f"space {self.name}: override fixed.{key}: {exc}") from None

    # -- the define-by-run function -----------------------------------------------------------
    def sample(self, trial: Any) -> ArchSpec:
        """Suggest the parameters on ``trial`` (tier first) and build the ArchSpec."""
        tier = self.dims["tier"].suggest(trial)
        widths = self.widths[tier]
        outs = widths.stages + widths.neck
        stages = []
        for pos, out in zip(POSITIONS, outs, strict=True):
            kind = self.dims[f"{pos}_kind"].suggest(trial)
            depth = self.dims[f"{pos}_depth"].suggest(trial)
            hidden = self._suggest_hidden(trial, pos, tier)
            stages.append(StageSpec(out_channels=out, depth=depth, hidden=hidden, kind=kind))
        backbone = BackboneSpec(widths.stem, tuple(stages[:4]), widths.spp, SPP_KERNELS)
        neck = NeckSpec(*stages[4:])
        return self._make_arch(backbone, neck, self._sample_head(trial))

    def _suggest_hidden(self, trial: Any, pos: str, tier: str) -> int:
        if self.encoding == "tier":
            return self._legacy_dim(pos, tier).suggest(trial)
        return self.hidden_channels(tier, pos, self.dims[f"{pos}_hidden_idx"].suggest(trial))

    def hidden_channels(self, tier: str, pos: str, index: int) -> int:
        """Hidden channels of ``<pos>_hidden_idx = index`` in ``tier``: the index-th of the
        tier's increasing choices, the last one for an index past a tier with fewer choices
        (scaled choices that round to the same channels are merged)."""
        choices = self.hidden[tier][pos]
        return choices[min(index, len(choices) - 1)]

    def _hidden_values(self, tier: str, pos: str) -> tuple[int, ...]:
        """Distinct channels the (possibly pinned) index dimension reaches in ``tier``."""
        out: list[int] = []
        for i in self.dims[f"{pos}_hidden_idx"].values():
            c = self.hidden_channels(tier, pos, i)
            if c not in out:
                out.append(c)
        return tuple(out)

    def _legacy_dim(self, pos: str, tier: str) -> Dim:
        return cat_dim(f"{pos}_hidden_t_{tier}", self._hidden_values(tier, pos))

    # -- encodings ------------------------------------------------------------------------------
    def with_encoding(self, encoding: str) -> YoloNasSpace:
        """This space sampling with ``encoding``: ``index`` (the default) or ``tier`` (the
        ``<pos>_hidden_t_<tier>`` names of runs made before; same architectures, same ids)."""
        if encoding not in ENCODINGS:
            raise SpaceError(
                f"space {self.name}: unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})"
            )
        other = copy.copy(self)
        other.encoding = encoding
        return other

    def replay(self, params: Mapping[str, Any]) -> ArchSpec:
        """As `SearchSpace.replay`; parameters of the old per-tier encoding replay too."""
        if self.encoding != "tier" and isinstance(params, Mapping) and is_legacy(params):
            return self.with_encoding("tier").replay(params)
        return super().replay(params)

    def encode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` in this space's encoding (e.g. an old trial's, for `replay` or to
        enqueue it in a new study); SpaceError when they are not a point of the space."""
        spec = self.replay(params)
        out = self.params_of(spec)
        if out is None:  # pragma: no cover - replay of a point always has params
            raise SpaceError(f"space {self.name}: cannot encode {dict(params)!r}")
        return out

    # -- reference points, inverse, description -----------------------------------------------
    def params_of(self, spec: ArchSpec) -> dict[str, Any] | None:
        """The parameters that replay to ``spec``, or None when ``spec`` is not in the space."""
        if not isinstance(spec, ArchSpec) or spec.task != self.task:
            return None
        macro = MacroWidths.of(spec)
        tier = next((t for t, w in self.widths.items() if w == macro), None)
        if tier is None:
            return None
        params: dict[str, Any] = {"tier": tier}
        b, n = spec.backbone, spec.neck
        for pos, st in zip(POSITIONS, (*b.stages, n.up1, n.up2, n.down1, n.down2), strict=True):
            params[f"{pos}_kind"] = st.kind
            params[f"{pos}_depth"] = st.depth
            if self.encoding == "tier":
                params[f"{pos}_hidden_t_{tier}"] = st.hidden
            elif st.hidden in self.hidden[tier][pos]:  # the first index that gives it
                params[f"{pos}_hidden_idx"] = self.hidden[tier][pos].index(st.hidden)
            else:
                return None
        head = self._head_params(spec.head)
        if head is None:
            return None
        params.update(head)
        try:
            replayed = self.replay(params)
        except SpaceError:
            return None
        return params if replayed == spec else None

    def reference_points(self) -> dict[str, dict[str, Any]]:
        """``{released model name: params}`` for each released model inside this space."""
        points = {}
        for name in self.REFERENCES:
            params = self.params_of(self._reference_spec(name))
            if params is not None:
                points[name] = params
        return points

    def param_names(self) -> list[str]:
        """Every parameter name of a trial, in suggestion order (every trial suggests all)."""
        return list(self.dims)

    def size_per_tier(self) -> dict[str, int]:
        """Number of distinct architectures (arch_ids) per tier."""
        sizes = {}
        for t in self.dims["tier"].choices:
            n = 1
            for d in self.dims.values():
                if d.name == "tier":
                    continue
                if d.name.endswith("_hidden_idx"):
                    n *= len(self._hidden_values(t, d.name.removesuffix("_hidden_idx")))
                else:
                    n *= len(d.values())
            sizes[t] = n
        return sizes

    def size(self) -> int:
        """Number of distinct architectures in the space (exact: hidden indices past a tier's
        last choice repeat it, and are counted once)."""
        return sum(self.size_per_tier().values())

    def describe(self) -> dict[str, Any]:
        """Dimensions with their choices and conditions, tier widths, exact size."""
        size = self.size()
        tiers = self.dims["tier"].choices
        return {
            "name": self.name,
            "task": self.task,
            "overrides": dict(self.overrides),
            "size": size,
            "log10_size": round(math.log10(size), 2),
            "size_per_tier": self.size_per_tier(),
            "num_parameters": len(self.dims),
            "dimensions": [d.to_dict() for d in self.dims.values()],
            "hidden_channels": {
                t: {pos: list(self._hidden_values(t, pos)) for pos in POSITIONS} for t in tiers
            },
            "tiers": {t: dataclasses.asdict(self.widths[t]) for t in tiers},
            "reference_points": list(self.reference_points()),
        }


# the building blocks are re-exported
__all__ = ["ENCODINGS", "YoloNasSpace", "is_legacy", *dims.__all__]
