"""The SearchSpace base class: a define-by-run function from a trial to an ArchSpec.

A space subclass implements `sample(trial)`, written against Optuna's trial API
(``trial.suggest_int`` / ``trial.suggest_categorical``) without importing Optuna, so any object
with those methods works: an ``optuna.Trial``, ``optuna.trial.FixedTrial(params)``, or this
package's `RandomTrial` and `ReplayTrial`.

Example:
    >>> from search_spaces import get_space, RandomTrial
    >>> space = get_space("yolo_nas")
    >>> trial = RandomTrial(seed=0)
    >>> spec = space.sample(trial)
    >>> space.replay(trial.params).arch_id == spec.arch_id
    True
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from models.spec import ArchSpec
from search_spaces.trials import RandomTrial, ReplayTrial, TrialValueError


class SpaceError(ValueError):
    """A bad space name, override or parameter set: the message names the key and the value."""


class SearchSpace(abc.ABC):
    """Base class of the search spaces.

    Subclasses set ``name`` and ``task`` and implement `sample`. They may override
    `reference_points` (the released models as exact points), `describe` and `params_of`.
    """

    name: str = ""
    task: str = ""

    def __init__(self) -> None:
        self.overrides: dict[str, Any] = {}  # the validated overrides this space was made with

    @abc.abstractmethod
    def sample(self, trial: Any) -> ArchSpec:
        """Suggest every parameter on ``trial`` and return the architecture they describe."""

    def sample_random(self, seed: int) -> ArchSpec:
        """One architecture drawn uniformly per parameter with ``RandomTrial(seed)`` (no Optuna).

        Example:
            >>> from search_spaces import get_space
            >>> space = get_space("yolo_nas_pose", width_scale=0.25)
            >>> space.sample_random(3) == space.sample_random(3)
            True
        """
        return self.sample(RandomTrial(seed=seed))

    def reference_points(self) -> dict[str, dict[str, Any]]:
        """``{name: params}``: parameter sets that replay to the released models."""
        return {}

    def reference_specs(self) -> dict[str, ArchSpec]:
        """``{name: ArchSpec}``: the reference points replayed."""
        return {name: self.replay(params) for name, params in self.reference_points().items()}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: name, task, dimensions, size."""
        return {"name": self.name, "task": self.task, "overrides": dict(self.overrides)}

    def params_of(self, spec: ArchSpec) -> dict[str, Any] | None:
        """The parameters that replay to ``spec``, or None if ``spec`` is not in the space."""
        return None

    def replay(self, params: Mapping[str, Any]) -> ArchSpec:
        """The architecture of a finished trial's ``params`` (no Optuna needed).

        Raises SpaceError when a parameter is missing, out of its choices, or unknown.
        """
        if not isinstance(params, Mapping):
            raise SpaceError(f"space {self.name}: params must be a mapping, got {params!r}")
        trial = ReplayTrial(params)
        try:
            spec = self.sample(trial)
        except TrialValueError as exc:
            raise SpaceError(f"space {self.name}: {exc}") from None
        unused = trial.unused()
        if unused:
            raise SpaceError(
                f"space {self.name}: parameter {unused[0]!r} is not used by this architecture "
                f"(used: {', '.join(trial.params)})"
            )
        return spec

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self.overrides.items())
        return f"{type(self).__name__}({extra})"


__all__ = ["SearchSpace", "SpaceError"]
