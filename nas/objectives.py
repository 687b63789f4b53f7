"""Objectives and metrics as data: one registry that every part of the engine reads.

An `Objective` is a key (the trials-table column), its direction, dtype, label and unit, the
stage at which it is measured and how (a function given a `TrialContext`, returning the
columns it fills). Experiment validation, the trial, the searcher, the trials-table schema,
results, fronts, plots, progress and variants read this table; registering a new objective is
one `register_objective` call (plus its measuring function), in any module.

Stages: ``cost`` is measured from the architecture before anything costly (constraints are
checked right after); ``target`` is measured once per latency target (`nas.targets`), its
column suffixed ``@<target>`` when the experiment has several targets; ``train`` is scored by
the training (AP) and has no measuring function here.

An objective used in an experiment travels to the Ray workers inside the trial settings
(`nas.settings.TrialSettings`), so a function defined in a user's script works on every node
(Ray pickles it by value when its module is ``__main__`` or registered with
``ray.cloudpickle.register_pickle_by_value``).

Example:
    >>> from nas.objectives import Objective, get_objective, split_name
    >>> get_objective("latency_ms").direction, split_name("latency_ms@cpu_int8")
    ('min', ('latency_ms', 'cpu_int8'))
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DIRECTIONS = ("max", "min")
STAGES = ("cost", "target", "train")
KINDS = ("float", "int", "bool", "text")


@dataclass(frozen=True)
class TrialContext:
    """What a measuring function is given: the architecture, the trial settings, the row so
    far and, for a ``target`` objective, the target's name and latency section."""

    spec: Any  # models.spec.ArchSpec
    settings: Any  # nas.settings.TrialSettings
    record: Mapping[str, Any]
    target: str | None = None
    latency: Any = None  # nas.experiment.LatencySection of the target


@dataclass(frozen=True)
class Objective:
    """One objective or metric of the trials table (see the module docstring)."""

    key: str  # the column (``key@target`` per target for stage "target")
    direction: str  # "max" | "min"
    label: str  # axis / table label, e.g. "latency"
    unit: str = ""  # "ms", "MB", ...
    dtype: str = "float"  # float | int | bool | text
    stage: str = "cost"  # cost | target | train
    measure: Callable[[TrialContext], Mapping[str, Any]] | None = None
    # further columns ``measure`` fills, with their dtypes (suffixed like the key per target)
    columns: tuple[tuple[str, str], ...] = ()
    always: bool = False  # measured in every trial, objective or not
    accuracy: bool = False  # an accuracy objective (an experiment needs one)
    tasks: tuple[str, ...] = ("detection", "pose")
    doc: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key or "@" in self.key or not self.key.replace("_", "").isalnum():
            raise ValueError(f"objective key: expected letters, digits and '_', got {self.key!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"objective {self.key}: direction must be max or min, "
                             f"got {self.direction!r}")  # fmt: skip
        if self.stage not in STAGES:
            raise ValueError(f"objective {self.key}: stage must be one of {', '.join(STAGES)}, "
                             f"got {self.stage!r}")  # fmt: skip
        for name, kind in ((self.key, self.dtype), *self.columns):
            if kind not in KINDS:
                raise ValueError(f"objective {self.key}: column {name}: dtype must be one of "
                                 f"{', '.join(KINDS)}, got {kind!r}")  # fmt: skip
        if self.stage != "train" and self.measure is None:
            raise ValueError(f"objective {self.key}: a {self.stage} objective needs a measure")

    @property
    def axis_label(self) -> str:
        """``latency (ms)``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def column_kinds(self) -> dict[str, str]:
        """``{column: dtype}`` of the columns this objective fills (unsuffixed)."""
        return {self.key: self.dtype, **dict(self.columns)}


_REGISTRY: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add an objective to the registry; a key already registered (or one of its columns
    already owned by another objective) is refused with ValueError."""
    if objective.key in _REGISTRY:
        raise ValueError(f"objective {objective.key!r} is already registered")
    owned = {c: o.key for o in _REGISTRY.values() for c in o.column_kinds()}
    for column in objective.column_kinds():
        if column in owned:
            raise ValueError(f"objective {objective.key!r}: column {column!r} belongs to "
                             f"objective {owned[column]!r}")  # fmt: skip
    _REGISTRY[objective.key] = objective
    return objective


def unregister_objective(key: str) -> None:
    """Remove a registered objective (tests; a built-in one cannot be removed)."""
    if key in _BUILTIN_KEYS:
        raise ValueError(f"objective {key!r} is built in")
    _REGISTRY.pop(key, None)


def list_objectives(pattern: str = "*") -> list[str]:
    """Registered objective keys matching a glob pattern, in registration order."""
    return [k for k in _REGISTRY if fnmatch.fnmatch(k, pattern)]


def split_name(name: str) -> tuple[str, str | None]:
    """``"latency_ms@cpu_int8"`` -> ``("latency_ms", "cpu_int8")``; no ``@``: target None."""
    key, sep, target = str(name).partition("@")
    return key, (target if sep else None)


def get_objective(name: str) -> Objective:
    """The objective of a key or a per-target name (``latency_ms@t4``); KeyError lists the
    known ones."""
    key = split_name(name)[0]
    if key not in _REGISTRY:
        raise KeyError(f"unknown objective {key!r} (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[key]


def direction_of(name: str) -> str:
    return get_objective(name).direction


def label_of(name: str) -> str:
    """An axis label: ``latency (ms)``, ``latency (ms) @cpu_int8``."""
    target = split_name(name)[1]
    try:
        label = get_objective(name).axis_label
    except KeyError:
        label = str(name)
        return label
    return f"{label} @{target}" if target else label


def column_kind(column: str) -> str | None:
    """The dtype of a trials-table column that an objective owns (``lat_cv@t`` included);
    None when no registered objective owns it."""
    base = split_name(column)[0]
    for obj in _REGISTRY.values():
        kinds = obj.column_kinds()
        if base in kinds:
            return kinds[base]
    return None


def objective_columns() -> dict[str, str]:
    """``{column: dtype}`` of every registered objective, unsuffixed, in registration order."""
    out: dict[str, str] = {}
    for obj in _REGISTRY.values():
        out.update(obj.column_kinds())
    return out


def accuracy_keys() -> list[str]:
    return [k for k, o in _REGISTRY.items() if o.accuracy]


def train_keys() -> list[str]:
    """Objectives scored by the training (``ap`` first)."""
    return [k for k, o in _REGISTRY.items() if o.stage == "train"]


def constraint_column(limit: str) -> str:
    """``max_latency_ms@t4`` -> ``c_latency_ms@t4`` (the value minus the limit)."""
    return "c_" + limit.removeprefix("max_")


def constraint_columns(limits: Mapping[str, float | None]) -> list[str]:
    """The c_* columns of the set limits, in order (the constraint vector of a trial)."""
    return [constraint_column(k) for k, v in limits.items() if v is not None]


def check_constraints(rec: dict[str, Any], limits: Mapping[str, float | None],
                      stand_ins: Mapping[str, str] | None = None) -> bool:
    """Fill the c_* columns (value minus limit) of ``rec`` and ``feasible``; True when nothing
    is violated. A value not measured yet is skipped, or read from its stand-in column
    (``{"latency_ms": "predicted_latency_ms"}`` before latency is measured)."""
    feasible = True
    for limit_key, limit in limits.items():
        column = limit_key.removeprefix("max_")
        value = rec.get(column)
        if value is None and stand_ins and column in stand_ins:
            value = rec.get(stand_ins[column])
        if limit is None or value is None:
            continue
        rec[constraint_column(limit_key)] = round(float(value) - float(limit), 6)
        feasible = feasible and rec[constraint_column(limit_key)] <= 0
    rec["feasible"] = feasible
    return feasible


def truthy(value: Any) -> bool:
    """The one truthiness of a table cell: True, 1, "True"/"true"/"1"/"yes" -> True; False,
    missing (None, NaN, pd.NA) and anything else -> False."""
    if value is None or str(value) in ("<NA>", "nan", "None"):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0", "yes")
    if isinstance(value, float) and math.isnan(value):
        return False
    try:
        return bool(value)
    except (TypeError, ValueError):
        return False


# -- the built-in objectives ----------------------------------------------------------------------
def _complexity(ctx: TrialContext) -> dict[str, Any]:
    from models.complexity import complexity

    cx = complexity(ctx.spec, image_size=ctx.settings.primary_latency.image_size)
    return {"params": int(cx.params), "gflops": round(float(cx.gflops), 6)}


def _model_mb(ctx: TrialContext) -> dict[str, Any]:
    """The fused fp32 weights as saved to disk (``torch.save`` of the state dict), in MB."""
    import io

    import torch

    from models.build import build_model

    model = build_model(ctx.spec).eval()
    if hasattr(model, "fuse"):
        model.fuse()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return {"model_mb": round(buf.tell() / 1e6, 6)}


def _latency(ctx: TrialContext) -> dict[str, Any]:
    from nas.targets import measure_target

    return measure_target(ctx)


def _peak_memory(ctx: TrialContext) -> dict[str, Any]:
    from nas.targets import peak_memory_mb

    return {"peak_mem_mb": round(peak_memory_mb(ctx.spec, ctx.latency), 6)}


_LATENCY_COLUMNS = (
    ("lat_p90_ms", "float"), ("lat_cv", "float"), ("latency_stable", "bool"),
    ("lat_repeats", "int"), ("lat_device", "text"), ("lat_backend", "text"),
    ("lat_precision", "text"), ("lat_batch", "int"), ("lat_image_size", "int"),
    ("latency_s", "float"),
)  # fmt: skip

_BUILTIN_OBJECTIVES = (
    Objective("ap", "max", "AP", stage="train", accuracy=True,
              doc="COCO AP (keypoint AP for pose) after the short training"),
    Objective("ap50", "max", "AP50", stage="train", accuracy=True),
    Objective("box_ap", "max", "box AP", stage="train", accuracy=True, tasks=("pose",)),
    # one complexity pass fills both columns (a measure may fill other objectives' columns)
    Objective("params", "min", "parameters", dtype="int", measure=_complexity, always=True),
    Objective("gflops", "min", "GFLOPs", measure=_complexity, always=True),
    Objective("model_mb", "min", "model size", unit="MB", measure=_model_mb,
              doc="the fused fp32 weights as saved to disk"),
    Objective("latency_ms", "min", "latency", unit="ms", stage="target", measure=_latency,
              always=True, columns=_LATENCY_COLUMNS,
              doc="median latency of the fused model on the target"),
    Objective("peak_mem_mb", "min", "peak inference memory", unit="MB", stage="target",
              measure=_peak_memory,
              doc="CUDA: max allocated during a pass; CPU: the ONNX Runtime session's memory"),
)
for _obj in _BUILTIN_OBJECTIVES:
    register_objective(_obj)
_BUILTIN_KEYS = tuple(o.key for o in _BUILTIN_OBJECTIVES)

__all__ = [
    "DIRECTIONS",
    "Objective",
    "TrialContext",
    "accuracy_keys",
    "check_constraints",
    "column_kind",
    "constraint_column",
    "constraint_columns",
    "direction_of",
    "get_objective",
    "label_of",
    "list_objectives",
    "objective_columns",
    "register_objective",
    "split_name",
    "train_keys",
    "truthy",
    "unregister_objective",
]
