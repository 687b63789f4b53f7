"""Early stopping for the search: ASHA on AP, and ASHA ranked by Pareto fronts.

`make_scheduler(exp, stopped)` builds the Ray Tune scheduler of an experiment's ``scheduler:``:

- ``none``: every candidate trains all its epochs;
- ``asha``: Ray's asynchronous successive halving on AP alone (`RecordingASHA`). In a
  two-objective search it cuts small fast models early: their AP is low at every rung;
- ``pareto_asha``: the same rungs (epochs ``grace * reduction**k`` below ``max_t``), but a trial
  reaching a rung is ranked by non-dominated sorting of every objective (AP and latency, say)
  among the trials recorded at that rung (`ParetoASHA`): it goes on when fewer than
  ``n / reduction`` of them lie on strictly better fronts. A fast model on the rung's front is
  never cut for its AP; a model both slower and less accurate than others is.

Both remember the Ray trials they stopped (``stopped``) so the searcher tells them PRUNED.

Example:
    >>> s = ParetoASHA({"ap": "max", "latency_ms": "min"}, set(), grace_period=1, max_t=9)
    >>> s.milestones
    [1, 3]
    >>> front_ranks([(-0.5, 10.0), (-0.1, 1.0), (-0.3, 20.0)])
    [0, 0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler


class RecordingASHA(AsyncHyperBandScheduler):
    """ASHA that remembers which trials it stopped (so the searcher can tell them PRUNED)."""

    def __init__(self, stopped: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped = stopped

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP:
            self.stopped.add(trial.trial_id)
        return action


def front_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Non-dominated sorting of points to minimize: each point's front (0 = not dominated)."""
    n = len(points)
    ranks = [-1] * n
    left = set(range(n))
    front = 0
    while left:
        current = {
            i for i in left
            if not any(_dominates(points[j], points[i]) for j in left if j != i)
        }
        for i in current:
            ranks[i] = front
        left -= current
        front += 1
    return ranks


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


class ParetoASHA(FIFOScheduler):
    """Asynchronous successive halving ranked by Pareto fronts (see the module docstring).

    ``objectives``: ``{result key: "max" | "min"}``; a result missing one of them (an
    infeasible or failed trial's only report) is never cut and not recorded.
    """

    def __init__(
        self,
        objectives: dict[str, str],
        stopped: set[str],
        time_attr: str = "epoch",
        grace_period: int = 1,
        max_t: int = 100,
        reduction_factor: float = 3.0,
    ) -> None:
        super().__init__()
        if grace_period < 1 or max_t < 1 or reduction_factor <= 1:
            raise ValueError(
                f"ParetoASHA: expected grace_period >= 1, max_t >= 1, reduction_factor > 1; got "
                f"{grace_period}, {max_t}, {reduction_factor}"
            )
        self.objectives = dict(objectives)
        self.stopped = stopped
        self.time_attr = time_attr
        self.reduction = float(reduction_factor)
        self.max_t = max_t
        self.milestones: list[int] = []
        m = float(grace_period)
        while m < max_t:
            self.milestones.append(int(m))
            m *= self.reduction
        # milestone -> {Ray trial id: objective vector to minimize}
        self.recorded: dict[int, dict[str, tuple[float, ...]]] = {m: {} for m in self.milestones}

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # ranks on its own objectives

    def _vector(self, result: dict) -> tuple[float, ...] | None:
        out = []
        for key, direction in self.objectives.items():
            v = result.get(key)
            if v is None or isinstance(v, bool):
                return None
            try:
                v = float(v)
            except (TypeError, ValueError):
                return None
            if not math.isfinite(v):
                return None
            out.append(-v if direction == "max" else v)
        return tuple(out)

    def survives(self, milestone: int, trial_id: str) -> bool:
        """Whether ``trial_id``, recorded at ``milestone``, is in the top ``1/reduction`` by
        front: fewer than ``n / reduction`` recorded trials on strictly better fronts."""
        rung = self.recorded[milestone]
        ids = list(rung)
        ranks = front_ranks([rung[i] for i in ids])
        mine = ranks[ids.index(trial_id)]
        better = sum(r < mine for r in ranks)
        return better < len(ids) / self.reduction

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        t = result.get(self.time_attr)
        if t is None or result.get("final"):
            return self.CONTINUE
        for milestone in reversed(self.milestones):  # the highest rung reached, once
            if t < milestone:
                continue
            if trial.trial_id in self.recorded[milestone]:
                break
            vector = self._vector(result)
            if vector is None:
                break
            self.recorded[milestone][trial.trial_id] = vector
            if not self.survives(milestone, trial.trial_id):
                self.stopped.add(trial.trial_id)
                return self.STOP
            break
        return self.CONTINUE

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m}: {len(r)}" for m, r in self.recorded.items())
        return f"Using ParetoASHA: trials recorded per rung ({rungs})"


def make_scheduler(exp: Any, stopped: set[str]) -> Any:
    """The scheduler of ``exp.scheduler`` (None for ``none``), recording into ``stopped``."""
    sch = exp.scheduler
    max_t = sch.max_t or exp.fidelity.epochs
    if sch.type == "asha":
        return RecordingASHA(
            stopped, time_attr="epoch", metric="ap", mode="max", grace_period=sch.grace,
            max_t=max_t, reduction_factor=sch.reduction,
            stop_last_trials=False,  # a trial at its last epoch finishes and reports
        )
    if sch.type == "pareto_asha":
        return ParetoASHA(dict(exp.objectives), stopped, time_attr="epoch",
                          grace_period=sch.grace, max_t=max_t, reduction_factor=sch.reduction)
    return None


__all__ = ["ParetoASHA", "RecordingASHA", "front_ranks", "make_scheduler"]
