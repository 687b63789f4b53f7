"""Our Ray Tune searcher over an Optuna study (ask/tell with a define-by-run space).

Why not Ray's ``OptunaSearch``: it tells Optuna every finished Ray trial as COMPLETE with its
last result, so a trial stopped early by ASHA counts as a full-fidelity point; it has no way
to pass constraint values to the sampler; and it keeps its own trial bookkeeping outside the
study. `StudySearcher` fixes these:

- each Ray trial maps to exactly one Optuna trial number (``config["number"]``);
- the study (in persistent storage) is the source of truth: every finished trial carries its
  trials-table row in its user attributes (the row in one attribute ``row``, written at once,
  plus ``status``, ``arch_id``, ``session``, ``reference``, ``reused_from``, ``constraints``);
- a trial stopped early by the scheduler is told PRUNED with its fidelity recorded (never
  COMPLETE at full fidelity); a trial that failed is told FAIL with its reason;
- constraints reach the sampler only through Optuna's constraint mechanism: every evaluated
  trial's values ``c_* = value - limit`` are set on it (``Trial.set_constraint``, which Optuna
  5's samplers read in place of the deprecated ``constraints_func``; also in the user attribute
  ``constraints``). A violator (INFEASIBLE, never trained, so it has no AP) is told PRUNED with
  no objective values: no placeholder a sampler could fit. TPE ranks it with the infeasible
  trials by its violation (it reads constraints of PRUNED trials too); NSGA-II and GP, which
  model COMPLETE trials only, leave it out (docs/search.md, "Constraints");
- an architecture already evaluated in the run (same arch_id) is not trained again: the new
  trial is told at once with a copy of the earlier result (``reused_from``); a duplicate of an
  architecture still being evaluated waits for that evaluation;
- trials RUNNING in the study when a sweep starts (an interrupted session) are asked again on
  their own Optuna trial before new ones are asked: the parameters they stored are kept, the
  ones a kill left missing are sampled, and the trainable continues from the trial's last
  per-epoch checkpoint (`nas.trial`);
- a FAIL (genuine failure or lost worker) does not mark its architecture as evaluated: a
  later trial of the same architecture trains it again.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search import Searcher

from nas.faults import KillingTrial, die, faults_from_env
from nas.objectives import constraint_column, constraint_columns
from nas.rundir import ROW_ATTR, column_kind, trial_row
from nas.schedulers import RecordingASHA  # noqa: F401  (re-exported: its old home)

# Optuna state per trials-table status.
_STATE = {
    "COMPLETE": TrialState.COMPLETE,
    "INFEASIBLE": TrialState.PRUNED,  # never trained: no objective values (module docstring)
    "STOPPED": TrialState.PRUNED,
    "FAIL": TrialState.FAIL,
}
_RECORD_EXTRA = ("epoch", "loss", "final")  # report keys that are not table columns


def make_sampler(kind: str, seed: int, population: int) -> Any:
    """The Optuna sampler of an experiment's ``sampler`` section.

    Constraints need no ``constraints_func`` (deprecated in Optuna 5): each trial's constraint
    values are set on the trial itself (`optuna.Trial.set_constraint`), where NSGA-II, TPE and
    GP read them.
    """
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if kind == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # multivariate / group are "experimental"
            return optuna.samplers.TPESampler(
                multivariate=True, group=True, seed=seed, n_startup_trials=min(10, population)
            )
    if kind == "gp":
        try:
            import scipy  # noqa: F401  (GPSampler needs it)
        except ImportError:
            raise ValueError(
                "sampler.type: 'gp' needs scipy (pip install scipy), or use nsga2 / tpe"
            ) from None
        return optuna.samplers.GPSampler(seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler.type: unknown sampler {kind!r}")


class StudySearcher(Searcher):
    """A Ray Tune `Searcher` asking and telling an Optuna study (see the module docstring).

    ``make_config(number, params, spec, reference)`` builds the config of the trainable.
    ``on_finish(frozen_trial)`` is called after each trial is told (progress, files).
    ``max_trials``: trials counted in the study (all but WAITING) after which no more are
    asked; ``deadline``: a ``time.monotonic()`` after which no more are asked.
    """

    def __init__(
        self,
        study: optuna.Study,
        space: Any,
        objectives: dict[str, str],
        epochs: int,
        make_config: Callable[[int, dict[str, Any], Any, str | None], dict[str, Any]],
        on_finish: Callable[[FrozenTrial], None] | None = None,
        max_trials: int | None = None,
        deadline: float | None = None,
        stopped: set[str] | None = None,
        constraint_limits: dict[str, float | None] | None = None,
        session: int = 1,
        on_result: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self.study = study
        self.space = space
        self.objectives = dict(objectives)
        self.epochs = epochs
        self.make_config = make_config
        self.on_finish = on_finish
        self.max_trials = max_trials
        self.deadline = deadline
        self.stopped = stopped if stopped is not None else set()
        self.limits = dict(constraint_limits or {})
        self.session = session
        self.on_result = on_result  # after every result (the driver's heartbeat)
        self._faults = faults_from_env()
        self.interrupted: list[int] = []  # numbers left RUNNING (to run again on resume)
        self._live: dict[str, int] = {}  # Ray trial id -> Optuna number
        self._last: dict[str, dict[str, Any]] = {}
        self._trials: dict[int, optuna.Trial] = {}
        self._running_arch: dict[str, int] = {}
        self._waiting: dict[str, list[int]] = {}
        trials = study.get_trials(deepcopy=False)
        # arch_id -> number of the trial that evaluated it; a failed architecture is not done
        # (it may be tried again), nor is an interrupted one (still RUNNING)
        self._done_arch = {
            t.user_attrs["arch_id"]: t.number
            for t in trials
            if t.state.is_finished()
            and t.state != TrialState.FAIL
            and "arch_id" in t.user_attrs
            and t.user_attrs.get("reused_from") is None
        }
        self._resume = [t.number for t in trials if t.state == TrialState.RUNNING]
        self._counted = sum(t.state != TrialState.WAITING for t in trials)

    # -- Searcher API -----------------------------------------------------------------------------
    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return True  # our configs come from the space; ASHA has its own metric and mode

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        while True:
            if self._resume:
                # An interrupted trial is asked again on its own Optuna trial: the parameters
                # it stored are returned as they are, the ones a kill left missing are drawn.
                number = self._resume.pop(0)
                trial = optuna.Trial(self.study, self._trial_id(number))
                spec = self._sample(trial, number)
            else:
                if self._budget_spent():
                    return Searcher.FINISHED
                trial = self.study.ask()
                self._counted += 1
                number = trial.number
                spec = self._sample(trial, number)
            params = dict(trial.params)
            attrs = self.study._storage.get_trial(trial._trial_id).user_attrs
            reference = attrs.get("reference")
            if attrs.get("arch_id") != spec.arch_id:
                trial.set_user_attr("arch_id", spec.arch_id)
            if attrs.get("session") != self.session:
                trial.set_user_attr("session", self.session)
            self._trials[number] = trial
            arch_id = spec.arch_id
            if arch_id in self._done_arch:
                self._tell_reused(number, self._done_arch[arch_id])
                continue
            if arch_id in self._running_arch:
                self._waiting.setdefault(arch_id, []).append(number)
                continue
            self._running_arch[arch_id] = number
            self._live[trial_id] = number
            return self.make_config(number, params, spec, reference)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._last[trial_id] = result
        if self.on_result is not None:
            self.on_result()
        number = self._live.get(trial_id)
        kill_at = self._faults.get(("train", number)) if number is not None else None
        if kill_at is not None and kill_at == result.get("epoch"):
            die()

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        number = self._live.pop(trial_id, None)
        if number is None:
            return
        last = result or self._last.pop(trial_id, None)
        self._last.pop(trial_id, None)
        status, record = self._classify(trial_id, number, last, error)
        arch_id = self._trials[number].user_attrs.get("arch_id") or (record or {}).get("arch_id")
        self._running_arch.pop(arch_id, None)
        if status is None:  # interrupted: stays RUNNING, runs again when the sweep resumes
            self.interrupted.append(number)
            for other in self._waiting.pop(arch_id, []):
                self.interrupted.append(other)
            return
        if self._tell(number, status, record) == "FAIL":
            # a failure is not a result: the duplicates waiting for it are tried for real
            self._resume.extend(self._waiting.pop(arch_id, []))
            return
        self._done_arch[arch_id] = number
        for other in self._waiting.pop(arch_id, []):
            self._tell_reused(other, number)

    def save(self, checkpoint_path: str) -> None:
        pass  # the Optuna study in its storage is the state; nothing else to save

    def restore(self, checkpoint_path: str) -> None:
        pass

    def __getstate__(self) -> dict[str, Any]:
        # Ray writes the Tuner (and this searcher) to tuner.pkl for Tuner.restore, which we do
        # not use: the study is the state. Keep only plain settings (callbacks, streams and
        # storage connections do not pickle).
        keep = ("objectives", "epochs", "max_trials", "session", "limits")
        return {k: self.__dict__[k] for k in keep}

    # -- helpers ----------------------------------------------------------------------------------
    def _sample(self, trial: optuna.Trial, number: int) -> Any:
        after = self._faults.get(("sample", number))
        return self.space.sample(trial if after is None else KillingTrial(trial, after))

    def _budget_spent(self) -> bool:
        if self.max_trials is not None and self._counted >= self.max_trials:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _trial_id(self, number: int) -> int:
        return self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, number
        )

    def _classify(
        self, trial_id: str, number: int, last: dict | None, error: bool
    ) -> tuple[str | None, dict[str, Any] | None]:
        record = _record_of(last) if last else None
        if last and last.get("final"):
            return str(last.get("status", "FAIL")), record
        if error:
            record = record or {}
            record["error"] = "the trial's Ray worker failed (see the Ray logs under RUN_DIR/ray)"
            record["failure"] = "worker"
            return "FAIL", record
        if trial_id in self.stopped and record is not None:
            done = int(record.get("epochs_done") or 0)
            if done >= self.epochs and record.get("ap") is not None:
                record["full_fidelity"] = True  # stopped at its last epoch: fully trained
                return "COMPLETE", record
            return "STOPPED", record
        return None, record

    def _tell(self, number: int, status: str, record: dict[str, Any] | None) -> str:
        trial = self._trials[number]
        record = dict(record or {})
        record["number"] = number
        record["status"] = status
        record.setdefault("session", self.session)
        if status != "COMPLETE":
            record["full_fidelity"] = False
        state = _STATE[status]
        values = None
        if status == "COMPLETE":
            values = [record.get(k) for k in self.objectives]
            if any(v is None or not math.isfinite(float(v)) for v in values):
                missing = [k for k, v in zip(self.objectives, values, strict=True) if v is None]
                record["error"] = f"objective values missing or not finite: {missing or values}"
                status = record["status"] = "FAIL"
                state, values = TrialState.FAIL, None
        constraints = self._constraints(record)
        if constraints:
            trial.set_user_attr("constraints", list(constraints.values()))
            for key, value in constraints.items():  # what the samplers read
                trial.set_constraint(key, value)
        # One write for the whole row (a kill between writes leaves no half-written row);
        # the few attributes read on their own stay separate.
        row = {k: v for k, v in _jsonable(record).items()
               if v is not None and k != "number" and not k.startswith("param_")}
        trial.set_user_attr(ROW_ATTR, row)
        if self._faults.get(("write", number)) is not None:
            die()
        trial.set_user_attr("status", status)
        frozen = self.study.tell(trial, values=values, state=state, skip_if_finished=True)
        if self._faults.get(("table", number)) is not None:
            die()
        if self.on_finish is not None:
            try:
                self.on_finish(frozen)
            except Exception as exc:  # noqa: BLE001 - files and progress must not stop a sweep
                warnings.warn(f"trial {number}: after-trial step failed: {exc!r}", stacklevel=2)
        return status

    def _tell_reused(self, number: int, source: int) -> None:
        src = self.study._storage.get_trial(self._trial_id(source))
        record = trial_row(src)
        status = record.get("status") or "FAIL"
        trial = self._trials[number]
        record.update(
            {
                "number": number,
                "reused_from": source,
                "wall_s": 0.0,
                "session": self.session,
                "reference": self.study._storage.get_trial(trial._trial_id).user_attrs.get(
                    "reference"
                ),
            }
        )
        for key, value in trial.params.items():
            record[f"param_{key}"] = value
        trial.set_user_attr("reused_from", source)
        self._tell(number, status, record)

    def _constraints(self, record: dict[str, Any]) -> dict[str, float]:
        """``{c_*: value - limit}`` of the configured constraints for an evaluated trial (a value
        not known, e.g. latency of a trial rejected on params, counts as satisfied: 0)."""
        if record.get("status") not in ("COMPLETE", "INFEASIBLE", "STOPPED"):
            return {}
        return {c: float(record.get(c) or 0.0) for c in constraint_columns(self.limits)}


def _record_of(result: dict[str, Any]) -> dict[str, Any]:
    """The trials-table row inside a Ray result (Ray adds its own keys; drop them)."""
    return {
        k: v
        for k, v in result.items()
        if (k.startswith("param_") or column_kind(k) is not None) and k not in _RECORD_EXTRA
    }


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in record.items():
        if hasattr(v, "item") and callable(v.item):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


__all__ = [
    "RecordingASHA",
    "StudySearcher",
    "constraint_column",
    "constraint_columns",
    "make_sampler",
]
