"""`run_search`: one hardware-aware search, from an experiment file to a run directory.

A session: lock the run directory -> open (or create) the Optuna study in its storage ->
seed it with the space's reference points (new study only) -> start or join Ray -> a Ray Tune
`Tuner` runs `nas.trial.run_trial` on configs from `nas.searcher.StudySearcher` (ASHA
optional) -> after each trial the trials table, its frozen file and a progress line -> at the
end the Pareto front, the n/s/m/l variants, plots and a summary.

Resume: the study is the source of truth. A resumed session opens the same study and starts a
fresh Tuner (its Ray experiment in ``ray/session-<k>``) that first runs again the trials left
RUNNING by the interrupted session (same Optuna numbers, asked again on their own Optuna trial
so that parameters a kill left unwritten are sampled; training continues from the trial's
per-epoch checkpoint in ``RUN_DIR/work``) and then asks only for the trials still missing from
the budget. Finished trials are never re-run and no number is used twice. A killed session
loses little bookkeeping: run.json carries its elapsed time (updated after each trial and
every result, at most every 10 s), the study each finished trial. ``opennac stop RUN_DIR``
(`nas.runlock`) stops a sweep like Ctrl+C.
(We do not use ``Tuner.restore``: it would replay Ray's own snapshot of trial state, which can
lag behind the study, and it needs the searcher pickled; the study already has everything.)

Example:
    >>> from nas.search import run_search                      # doctest: +SKIP
    >>> run_dir = run_search("experiments/quickstart.yaml")    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import signal
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from nas.cluster import ClusterError, check_shared_dirs, resolve_address
from nas.experiment import Experiment, ExperimentError, dump_experiment, load_experiment
from nas.rundir import RunDir, RunDirError, code_version, now_iso, trial_row
from nas.safepath import UnsafeNameError, check_name, inside
from nas.secrets import has_secret, mask_text
from nas.settings import TrialSettings, trial_settings
from nas.variants import update_variants, valid_trials


class SearchError(RuntimeError):
    """A sweep that cannot start or continue; the message says why and what to do."""


def run_search(
    experiment: str | Path | dict[str, Any] | Experiment,
    output: str | Path = "runs",
    name: str | None = None,
    resume: bool = False,
    address: str | None = None,
    progress: bool = True,
) -> Path:
    """Run (or, with ``resume``, continue) a search; returns the run directory.

    ``experiment``: a path, a shipped name (``quickstart``), a dict or an `Experiment`.
    The run directory is ``output/(name or experiment name)``; an existing one is an error
    unless ``resume``, which continues it with the experiment it was started with.
    ``address``: a Ray cluster (``auto``, ``ray://host:10001``); default the experiment's
    ``ray.address``, else a local Ray.
    """
    exp = load_experiment(experiment)
    try:  # the run directory stays a folder of `output`
        path = inside(output, check_name(name or exp.name, "--name"), what="--name")
    except UnsafeNameError as exc:
        raise SearchError(str(exc)) from None
    if (path / "run.json").exists():
        if not resume:
            raise SearchError(
                f"{path}: run directory exists and is never overwritten; continue it with "
                f"`opennac resume {path}` (or --resume), or choose another --name"
            )
        return resume_search(path, address=address, progress=progress)
    rd = RunDir.create(path, name or exp.name)
    dump_experiment(exp, rd.experiment_yaml)
    if progress and has_secret(exp.storage):
        print("note: storage: the URL holds a password; the run directory shows it masked, so "
              "`opennac resume` needs it from the environment: prefer storage: ...${NAME}... or "
              "storage_env: NAME (docs/search.md, 'Storage secrets')")
    try:
        return _session(rd, exp, address, progress)
    except SearchError:
        if rd.meta().get("status") == "created":  # failed before its first trial: no trace
            shutil.rmtree(rd.path, ignore_errors=True)
        raise


def resume_search(
    run_dir: str | Path, address: str | None = None, progress: bool = True
) -> Path:
    """Continue an interrupted (or finished, with budget left) sweep to its budget."""
    try:
        rd = RunDir.open(run_dir)
    except RunDirError as exc:
        raise SearchError(str(exc)) from None
    exp = load_experiment(rd.experiment_yaml)
    return _session(rd, exp, address, progress)


# -- one session --------------------------------------------------------------------------------
def _session(rd: RunDir, exp: Experiment, address: str | None, progress: bool) -> Path:
    from nas.runlock import LockHeld, RunLock

    lock = RunLock(rd.path)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise SearchError(str(exc)) from None
    try:
        session = _Session(rd, exp, resolve_address(address, exp.ray.address), progress)
        if lock.warning:
            warnings.warn(lock.warning, stacklevel=2)
            session.notes.append(lock.warning)
        return session.run()
    finally:
        lock.release()


class _Session:
    def __init__(self, rd: RunDir, exp: Experiment, address: str | None, progress: bool):
        self.rd = rd
        self.exp = exp
        self.address = address
        self.show = progress
        self.notes: list[str] = []
        self.warnings: list[str] = []  # printed loudly before the variants
        self.code_version = code_version()
        from nas.drivertime import DriverClock

        self.clock = DriverClock()  # where the driver's own time goes (run.json: timing)

    # -- the steps --------------------------------------------------------------------------------
    def run(self) -> Path:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        meta = self.rd.meta()
        self.sessions = sessions = list(meta.get("sessions") or [])
        self.session = len(sessions) + 1
        # a killed session's elapsed_s is its last heartbeat (`_heartbeat`)
        with self.clock.phase("startup", "setup"):
            self._setup(elapsed_before=float(sum(s.get("elapsed_s") or 0 for s in sessions)))
        with self.clock.phase("startup", "ray"):
            self._connect()
        sessions.append({"session": self.session, "started": now_iso(),
                         "host": socket.gethostname(), "pid": os.getpid(),
                         "code_version": self.code_version, "elapsed_s": 0.0})
        self.rd.update_meta(status="running", sessions=sessions)
        status = "interrupted"
        try:
            self._fit(self.searcher, self.scheduler)
            left = [t for t in self.study.get_trials(deepcopy=False)
                    if t.state.name == "RUNNING"]
            status = "interrupted" if left else "finished"
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            sessions[-1].update(ended=now_iso(),
                                elapsed_s=round(time.monotonic() - self.t0, 3))
            self.rd.update_meta(status=status, sessions=sessions)
        self._finish(status)
        sessions[-1].update(timing=self.clock.summary())
        self.rd.update_meta(sessions=sessions)
        return self.rd.path

    def _heartbeat(self, force: bool = False) -> None:
        """Write this session's elapsed time to run.json (at most every 10 s unless
        ``force``), so a SIGKILLed session still counts its wall time."""
        now = time.monotonic()
        if not force and now - getattr(self, "_beat", 0.0) < 10.0:
            return
        self._beat = now
        self.sessions[-1].update(elapsed_s=round(now - self.t0, 3), updated=now_iso())
        self.rd.update_meta(sessions=self.sessions)

    def _setup(self, elapsed_before: float) -> None:
        """Everything before Ray: a user error here leaves no trace in the run directory
        beyond what was there (a fresh one is removed by `run_search`)."""
        from nas.drivertime import timed_searcher
        from nas.progress import Progress
        from nas.searcher import StudySearcher, make_sampler

        exp = self.exp
        self.t0 = time.monotonic()
        self.space = exp.space_object()
        if not self.address:
            self._check_target()
        self.fail_numbers = _fail_numbers()
        try:
            sampler = make_sampler(exp.sampler.type, exp.sampler.seed + self.session - 1,
                                   exp.sampler.population)
        except ValueError as exc:
            raise SearchError(str(exc)) from None
        self.settings = self._settings(self._prepare_data())
        if exp.fidelity.init is not None:
            from nas.parent import ParentError, check_init

            try:
                check_init(exp)
            except ParentError as exc:
                raise SearchError(str(exc)) from None
        self.study = self._open_study(sampler)
        from nas.encoding import space_for_study

        self.space, note = space_for_study(self.space, self.study, self.rd.path)
        if note:
            self.notes.append(note)
            print(f"note: {note}", file=sys.stderr)
        deadline = None
        if exp.budget.wall_time_s is not None:
            deadline = self.t0 + exp.budget.wall_time_s - elapsed_before
        stopped: set[str] = set()
        self.searcher = searcher = timed_searcher(StudySearcher, self.clock)(
            self.study, self.space, exp.objectives, exp.fidelity.epochs,
            make_config=self._make_config, on_finish=self._on_finish,
            max_trials=exp.budget.trials, deadline=deadline, stopped=stopped,
            constraint_limits=dict(exp.constraints), session=self.session,
            on_result=self._heartbeat,
        )
        finished = [t for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()]
        self.progress = Progress(
            exp.budget.trials,
            None if deadline is None else deadline - self.t0,
            running=lambda: len(searcher._live),
            enabled=self.show,
        )
        self.progress.start(str(self.rd.path), self.session, len(finished),
                            sum(t.user_attrs.get("status") == "FAIL" for t in finished))
        from nas.schedulers import make_scheduler

        self.scheduler = make_scheduler(exp, stopped)

    def _open_study(self, sampler: Any) -> Any:
        import optuna

        try:
            url = self.rd.storage_url(self.exp.storage_url())
        except ExperimentError as exc:
            raise SearchError(str(exc)) from None
        from nas.storage import describe

        shown = mask_text(describe(url))  # messages never show a password
        name = self.rd.name
        directions = ["maximize" if d == "max" else "minimize"
                      for d in self.exp.objectives.values()]
        try:
            existing = name in optuna.get_all_study_names(storage=url)
        except Exception as exc:  # noqa: BLE001 - any storage failure is the user's to fix
            raise SearchError(mask_text(f"storage {shown}: cannot open ({exc})")) from None
        if self.session == 1 and existing:
            raise SearchError(
                f"storage {shown} already holds a study named {name!r}; choose another --name"
            )
        study = optuna.create_study(
            study_name=name, storage=url, directions=directions, sampler=sampler,
            load_if_exists=True,
        )
        if not existing:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # set_metric_names is "experimental"
                study.set_metric_names(list(self.exp.objectives))
            points = []
            if self.exp.seed_references:
                points = list(self.space.reference_points().items())
                if self.exp.budget.trials is not None:
                    points = points[: self.exp.budget.trials]
                for ref_name, params in points:
                    study.enqueue_trial(params, user_attrs={"reference": ref_name})
            pre = self.exp.sampler.prescreen
            if pre is not None:  # the zero-cost proxy's best, after the references
                from nas.prescreen import enqueue_prescreened

                left = None if self.exp.budget.trials is None else \
                    self.exp.budget.trials - len(points)
                enqueue_prescreened(study, self.space, pre, self.exp.sampler.seed, left)
        return study

    def _prepare_data(self) -> str:
        exp = self.exp
        if exp.data.synthetic is not None:
            from evaluators.synth import make_synthetic

            syn = exp.data.synthetic
            path = make_synthetic(self.rd.data_dir.resolve() / "synthetic", exp.task,
                                  **dataclasses.asdict(syn))
            return str(path)
        path = Path(exp.data.path or "")
        if not path.exists() and not self.address:
            raise SearchError(f"data.path: {path} does not exist")
        if path.exists():
            from evaluators.data import load_data_config

            try:
                load_data_config(path, exp.task)
            except (ValueError, OSError) as exc:
                raise SearchError(f"data.path: {exc}") from None
        return str(path)

    def _settings(self, data_path: str) -> TrialSettings:
        return trial_settings(self.exp, data_path, self.rd.latency_cache, self.rd.path)

    def _check_target(self) -> None:
        from evaluators.latency import check_target
        from evaluators.latency.telemetry import device_name

        for name, lat in self.exp.targets.items():
            where = "latency" if len(self.exp.targets) == 1 else f"latency.{name}"
            try:
                check_target(lat.target, device_name(lat.device), lat.allow_device_mismatch,
                             lat.device)
            except ValueError as exc:
                raise SearchError(f"{where}: {exc}") from None

    def _make_config(self, number: int, params: dict[str, Any], spec: Any,
                     reference: str | None) -> dict[str, Any]:
        config = {
            "number": number,
            "params": params,
            "arch": spec.to_dict(),
            "arch_id": spec.arch_id,
            "reference": reference,
            "session": self.session,
            "settings": self.settings,
        }
        if number in self.fail_numbers:
            config["fail_after_epoch"] = 1
        if os.environ.get("OPENNAC_EPOCH_LOG"):  # fault benchmarks (`nas.faults`)
            config["epoch_log"] = os.environ["OPENNAC_EPOCH_LOG"]
        return config

    def _connect(self) -> None:
        """Start or join Ray; on a cluster, check that every node sees the run directory
        (`nas.cluster`) before the session is recorded."""
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # An INFEASIBLE or failed trial reports no AP: that is not an error (ASHA skips it).
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
        import ray

        exp = self.exp
        self.ray_started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
            if self.address:
                try:
                    ray.init(address=self.address, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the address is the user's to fix
                    raise SearchError(f"ray address {self.address}: cannot connect ({exc})") \
                        from None
            else:  # "local": a Ray of its own even where RAY_ADDRESS names a Jobs API
                cpus = exp.ray.num_cpus or max(
                    1, math.ceil(exp.budget.concurrency * exp.resources.cpu)
                )
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **kwargs)
            self.ray_started = True
        try:
            check_shared_dirs([self.rd.path, exp.ray.storage_path or self.rd.ray_dir])
        except ClusterError as exc:
            if self.ray_started:
                ray.shutdown()
            raise SearchError(str(exc)) from None

    def _fit(self, searcher: Any, scheduler: Any) -> None:
        import ray
        from ray import tune

        from nas.trial import run_trial

        exp = self.exp
        started = self.ray_started
        try:
            self._parent()
        except BaseException:
            if started:
                ray.shutdown()
            raise
        resources: dict[str, float] = {"cpu": exp.resources.cpu, "gpu": exp.resources.gpu}
        if exp.resources.accelerator_type:
            resources[f"accelerator_type:{exp.resources.accelerator_type}"] = 0.001
        resources.update(exp.resources.custom)
        storage = exp.ray.storage_path or str(self.rd.ray_dir.resolve())
        tuner = tune.Tuner(
            tune.with_resources(run_trial, resources),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=-1,
                max_concurrent_trials=exp.budget.concurrency,
                reuse_actors=True,  # no new worker process (and imports) per trial
                trial_dirname_creator=trial_dirname,
                trial_name_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=f"{self.rd.name}-session-{self.session}",
                storage_path=storage,
                verbose=0,
                # a trial whose worker or node died runs again (same config, same number)
                failure_config=tune.FailureConfig(max_failures=exp.resources.max_retries),
            ),
        )
        from nas.runlock import StopWatch

        self.clock.mark = time.monotonic()  # until the first ask: startup.tuner
        previous = _sigterm_as_sigint()
        watch = StopWatch(self.rd.path, lambda: os.kill(os.getpid(), signal.SIGINT))
        watch.clear()  # a request left from before this session is not for it
        watch.start()
        try:
            tuner.fit()
        finally:
            self._fit_end = time.monotonic()
            watch.stop()
            if watch.requested:
                self.notes.append("stopped by `opennac stop`")
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if started:
                ray.shutdown()

    def _parent(self) -> None:
        """Warm starts: find, check or train the parent, before any trial (`nas.parent`)."""
        from nas.parent import ParentError, resolve_parent

        if self.exp.fidelity.init is None:
            return
        say = print if self.show else (lambda _line: None)
        try:
            record = resolve_parent(self.exp, self.rd.path, self.settings, say=say)
        except ParentError as exc:
            raise SearchError(str(exc)) from None
        self.settings = dataclasses.replace(self.settings, parent=record["path"])
        self.rd.update_meta(parent=record)

    # -- after each trial and at the end ----------------------------------------------------------
    def _on_finish(self, frozen: Any) -> None:
        self.clock.trials += 1
        self._last_told = time.monotonic()
        with self.clock.per_trial("files_s"):
            self._after_trial(frozen)

    def _after_trial(self, frozen: Any) -> None:
        from nas.weights import work_dir_of

        shutil.rmtree(work_dir_of(self.rd.path, frozen.number), ignore_errors=True)
        row = trial_row(frozen)
        if row["status"] in ("COMPLETE", "STOPPED") and row.get("reused_from") is None:
            self._write_arch(row, frozen.params)
        df = self._write_table()
        self._prune_weights(df)
        full = df[df["number"] == row["number"]]
        shown = full.iloc[0].to_dict() if len(full) else row
        self.progress.trial_finished(shown, _counts(df), self._front(df))
        self._heartbeat(force=True)

    def _write_arch(self, row: dict[str, Any], params: dict[str, Any]) -> Path:
        from models.archfile import save_arch
        from nas.rundir import row_metrics

        spec = self.space.replay(params)
        metrics = row_metrics(row)
        metrics["status"] = row["status"]
        metrics["full_fidelity"] = bool(row.get("full_fidelity"))
        return save_arch(spec, self.rd.arch_path(spec.arch_id), metrics=metrics,
                         provenance=self._provenance(row, params), name=row.get("reference"))

    def _provenance(self, row: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {
            "run": self.rd.name,
            "experiment": self.exp.name,
            "trial": int(row["number"]),
            "session": row.get("session"),
            "space": {"name": self.exp.space.name, **self.exp.space.overrides},
            "params": dict(params),
            "seed": self.exp.fidelity.seed,
            "code_version": self.code_version,
            "created": now_iso(),
        }

    def _write_table(self) -> Any:
        from nas.noise import with_noise

        rows, self.band = with_noise(self.rd.study_rows(self.study), self.exp)
        return self.rd.write_trials(rows)

    def _front(self, df: Any) -> Any:
        from nas.noise import mark_ties

        return mark_ties(pareto(df, self.exp.objectives), self.band)

    def _prune_weights(self, df: Any) -> None:
        from nas.weights import prune_weights

        prune_weights(self.rd.path, df, self.exp.objectives, self.exp.weights.keep)

    def _finish(self, status: str) -> None:
        clock = self.clock
        last = getattr(self, "_last_told", None)
        if last is not None and getattr(self, "_fit_end", None) is not None:
            clock.add("finish", "tune", time.monotonic() - last)  # Tune and Ray shutting down
        with clock.phase("finish", "table"):
            self._clean_work()
            df = self._write_table()
            front = self._front(df)
            front.to_csv(self.rd.pareto_csv, index=False)
            self.rd.update_meta(noise=self.band.to_dict())
        with clock.phase("finish", "variants"):
            variants = self._variants(df, measure=status == "finished")
            self._prune_weights(df)
        with clock.phase("finish", "plots"):
            self._plots(df)
        counts = _counts(df)
        if status == "interrupted":
            self.notes.append(f"interrupted: continue with `opennac resume {self.rd.path}`")
        if self.show:
            self.progress.summary(str(self.rd.path), status, counts, front, variants, self.notes,
                                  noise=self.band.describe(), warnings=self.warnings)

    def _clean_work(self) -> None:
        """Remove the work folders of trials that are no longer RUNNING (left by a stop)."""
        from nas.weights import WORK_DIR

        folder = self.rd.path / WORK_DIR
        if not folder.is_dir():
            return
        running = {t.number for t in self.study.get_trials(deepcopy=False)
                   if t.state.name == "RUNNING"}
        for path in folder.glob("trial_*"):
            number = path.name.removeprefix("trial_")
            if number.isdigit() and int(number) not in running:
                shutil.rmtree(path, ignore_errors=True)

    def _variants(self, df: Any, measure: bool) -> dict[str, str]:
        """Variants, one set per latency target; a reference latency the trials did not
        measure is measured here only at the end of a local sweep (not after an interruption,
        not from a cluster's head)."""
        out: dict[str, str] = {}
        several = len(self.exp.targets) > 1
        for target in self.exp.targets:
            lines = update_variants(self.rd, self.exp, df,
                                    measure_missing=measure and not self.address,
                                    notes=self.notes, warnings=self.warnings, target=target)
            out.update({f"{target}/{k}" if several else k: v for k, v in lines.items()})
        return out

    def _plots(self, df: Any) -> None:
        from nas.plots import plot_fronts

        self.rd.plots_dir.mkdir(exist_ok=True)
        for column in latency_columns(self.exp):
            if len(valid_trials(df, column)) == 0:
                continue
            stem = "pareto" if column == "latency_ms" else f"pareto-{column.split('@')[1]}"
            for suffix in ("png", "html"):
                try:
                    plot_fronts({self.rd.name: df}, path=self.rd.plots_dir / f"{stem}.{suffix}",
                                x=column, objectives={"ap": "max", column: "min"})
                except Exception as exc:  # noqa: BLE001 - plots are a convenience
                    self.notes.append(f"plot {stem}.{suffix} skipped: {exc}")


# -- helpers ------------------------------------------------------------------------------------
def latency_columns(exp: Experiment) -> list[str]:
    """The latency column of each target: ``latency_ms`` with one target, else
    ``latency_ms@<target>`` (one front, one plot and one variant set each)."""
    if len(exp.targets) == 1:
        return ["latency_ms"]
    return [f"latency_ms@{name}" for name in exp.targets]


def trial_dirname(trial: Any) -> str:
    """Ray trial folder / name: ``trial_<optuna number>``."""
    return f"trial_{trial.config.get('number', trial.trial_id)}"


def pareto(df: Any, objectives: dict[str, str]) -> Any:
    """The front of the valid trials (`valid_trials`) in the given objectives."""
    from nas.pareto import pareto_front

    pool = valid_trials(df)
    if pool is None or len(pool) == 0:
        return df.iloc[0:0] if df is not None else df
    cols = [c for c in objectives if c in pool.columns]
    pool = pool.dropna(subset=cols)
    return pareto_front(pool, {c: objectives[c] for c in cols}, only_valid=False)


def _counts(df: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in df["status"].value_counts().items()}


def _sigterm_as_sigint() -> Any:
    """Make SIGTERM (``ray job stop``, ``kill``) stop the sweep like Ctrl+C: Ray Tune ends it
    gracefully and the run directory is left ready to resume. Returns the previous handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def forward(signum: int, frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    return signal.signal(signal.SIGTERM, forward)


def _fail_numbers() -> set[int]:
    from nas.trial import fail_trials_from_env

    try:
        return fail_trials_from_env()
    except ValueError as exc:
        raise SearchError(str(exc)) from None


__all__ = [
    "SearchError",
    "latency_columns",
    "pareto",
    "resume_search",
    "run_search",
    "trial_dirname",
    "trial_settings",
]
