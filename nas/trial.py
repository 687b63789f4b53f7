"""The trainable: one candidate architecture, from its spec to its final metrics.

`run_trial(config)` is a Ray Tune function trainable, defined at module level so that Ray
workers import it from the installed package. The searcher (driver side) samples the
architecture and passes its spec; the trial then:

1. measures the ``cost`` objectives of the registry (`nas.objectives`: params and GFLOPs
   always, others the experiment names) and the predicted latency (if a latency table is
   configured), and checks the hard constraints: a violator is reported INFEASIBLE with its
   constraint values and never trained;
2. measures the ``target`` objectives (latency, ...) on each latency target (`nas.targets`:
   under the per-device lock, cached in ``RUN_DIR/latency_cache``; columns suffixed
   ``@<target>`` with several targets) and checks the constraints again;
3. trains it with ``evaluators.trainer.train_candidate`` on ``fidelity.threads`` threads with
   deterministic kernels, reporting ``{ap, latency_ms, epoch, ...}`` to Ray Tune after each
   epoch (a scheduler such as ASHA may stop it there), and keeps its trained (EMA) weights in
   ``RUN_DIR/weights`` when it completes (`nas.weights`); with ``fidelity.repeats`` (or
   ``noise.reference_repeats`` for a reference point) it trains again with seeds ``seed+1``,
   ... after that main run (whose weights are the kept ones), and its AP is the mean
   (``ap_seeds``, ``ap_sd``: `nas.noise`);
4. reports a final record with ``final: True`` and its status.

An exception or a NaN loss ends the trial with status FAIL and its reason (the sweep goes on).
Every report is a flat trials-table row (see `nas.rundir.COLUMNS`), so the last report of a
trial stopped early is still a complete row.

Fault injection for tests: ``config["fail_after_epoch"] = k`` raises after epoch ``k`` is
reported (the driver sets it for trial numbers listed in ``OPENNAC_FAIL_TRIALS``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from nas.faults import log_epoch
from nas.objectives import TrialContext, check_constraints, train_keys
from nas.settings import TrialSettings
from nas.targets import predictor, quiet_cpu


class InjectedFailure(RuntimeError):
    """Raised by a trial told to fail (OPENNAC_FAIL_TRIALS), to test failure handling."""


class _ReportError(Exception):
    """Wraps an exception raised by Ray's report so it is re-raised untouched."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def run_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable (see the module docstring)."""
    from ray import tune

    def report(metrics: dict[str, Any]) -> None:
        try:
            tune.report({k: v for k, v in metrics.items() if v is not None})
        except BaseException as exc:  # Ray stops trials through report: never swallow it
            raise _ReportError(exc) from exc

    try:
        evaluate_candidate(config, report)
    except _ReportError as err:
        raise err.exc from None


def evaluate_candidate(config: dict[str, Any], report: Any) -> dict[str, Any]:
    """The body of `run_trial` with the reporting function passed in; returns the final
    record (also reported with ``final: True``)."""
    import torch

    s: TrialSettings = config["settings"]
    # Trials run side by side: a fixed thread count each, so AP does not depend on the load.
    torch.set_num_threads(int(s.fidelity.threads or 1))
    t0 = time.perf_counter()
    rec = base_record(config)
    try:
        _evaluate(config, s, rec, report, t0)
    except _ReportError:
        raise
    except Exception as exc:  # the trial fails once, the sweep goes on (never raised to Ray,
        rec["status"] = "FAIL"  # whose FailureConfig retries only lost workers)
        rec["error"] = _reason(exc)
        rec["failure"] = failure_kind(exc)
    rec["wall_s"] = round(time.perf_counter() - t0, 3)
    rec["final"] = True
    report(rec)
    return rec


def base_record(config: dict[str, Any]) -> dict[str, Any]:
    """The row fields known before any evaluation."""
    f = config["settings"].fidelity
    rec: dict[str, Any] = {
        "number": config["number"],
        "status": "RUNNING",
        "arch_id": config["arch_id"],
        "epochs": f.epochs,
        "epochs_done": 0,
        "full_fidelity": False,
        "image_size": f.image_size,
        "train_images": f.train_images,
        "val_images": f.val_images,
        "seed": f.seed,
        "threads": int(f.threads or 1),
        "reference": config.get("reference"),
        "session": config.get("session"),
    }
    for key, value in config.get("params", {}).items():
        rec[f"param_{key}"] = value
    return rec


def _evaluate(
    config: dict[str, Any], s: TrialSettings, rec: dict[str, Any], report: Any, t0: float
) -> None:
    from models.spec import ArchSpec

    spec = ArchSpec.from_dict(config["arch"])
    if spec.arch_id != config["arch_id"]:
        raise ValueError(f"arch_id mismatch: {spec.arch_id} != {config['arch_id']}")
    # 1. cost objectives (a measure may fill several columns: one complexity pass)
    for obj in s.measured:
        if obj.stage == "cost" and rec.get(obj.key) is None:
            rec.update(obj.measure(TrialContext(spec, s, dict(rec))))
    if s.primary_latency.predictor:
        rec["predicted_latency_ms"] = round(
            float(predictor(s.primary_latency.predictor).predict(spec)), 6)
    # hard constraints before anything costly (predicted latency stands in for measured)
    if not check_constraints(rec, s.constraints, {"latency_ms": "predicted_latency_ms"}):
        rec["status"] = "INFEASIBLE"
        return

    # 2. target objectives on each latency target (serialized by the device lock, cached per
    #    run); a calibration run (`opennac calibrate`) only trains
    if not config.get("skip_latency"):
        for name, lat in s.targets.items():
            ctx = TrialContext(spec, s, dict(rec), name, lat)
            for obj in s.measured:
                if obj.stage == "target" and s.measures_on(obj, name):
                    values = obj.measure(ctx)
                    for suffix in s.suffixes(name):
                        rec.update({f"{k}{suffix}": v for k, v in values.items()})
        if not check_constraints(rec, s.constraints):
            rec["status"] = "INFEASIBLE"
            return

    # 3. short training, one report per epoch; with repeats, once per seed

    data = _data_config(s)
    f = s.fidelity
    cfg = train_config(s)
    recipe = cfg.get_recipe(spec)
    rec["recipe"] = recipe.label
    if recipe.task == "pose":
        rec["oks_area_factor"] = recipe.oks_area_factor
    # The fidelity is known before training, so a trial stopped early (ASHA) records it too.
    for key, ann_file in (
        ("train_images", data.train_annotations),
        ("val_images", data.val_annotations),
    ):
        count = image_count(ann_file, getattr(f, key), cfg.subset_seed)
        if count is not None:
            rec[key] = count

    from nas.weights import TrialWeights

    weights = TrialWeights(s, config["number"])  # kept in RUN_DIR/weights if on the front
    try:
        _train(config, s, spec, rec, report, weights, data, cfg, t0)
    except Exception:
        weights.discard()  # a failed trial is not continued: its checkpoints go
        raise


def _train(config: dict[str, Any], s: TrialSettings, spec: Any, rec: dict[str, Any],
           report: Any, weights: Any, data: Any, cfg: Any, t0: float) -> None:
    """Step 3's trainings (main run, then seed repeats); each continues from its checkpoint in
    the trial's work folder when a killed session left one (``resumed_from_epoch``)."""
    from evaluators.trainer import train_candidate
    from nas.noise import seed_summary, trial_seeds

    f = s.fidelity
    fail_after = config.get("fail_after_epoch")
    quiet = quiet_cpu(s.primary_latency)
    slot = quiet.training() if quiet else contextlib.nullcontext(None)

    def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        """After every epoch; ``metrics`` has the scores only after an evaluation (at the
        scheduler's rungs and the last epoch, or every ``fidelity.eval_every``)."""
        if quiet is not None:
            quiet.breathe()
        rec["epochs_done"] = int(epoch)
        now = time.perf_counter()
        rec["train_s"] = round(now - t_train, 3)  # so far: a stopped trial keeps its times
        rec["wall_s"] = round(now - t0, 3)
        keys = train_keys()  # the scores training reports (`nas.objectives`)
        evaluated = metrics.get(keys[0]) is not None
        for key in keys:
            if metrics.get(key) is not None:
                rec[key] = float(metrics[key])
        if rec.get("ap") is not None and not math.isfinite(rec["ap"]):
            raise FloatingPointError(f"AP is {rec['ap']} after epoch {epoch}")
        # an epoch without evaluation reports progress only (no earlier AP: ASHA ranks fresh
        # scores at its rungs)
        shown = rec if evaluated else {k: v for k, v in rec.items() if k not in keys}
        report({**shown, "epoch": int(epoch), "loss": metrics.get("loss")})
        log_epoch(config.get("epoch_log"), config["number"], epoch)
        if fail_after is not None and epoch >= fail_after:
            raise InjectedFailure(f"injected failure after epoch {epoch} (OPENNAC_FAIL_TRIALS)")

    def on_repeat_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        if quiet is not None:  # the repeats of a trial report nothing per epoch (ASHA
            quiet.breathe()   # ranks the main run); they still let a measurement in

    parent = s.parent  # a warm start: every run inherits from (and maybe distills) it
    teacher = parent if f.distill else None
    rec["init"] = "parent" if parent else "scratch"
    if parent and f.distill:
        rec["distill_weight"] = float(f.distill.weight)
    seeds = trial_seeds(f, config.get("reference"), s.reference_repeats)
    work = weights.work_dir
    resumed = checkpoint_epoch(work)
    if resumed is not None:
        rec["resumed_from_epoch"] = resumed
    t_train = time.perf_counter()
    runs = []
    with slot:
        for i, seed in enumerate(seeds):  # the first seed (fidelity.seed) is the main run
            run_cfg = dataclasses.replace(cfg, seed=seed)
            out_dir = None if work is None else work if i == 0 else work / f"seed_{seed}"
            runs.append(train_candidate(
                spec, data, run_cfg, on_epoch_end=on_epoch if i == 0 else on_repeat_epoch,
                out_dir=out_dir, resume=True,  # the main run's weights are kept
                init=parent, teacher=teacher,
            ))
            if i == 0 and runs[0].resumed_from_epoch is not None:
                rec["resumed_from_epoch"] = int(runs[0].resumed_from_epoch)
            if i == 0 and runs[0].inherited_fraction is not None:
                rec["inherited_fraction"] = round(float(runs[0].inherited_fraction), 6)
            ap = float(runs[-1].ap)
            if not math.isfinite(ap):
                raise FloatingPointError(f"final AP is {ap} (seed {seed})")
    rec["train_s"] = round(time.perf_counter() - t_train, 3)
    out = runs[0].to_dict()
    for key in train_keys()[1:]:  # ap itself: seed_summary below
        values = [r.to_dict().get(key) for r in runs]
        if all(v is not None for v in values):
            rec[key] = float(sum(values) / len(values))
    rec.update(seed_summary([r.ap for r in runs]))
    if runs[0].loss is not None:  # the main run's last training loss: a determinism fingerprint
        rec["train_loss"] = float(runs[0].loss)
    if rec.get("ap") is None or not math.isfinite(rec["ap"]):
        raise FloatingPointError(f"final AP is {rec.get('ap')}")
    rec["epochs_done"] = int(out.get("epochs", f.epochs))
    for key in ("train_images", "val_images", "image_size", "seed"):
        if out.get(key) is not None:
            rec[key] = out[key]
    rec["full_fidelity"] = rec["epochs_done"] >= f.epochs
    rec["status"] = "COMPLETE"
    weights.keep(rec)


def checkpoint_epoch(work_dir: Path | None) -> int | None:
    """The epoch of the per-epoch checkpoint a killed session left in ``work_dir`` (None: no
    usable checkpoint; the trainer then starts afresh)."""
    from evaluators.trainer import CHECKPOINT_NAME

    if work_dir is None or not (Path(work_dir) / CHECKPOINT_NAME).is_file():
        return None
    try:
        from evaluators.checkpoint import load_checkpoint

        return int(load_checkpoint(Path(work_dir) / CHECKPOINT_NAME)["epoch"])
    except Exception:  # noqa: BLE001 - the trainer reports a bad checkpoint itself
        return None


def failure_kind(exc: BaseException) -> str:
    """A FAIL's kind for the ``failure`` column: nan, oom, injected or exception."""
    from evaluators.trainer import TrainingDiverged

    if isinstance(exc, (TrainingDiverged, FloatingPointError)):
        return "nan"
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or (
        type(exc).__name__ == "OutOfMemoryError"
    ):
        return "oom"
    if isinstance(exc, InjectedFailure):
        return "injected"
    return "exception"


def train_config(s: TrialSettings, epochs: int | None = None) -> Any:
    """The `evaluators.trainer.TrainConfig` of a trial's ``settings``. With ``epochs``: the
    parent's training (`nas.parent`): that length, and no distillation (nothing teaches it)."""
    from evaluators.trainer import RECIPE_OPTIONS, TrainConfig

    f = s.fidelity
    kwargs: dict[str, Any] = {
        "epochs": epochs or f.epochs,
        "image_size": f.image_size,
        "batch": f.batch,
        "train_images": f.train_images,
        "val_images": f.val_images,
        "seed": f.seed,
        "device": s.train_device,
        "num_threads": int(f.threads or 1),
        "deterministic": bool(f.deterministic),
        "workers": int(getattr(s, "workers", 0) or 0),
        "channels_last": bool(getattr(f, "channels_last", False)),
        "amp_cpu": bool(getattr(f, "amp_cpu", False)),
    }
    if getattr(f, "eval_every", None) is not None:
        kwargs["eval_every"] = int(f.eval_every)
    elif getattr(s, "eval_epochs", None) is not None:
        kwargs["eval_epochs"] = tuple(s.eval_epochs)
    if f.lr is not None:
        kwargs["lr"] = f.lr
    for key in RECIPE_OPTIONS:  # None: the recipe's choice
        if getattr(f, key, None) is not None:
            kwargs[key] = getattr(f, key)
    if f.distill and epochs is None:
        kwargs["distill_weight"] = float(f.distill.weight)
        kwargs["distill_temperature"] = float(f.distill.temperature)
    return TrainConfig(**kwargs)


_COUNTS: dict[tuple[str, int, Any, int], int] = {}


def image_count(
    annotations: str | Path, subset: int | float | None, subset_seed: int = 0
) -> int | None:
    """How many images of a COCO annotation file a training run uses with ``subset`` (count,
    fraction or None for all), selected as `evaluators.data.CocoDataset` selects them; None when
    the file cannot be read (the trainer then reports the error). Cached per file version.
    """
    from evaluators.data import select_subset

    path = Path(annotations)
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns, subset, subset_seed)
        if key not in _COUNTS:
            ids = {image["id"] for image in json.loads(path.read_text())["images"]}
            _COUNTS[key] = len(select_subset(list(ids), subset, subset_seed))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _COUNTS[key]


def _data_config(s: TrialSettings) -> Any:
    """The data set; synthetic data missing on this node (a cluster worker) is regenerated
    from its seed into the same path (same arguments give the same files)."""
    from evaluators.data import load_data_config

    path = Path(s.data_path)
    synth = s.synthetic
    if synth and not path.exists():
        from evaluators.synth import make_synthetic

        folder = path.parent if path.suffix in (".yaml", ".yml") else path
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            if not path.exists():
                make_synthetic(folder, s.task, **dataclasses.asdict(synth))
    return load_data_config(path, s.task)


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 500 else text[:497] + "..."


def fail_trials_from_env() -> set[int]:
    """Trial numbers listed in OPENNAC_FAIL_TRIALS (comma-separated), for fault injection."""
    raw = os.environ.get("OPENNAC_FAIL_TRIALS", "")
    out = set()
    for part in raw.split(","):
        part = part.strip()
        if part:
            try:
                out.add(int(part))
            except ValueError:
                raise ValueError(
                    f"OPENNAC_FAIL_TRIALS: expected comma-separated trial numbers, got {raw!r}"
                ) from None
    return out


__all__ = [
    "InjectedFailure",
    "base_record",
    "checkpoint_epoch",
    "evaluate_candidate",
    "fail_trials_from_env",
    "failure_kind",
    "image_count",
    "run_trial",
]
