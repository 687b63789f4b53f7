"""Trial objects without Optuna: random sampling and strict replay.

Search spaces are written against Optuna's define-by-run trial API (``suggest_int``,
``suggest_categorical``). These two small classes speak the same API so that a space can be
sampled or replayed on a machine without Optuna (a deployment box, the latency check machine):

- `RandomTrial(seed, params=None)` draws every parameter uniformly at random, except those given
  in ``params``, which are used as given (checked against the choices).
- `ReplayTrial(params)` returns the given values and refuses a parameter that is missing.

Example:
    >>> t = RandomTrial(seed=0)
    >>> v = t.suggest_int("depth", 1, 4)
    >>> 1 <= v <= 4 and t.params == {"depth": v}
    True
    >>> RandomTrial(seed=1, params={"kind": "qci"}).suggest_categorical("kind", ["qsp", "qci"])
    'qci'
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Mapping, Sequence
from typing import Any


class TrialValueError(ValueError):
    """A given parameter value is not one of the choices (the message names the parameter)."""


def match_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """The element of ``choices`` equal to ``value`` (bools only match bools), else raise.

    Returns the choice itself, so ``64.0`` read back from a table becomes the choice ``64``.
    """
    for choice in choices:
        if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
            return choice
    raise TrialValueError(f"parameter {name!r}: {value!r} is not one of {list(choices)!r}")


def match_int(name: str, value: Any, low: int, high: int, step: int = 1) -> int:
    """``value`` as an int in ``low..high`` on the ``step`` grid, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrialValueError(f"parameter {name!r}: expected an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        as_int = int(value)
    elif float(value).is_integer():
        as_int = int(value)
    else:
        raise TrialValueError(f"parameter {name!r}: expected an integer, got {value!r}")
    if not low <= as_int <= high or (as_int - low) % step != 0:
        grid = f"{low}..{high}" + (f" step {step}" if step != 1 else "")
        raise TrialValueError(f"parameter {name!r}: {as_int} is not in {grid}")
    return as_int


class _TrialBase:
    """Records suggested values; a name suggested twice returns its first value (as Optuna)."""

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params: expected a mapping, got {type(params).__name__}")
        self._given: dict[str, Any] = dict(params or {})
        self.params: dict[str, Any] = {}  # the values suggested so far, in suggestion order
        self.number: int | None = None

    def _draw_int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        raise NotImplementedError

    def _draw_choice(self, name: str, choices: Sequence[Any]) -> Any:
        raise NotImplementedError

    def _draw_float(
        self, name: str, low: float, high: float, step: float | None, log: bool
    ) -> float:
        raise NotImplementedError

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """An integer in ``low..high`` (inclusive) on the ``step`` grid."""
        if name in self.params:
            return self.params[name]
        if high < low or step < 1:
            raise ValueError(f"parameter {name!r}: empty range {low}..{high} step {step}")
        if name in self._given:
            value = match_int(name, self._given[name], low, high, step)
        else:
            value = self._draw_int(name, low, high, step, log)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """One of ``choices``."""
        if name in self.params:
            return self.params[name]
        choices = list(choices)
        if not choices:
            raise ValueError(f"parameter {name!r}: no choices")
        if name in self._given:
            value = match_choice(name, self._given[name], choices)
        else:
            value = self._draw_choice(name, choices)
        self.params[name] = value
        return value

    def suggest_float(
        self,
        name: str,
        low: float,
        high: float,
        *,
        step: float | None = None,
        log: bool = False,
    ) -> float:
        """A float in ``[low, high]`` (on the ``step`` grid when given)."""
        if name in self.params:
            return self.params[name]
        if name in self._given:
            value = self._given[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TrialValueError(f"parameter {name!r}: expected a number, got {value!r}")
            value = float(value)
            if not low <= value <= high:
                raise TrialValueError(f"parameter {name!r}: {value} is not in [{low}, {high}]")
        else:
            value = self._draw_float(name, low, high, step, log)
        self.params[name] = value
        return value


class RandomTrial(_TrialBase):
    """A duck-typed Optuna trial that samples uniformly at random, with no Optuna.

    ``seed`` makes the draws reproducible; ``params`` fixes some (or all) parameters, so
    ``RandomTrial(params=finished.params)`` replays a finished trial. Values suggested so far are
    in ``.params``.
    """

    def __init__(self, seed: int | None = None, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.seed = seed
        self._rng = random.Random(seed)

    def _draw_int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if log and low > 0:
            x = math.exp(self._rng.uniform(math.log(low), math.log(high + 1)))
            k = min(int((x - low) // step), (high - low) // step)
            return low + max(k, 0) * step
        return self._rng.randrange(low, high + 1, step)

    def _draw_choice(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[self._rng.randrange(len(choices))]

    def _draw_float(
        self, name: str, low: float, high: float, step: float | None, log: bool
    ) -> float:
        if step:
            n = int(math.floor((high - low) / step + 1e-9))
            return low + self._rng.randint(0, n) * step
        if log and low > 0:
            return math.exp(self._rng.uniform(math.log(low), math.log(high)))
        return self._rng.uniform(low, high)


class ReplayTrial(_TrialBase):
    """A trial that only replays ``params``: a parameter not given is an error naming it.

    Parameters given but never suggested are listed by `unused()`.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)

    def _missing(self, name: str) -> TrialValueError:
        return TrialValueError(f"parameter {name!r}: missing from the given parameters")

    def _draw_int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        raise self._missing(name)

    def _draw_choice(self, name: str, choices: Sequence[Any]) -> Any:
        raise self._missing(name)

    def _draw_float(
        self, name: str, low: float, high: float, step: float | None, log: bool
    ) -> float:
        raise self._missing(name)

    def unused(self) -> list[str]:
        """Names given but not suggested (e.g. a parameter of another space)."""
        return [k for k in self._given if k not in self.params]


__all__ = ["RandomTrial", "ReplayTrial", "TrialValueError", "match_choice", "match_int"]
