"""`TrialSettings`: what every trial of an experiment needs, as one frozen dataclass.

It is built once on the driver (`trial_settings`) and travels unchanged to every trial, the
parent's training and the calibration runs: the fidelity, the latency targets, the
constraints, the objectives to measure (their `nas.objectives.Objective` entries, so an
objective registered in a user's script reaches the Ray workers) and where files go. A variant
of it is made with `dataclasses.replace`.

Example:
    >>> import dataclasses                                             # doctest: +SKIP
    >>> s = trial_settings(exp, "data/synthetic", "runs/x/latency_cache")  # doctest: +SKIP
    >>> s.fidelity.epochs, list(s.targets)                             # doctest: +SKIP
    (1, ['default'])
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from nas.experiment import Experiment, Fidelity, LatencySection, SyntheticData
from nas.objectives import Objective, get_objective, split_name


@dataclass(frozen=True)
class TrialSettings:
    """The settings every trial config of an experiment carries (`nas.trial`)."""

    task: str
    data_path: str
    synthetic: SyntheticData | None
    fidelity: Fidelity
    reference_repeats: int
    targets: dict[str, LatencySection]  # latency targets by name; the first is the primary
    constraints: dict[str, float]  # {"max_latency_ms@cpu_int8": 12.0, ...}
    measured: tuple[Objective, ...]  # cost and target objectives measured in each trial
    latency_cache: str
    train_device: str  # "cpu" | "cuda"
    run_dir: str | None = None  # None: no weights kept (`nas.weights`)
    keep_weights: str = "front"
    parent: str | None = None  # a warm start's parent checkpoint (`nas.parent`)
    objectives: dict[str, str] = field(default_factory=dict)
    # target -> keys of the target objectives measured there beyond the ``always`` ones (those
    # named with ``@target``; an unsuffixed name means the primary target)
    target_extras: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workers: int = 0  # DataLoader workers of a training (`loader_workers`)
    # epochs evaluated besides the last (`eval_epochs`); None: every fidelity.eval_every
    eval_epochs: tuple[int, ...] | None = None

    def measures_on(self, objective: Objective, target: str) -> bool:
        """Whether a target objective is measured on ``target``."""
        return objective.always or objective.key in self.target_extras.get(target, ())

    @property
    def primary(self) -> str:
        """The first latency target's name (its columns are also written unsuffixed)."""
        return next(iter(self.targets))

    @property
    def primary_latency(self) -> LatencySection:
        return self.targets[self.primary]

    def suffixes(self, target: str) -> list[str]:
        """Column suffixes of a target's measurements: ``[""]`` with one target; else
        ``["@name"]``, plus ``""`` for the primary target."""
        if len(self.targets) == 1:
            return [""]
        return [f"@{target}", *([""] if target == self.primary else [])]


def trial_settings(exp: Experiment, data_path: str, latency_cache: str | Path,
                   run_dir: str | Path | None = None) -> TrialSettings:
    """The `TrialSettings` of an experiment; without ``run_dir`` no weights are kept."""
    return TrialSettings(
        task=exp.task,
        data_path=data_path,
        synthetic=exp.data.synthetic,
        fidelity=dataclasses.replace(exp.fidelity),
        reference_repeats=exp.reference_repeats,
        targets=dict(exp.targets),
        constraints={k: float(v) for k, v in exp.constraints.items() if v is not None},
        measured=measured_objectives(exp),
        latency_cache=str(Path(latency_cache).resolve()),
        train_device="cuda" if exp.resources.gpu > 0 else "cpu",
        run_dir=None if run_dir is None else str(Path(run_dir).resolve()),
        keep_weights=exp.weights.keep,
        objectives=dict(exp.objectives),
        target_extras=target_extras(exp),
        workers=loader_workers(exp),
        eval_epochs=eval_epochs(exp),
    )


def loader_workers(exp: Experiment) -> int:
    """DataLoader workers per training: ``fidelity.workers``, else the CPUs a trial reserves
    beyond its torch threads (``resources.cpu`` - ``fidelity.threads``, at least 0)."""
    if exp.fidelity.workers is not None:
        return int(exp.fidelity.workers)
    return max(0, math.floor(exp.resources.cpu) - int(exp.fidelity.threads or 1))


def eval_epochs(exp: Experiment) -> tuple[int, ...] | None:
    """The epochs a trial evaluates at besides its last: with ``fidelity.eval_every`` None
    (every N epochs, the trainer's rule); else the ASHA scheduler's rungs (grace x reduction^k
    below max_t, rounded up to whole epochs, as Ray's ASHA places them), or none at all."""
    if exp.fidelity.eval_every is not None:
        return None
    sch = exp.scheduler
    if sch.type != "asha":
        return ()
    max_t = sch.max_t or exp.fidelity.epochs
    count = int(math.log(max_t / sch.grace) / math.log(sch.reduction) + 1)
    return tuple(sorted({math.ceil(sch.grace * sch.reduction ** k - 1e-9)
                         for k in range(max(count, 0))}))


def target_extras(exp: Experiment) -> dict[str, tuple[str, ...]]:
    """``{target: (objective key, ...)}`` of the target objectives the experiment names with a
    target (or without one: the primary), beyond those measured on every target."""
    names = [*exp.objectives, *(k.removeprefix("max_") for k in exp.constraints)]
    primary = next(iter(exp.targets))
    out: dict[str, list[str]] = {}
    for name in names:
        key, target = split_name(name)
        obj = get_objective(key)
        if obj.stage == "target" and not obj.always:
            keys = out.setdefault(target or primary, [])
            if key not in keys:
                keys.append(key)
    return {k: tuple(v) for k, v in out.items()}


def measured_objectives(exp: Experiment) -> tuple[Objective, ...]:
    """The cost and target objectives a trial measures: those measured always, plus those the
    experiment's objectives and constraints name (in registry order, then the rest)."""
    from nas.objectives import list_objectives

    named = [split_name(k)[0] for k in exp.objectives]
    named += [split_name(k.removeprefix("max_"))[0] for k in exp.constraints]
    out: list[Objective] = []
    for key in [*list_objectives(), *named]:
        obj = get_objective(key)
        if obj.stage != "train" and obj not in out and (obj.always or key in named):
            out.append(obj)
    return tuple(out)


__all__ = [
    "TrialSettings",
    "eval_epochs",
    "loader_workers",
    "measured_objectives",
    "target_extras",
    "trial_settings",
]
