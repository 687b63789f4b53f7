"""Proxy calibration: does the search's short training rank architectures like a long one?

`run_calibration(experiment, out_dir, archs=N, seeds=K, long_epochs=E)` takes N architectures of
the experiment's space (its reference points first, then random samples), trains each at the
experiment's fidelity with K seeds (``seed``, ``seed+1``, ...) and with ``long_seeds`` seeds at E
epochs (same data, same trainable as the search: `nas.trial.evaluate_candidate`, as Ray tasks,
at most ``budget.concurrency`` at a time), and writes ``calibration.json`` and
``calibration.png`` (short vs long AP, seed error bars). Every finished training is kept in
``OUT_DIR/jobs/<arch>-e<epochs>-s<seed>.json``: running it again continues where it stopped
(an output folder made with other settings is refused, never overwritten).

The numbers: Kendall tau (tau-b) and Spearman between the mean short AP and the mean long AP
over the architectures, the fraction of pairs whose order the short run gets right (pairs the
long run ties are left out), and the pooled seed standard deviation of AP at both fidelities
(at the long one only with ``long_seeds`` >= 2). A search points at the file with
``calibration: PATH``; its report quotes it and, when no trial has two seeds, its
``seed_sd_short`` stands in for the run's seed noise (`nas.noise`).

Example:
    >>> from nas.calibrate import run_calibration                          # doctest: +SKIP
    >>> cal = run_calibration("quickstart", "runs/cal", archs=12, seeds=2,
    ...                       long_epochs=90)                              # doctest: +SKIP
    >>> cal["kendall_tau"], cal["seed_sd_short"]                           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.experiment import Experiment, dump_experiment, load_experiment
from nas.rundir import code_version, now_iso

FORMAT = "opennac-calibration/1"
PLAN_FORMAT = "opennac-calibration-plan/1"
JOB_FORMAT = "opennac-calibration-job/1"
SUMMARY_KEYS = (
    "archs", "kendall_tau", "spearman", "pairs_correct", "pairs", "seed_sd_short",
    "seed_sd_long", "short_epochs", "long_epochs", "seeds", "long_seeds",
)  # fmt: skip


class CalibrationError(ValueError):
    """A calibration that cannot run; the message names the setting and what to do."""


def run_calibration(
    experiment: str | Path | dict[str, Any] | Experiment,
    out_dir: str | Path,
    archs: int = 12,
    seeds: int = 2,
    long_epochs: int | None = None,
    long_seeds: int = 1,
    concurrency: int | None = None,
    address: str | None = None,
    progress: Callable[[str], None] | None = print,
    train: bool = True,
) -> dict[str, Any]:
    """Run (or continue) a calibration into ``out_dir``; returns the calibration.json dict.

    ``long_epochs`` defaults to 3x the experiment's epochs. ``train=False`` only summarises
    the trainings already finished (``missing`` counts the others).
    """
    exp = load_experiment(experiment)
    if exp.fidelity.init is not None:
        from nas.parent import ParentError, check_init

        try:
            check_init(exp)
        except ParentError as exc:
            raise CalibrationError(str(exc)) from None
    long_epochs = long_epochs or 3 * exp.fidelity.epochs
    checks = (("--archs", archs, 3), ("--seeds", seeds, 1), ("--long-seeds", long_seeds, 1),
              ("--long-epochs", long_epochs, 1))
    for key, value, minimum in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise CalibrationError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    out = Path(out_dir)
    say = progress or (lambda _text: None)
    candidates = sample_archs(exp, archs)
    plan = _plan(exp, candidates, seeds, long_epochs, long_seeds)
    _check_plan(out, plan)
    jobs_dir = out / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    tag = start_tag(exp)
    suffix = f"-{tag}" if tag else ""  # a folder keeps one calibration per kind of start
    dump_experiment(exp, out / f"experiment{suffix}.yaml")
    jobs = _jobs(exp, candidates, seeds, long_epochs, long_seeds)
    intro = (f"opennac calibrate: {len(candidates)} archs, {seeds} seed(s) at "
             f"{exp.fidelity.epochs} epochs, {long_seeds} at {long_epochs}: ")
    results = _train_missing(exp, out, candidates, jobs, intro, train, concurrency, address, say)
    cal = calibration_stats(exp, candidates, results, seeds, long_epochs, long_seeds)
    cal["start"] = tag or "scratch"
    cal["file"] = str(out / f"calibration{suffix}.json")
    Path(cal["file"]).write_text(json.dumps(cal, indent=1) + "\n")
    try:
        plot_calibration(cal, out / f"calibration{suffix}.png")
    except Exception as exc:  # noqa: BLE001 - the figure is a convenience
        say(f"note: calibration.png skipped: {exc}")
    return cal


def train_archs(
    exp: Experiment,
    out_dir: str | Path,
    candidates: list[dict[str, Any]],
    seeds: int,
    concurrency: int | None = None,
    address: str | None = None,
    progress: Callable[[str], None] | None = print,
    train: bool = True,
) -> list[dict[str, Any]]:
    """Train every candidate (``{label, arch_id, spec}``) at the experiment's fidelity with
    ``seeds`` seeds, as `run_calibration` does its short runs; returns one record per job
    (``status`` MISSING for one not finished). Resumable the same way (``OUT_DIR/jobs``; a
    folder made with other settings is refused). Used by benchmarks/build_table.py."""
    out = Path(out_dir)
    say = progress or (lambda _text: None)
    _check_plan(out, {"format": PLAN_FORMAT, "fingerprint": _fingerprint(exp),
                      "short_epochs": exp.fidelity.epochs, "seed": exp.fidelity.seed,
                      "archs": [c["arch_id"] for c in candidates], "seeds": seeds})
    jobs_dir = out / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(exp, candidates, seeds, exp.fidelity.epochs, 0)
    intro = f"{len(candidates)} archs x {seeds} seed(s) at {exp.fidelity.epochs} epochs: "
    return _train_missing(exp, out, candidates, jobs, intro, train, concurrency, address, say)


def _train_missing(exp: Experiment, out: Path, candidates: list[dict[str, Any]],
                   jobs: list[dict[str, Any]], intro: str, train: bool,
                   concurrency: int | None, address: str | None,
                   say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Train the ``jobs`` that ``out/jobs`` lacks (unless ``train`` is false) and return every
    job's record, MISSING for one not finished; ``intro`` starts the one-line summary."""
    jobs_dir = out / "jobs"
    pending = [j for j in jobs if not _job_path(jobs_dir, j).is_file()]
    say(f"{intro}{len(jobs)} trainings, {len(jobs) - len(pending)} done before, into {out}")
    if pending and train:
        data_path = _prepare_data(exp, out)
        specs = {c["arch_id"]: c["spec"] for c in candidates}
        _run_jobs(exp, out, data_path, specs, pending, jobs_dir, len(jobs) - len(pending),
                  len(jobs), concurrency or exp.budget.concurrency, address, say)
    return [_read_job(jobs_dir, j) for j in jobs]


# --------------------------------------------------------------------------- the plan


def sample_archs(exp: Experiment, n: int) -> list[dict[str, Any]]:
    """``n`` distinct architectures of the experiment's space: its reference points first,
    then `SearchSpace.sample_random` with seeds 0, 1, ... (``{label, arch_id, spec}``)."""
    space = exp.space_object()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, spec in space.reference_specs().items():
        if len(out) < n and spec.arch_id not in seen:
            seen.add(spec.arch_id)
            out.append({"label": name, "arch_id": spec.arch_id, "spec": spec})
    seed = 0
    while len(out) < n:
        if seed > 50 * n:
            raise CalibrationError(
                f"--archs {n}: the space {exp.space.name} gave only {len(out)} distinct "
                "architectures; ask for fewer"
            )
        spec = space.sample_random(seed)
        seed += 1
        if spec.arch_id not in seen:
            seen.add(spec.arch_id)
            out.append({"label": None, "arch_id": spec.arch_id, "spec": spec})
    return out


def _fingerprint(exp: Experiment) -> dict[str, Any]:
    """What makes one job's result valid for another run: everything but seeds and epochs."""
    fid = dataclasses.asdict(exp.fidelity)
    for key in ("epochs", "seed", "repeats", "init", "distill"):  # warm starts: `start_tag`
        fid.pop(key)
    return {"task": exp.task, "space": {"name": exp.space.name, **exp.space.overrides},
            "data": dataclasses.asdict(exp.data), "fidelity": fid,
            "train_device": "cuda" if exp.resources.gpu > 0 else "cpu"}


# Fidelity keys that do not change a training's result (the loader's sample does not depend on
# its worker count; `eval_every` only adds evaluations before the last), and the value that
# keys added later had in every folder written before them.
_RESULT_NEUTRAL = ("workers", "eval_every")
_ADDED_LATER = {"channels_last": False, "amp_cpu": False}


def _comparable(fingerprint: dict[str, Any] | None) -> dict[str, Any] | None:
    """A fingerprint as compared between a folder and a run: result-neutral fidelity keys left
    out, keys the folder predates read as the value they had then (so a folder written before
    them is not refused for keys that change nothing)."""
    if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("fidelity"), dict):
        return fingerprint
    fid = {**_ADDED_LATER, **fingerprint["fidelity"]}
    for key in _RESULT_NEUTRAL:
        fid.pop(key, None)
    return {**fingerprint, "fidelity": fid}


def _plan(exp: Experiment, candidates: list[dict[str, Any]], seeds: int, long_epochs: int,
          long_seeds: int) -> dict[str, Any]:
    return {"format": PLAN_FORMAT, "fingerprint": _fingerprint(exp),
            "short_epochs": exp.fidelity.epochs, "seed": exp.fidelity.seed,
            "archs": [c["arch_id"] for c in candidates], "seeds": seeds,
            "long_epochs": long_epochs, "long_seeds": long_seeds}


def _check_plan(out: Path, plan: dict[str, Any]) -> None:
    """A new folder gets the plan; an existing one must share its fingerprint (the jobs
    differ only in number, not in kind)."""
    path = out / "plan.json"
    if out.exists() and any(out.iterdir()) and not path.is_file():
        raise CalibrationError(f"{out}: exists and is not a calibration folder (no plan.json); "
                               "choose another --output")
    if path.is_file():
        old = json.loads(path.read_text())
        old_fp, new_fp = _comparable(old.get("fingerprint")), _comparable(plan["fingerprint"])
        if old_fp != new_fp:
            diff = [k for k in new_fp if (old_fp or {}).get(k) != new_fp[k]]
            raise CalibrationError(
                f"{out}: made with other settings ({', '.join(diff) or 'format'} differ); its "
                "trainings cannot be reused: choose another --output"
            )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1) + "\n")


def _jobs(exp: Experiment, candidates: list[dict[str, Any]], seeds: int, long_epochs: int,
          long_seeds: int) -> list[dict[str, Any]]:
    s0 = exp.fidelity.seed
    jobs = []
    # Short runs first, then long ones, each seed over every arch before the next seed: a
    # calibration stopped half-way already ranks every architecture.
    for kind, epochs, count in (("short", exp.fidelity.epochs, seeds),
                                ("long", long_epochs, long_seeds)):
        for i in range(count):
            jobs += [{"arch_id": c["arch_id"], "label": c["label"], "kind": kind,
                      "epochs": epochs, "seed": s0 + i,
                      "start": start_tag(exp) if kind == "short" else ""}
                     for c in candidates]
    return jobs


def start_tag(exp: Experiment) -> str:
    """How the short runs start: "" from scratch, else a tag of ``fidelity.init`` and
    ``fidelity.distill`` (one calibration folder keeps every kind of start side by side; the
    long runs, always from scratch, are shared)."""
    f = exp.fidelity
    if f.init is None:
        return ""
    doc = {"init": dataclasses.asdict(f.init),
           "distill": dataclasses.asdict(f.distill) if f.distill is not None else None}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:8]
    return f"{'distill' if f.distill is not None else 'inherit'}-{digest}"


def _job_path(jobs_dir: Path, job: dict[str, Any]) -> Path:
    start = f"-{job['start']}" if job.get("start") else ""
    return jobs_dir / f"{job['arch_id'][:12]}-e{job['epochs']}-s{job['seed']}{start}.json"


def _read_job(jobs_dir: Path, job: dict[str, Any]) -> dict[str, Any]:
    path = _job_path(jobs_dir, job)
    try:
        doc = json.loads(path.read_text())
        doc.pop("job", None)
        return {**job, **doc}
    except (OSError, ValueError):
        return {**job, "status": "MISSING"}


# --------------------------------------------------------------------------- running


def _prepare_data(exp: Experiment, out: Path) -> str:
    if exp.data.synthetic is not None:
        from evaluators.synth import make_synthetic

        syn = exp.data.synthetic
        return str(make_synthetic(out.resolve() / "data" / "synthetic", exp.task,
                                  **dataclasses.asdict(syn)))
    path = Path(exp.data.path or "")
    if not path.exists():
        raise CalibrationError(f"data.path: {path} does not exist")
    return str(path)


def train_job(config: dict[str, Any]) -> dict[str, Any]:
    """One calibration training (a Ray task): the search's trainable, latency skipped."""
    from nas.trial import evaluate_candidate

    return evaluate_candidate(config, lambda _metrics: None)


def _run_jobs(exp: Experiment, out: Path, data_path: str, specs: dict[str, Any],
              pending: list[dict[str, Any]], jobs_dir: Path, done: int, total: int,
              concurrency: int, address: str | None, say: Callable[[str], None]) -> None:
    import logging
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import dataclasses

    import ray

    from nas.settings import trial_settings

    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address or exp.ray.address:
            ray.init(address=address or exp.ray.address, **kwargs)
        else:
            cpus = exp.ray.num_cpus or max(1, math.ceil(concurrency * exp.resources.cpu))
            ray.init(num_cpus=cpus, include_dashboard=False, **kwargs)
        started = True
    try:
        base = trial_settings(exp, data_path, out / "latency_cache")
        base = dataclasses.replace(base, constraints={}, targets={  # calibration runs only train
            k: dataclasses.replace(v, predictor=None) for k, v in base.targets.items()})
        if exp.fidelity.init is not None:  # warm-started short runs; long runs from scratch
            from nas.parent import ParentError, resolve_parent

            try:
                base = dataclasses.replace(
                    base, parent=resolve_parent(exp, out, base, say=say)["path"])
            except ParentError as exc:
                raise CalibrationError(str(exc)) from None
        remote = ray.remote(train_job).options(num_cpus=exp.resources.cpu,
                                               num_gpus=exp.resources.gpu)
        todo = list(pending)
        live: dict[Any, tuple[dict[str, Any], float]] = {}
        t0 = time.monotonic()
        while todo or live:
            while todo and len(live) < concurrency:
                job = todo.pop(0)
                if _job_path(jobs_dir, job).is_file():  # done meanwhile by another calibration
                    done += 1  # sharing this folder (the long runs are shared)
                    continue
                spec = specs[job["arch_id"]]
                fid = dataclasses.replace(base.fidelity, epochs=job["epochs"], seed=job["seed"],
                                          repeats=1)
                settings = dataclasses.replace(base, fidelity=fid)
                if job["kind"] == "long":  # the ground truth: a long run from scratch
                    settings = dataclasses.replace(
                        base, parent=None,
                        fidelity=dataclasses.replace(fid, init=None, distill=None))
                config = {"number": done + len(live), "params": {}, "arch": spec.to_dict(),
                          "arch_id": spec.arch_id, "reference": None, "session": 0,
                          "settings": settings, "skip_latency": True}
                live[remote.remote(config)] = (job, time.monotonic())
            ready, _ = ray.wait(list(live), num_returns=1)
            job, _t = live.pop(ready[0])
            rec = ray.get(ready[0])
            keep = {k: rec.get(k) for k in ("status", "error", "ap", "ap50", "box_ap",
                                            "train_s", "wall_s", "params", "threads")}
            keep.update(format=JOB_FORMAT, job=job, created=now_iso(),
                        code_version=code_version())
            if rec.get("status") == "COMPLETE":
                _job_path(jobs_dir, job).write_text(json.dumps(keep, indent=1) + "\n")
            done += 1
            label = f" ({job['label']})" if job["label"] else ""
            what = (f"ap {rec['ap']:.4f}" if rec.get("status") == "COMPLETE"
                    else f"{rec.get('status')}: {rec.get('error')}")
            say(f"[{done}/{total}] {job['arch_id'][:12]}{label} {job['kind']} "
                f"{job['epochs']} epochs seed {job['seed']}: {what} "
                f"({rec.get('train_s') or 0:.1f} s train, {time.monotonic() - t0:.0f} s elapsed)")
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------- statistics


def pooled_sd(groups: list[list[float]]) -> tuple[float | None, int]:
    """(pooled standard deviation, degrees of freedom) of groups of repeated values."""
    ss, dof = 0.0, 0
    for g in groups:
        if len(g) >= 2:
            ss += statistics.variance(g) * (len(g) - 1)
            dof += len(g) - 1
    return (math.sqrt(ss / dof), dof) if dof else (None, 0)


def rank_agreement(short: list[float], long: list[float]) -> dict[str, Any]:
    """Kendall tau-b, Spearman and the fraction of pairs ordered alike (long ties left out)."""
    from scipy import stats

    out: dict[str, Any] = {"kendall_tau": None, "spearman": None, "pairs_correct": None,
                           "pairs": 0}
    if len(short) < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: the coefficients are undefined (NaN)
        tau = stats.kendalltau(short, long).statistic
        rho = stats.spearmanr(short, long).statistic
    out["kendall_tau"] = None if not math.isfinite(tau) else round(float(tau), 4)
    out["spearman"] = None if not math.isfinite(rho) else round(float(rho), 4)
    right = pairs = 0
    for i in range(len(short)):
        for j in range(i + 1, len(short)):
            d_long = long[i] - long[j]
            if d_long == 0:
                continue
            pairs += 1
            right += (short[i] - short[j]) * d_long > 0
    out["pairs"] = pairs
    out["pairs_correct"] = round(right / pairs, 4) if pairs else None
    return out


def calibration_stats(exp: Experiment, candidates: list[dict[str, Any]],
                      results: list[dict[str, Any]], seeds: int, long_epochs: int,
                      long_seeds: int) -> dict[str, Any]:
    """The calibration.json document from the finished jobs."""
    per_arch = []
    for c in candidates:
        mine = [r for r in results if r["arch_id"] == c["arch_id"] and r.get("ap") is not None]
        short = [float(r["ap"]) for r in mine if r["kind"] == "short"]
        long = [float(r["ap"]) for r in mine if r["kind"] == "long"]
        per_arch.append({
            "arch_id": c["arch_id"], "label": c["label"], "params": int(_params(c["spec"])),
            "short_aps": short, "long_aps": long,
            "short_train_s": [r.get("train_s") for r in mine if r["kind"] == "short"],
            "long_train_s": [r.get("train_s") for r in mine if r["kind"] == "long"],
            "short_mean": statistics.fmean(short) if short else None,
            "long_mean": statistics.fmean(long) if long else None,
        })  # fmt: skip
    both = [a for a in per_arch if a["short_mean"] is not None and a["long_mean"] is not None]
    agree = rank_agreement([a["short_mean"] for a in both], [a["long_mean"] for a in both])
    sd_short, dof_short = pooled_sd([a["short_aps"] for a in per_arch])
    sd_long, dof_long = pooled_sd([a["long_aps"] for a in per_arch])
    fid = dataclasses.asdict(exp.fidelity)

    def train_s(kind: str) -> float:
        return round(sum(float(r.get("train_s") or 0) for r in results if r["kind"] == kind), 1)

    def runs(kind: str) -> int:
        return sum(1 for r in results if r["kind"] == kind and r.get("ap") is not None)

    return {
        "format": FORMAT,
        "experiment": exp.name,
        "task": exp.task,
        "space": {"name": exp.space.name, **exp.space.overrides},
        "short_fidelity": {k: fid[k] for k in ("epochs", "image_size", "batch", "train_images",
                                                "val_images", "lr", "seed", "threads")},
        "short_epochs": exp.fidelity.epochs,
        "long_epochs": long_epochs,
        "seeds": seeds,
        "long_seeds": long_seeds,
        "archs": len(both),
        **agree,
        "seed_sd_short": None if sd_short is None else round(sd_short, 6),
        "seed_dof_short": dof_short,
        "seed_sd_long": None if sd_long is None else round(sd_long, 6),
        "seed_dof_long": dof_long,
        "runs_short": runs("short"),
        "runs_long": runs("long"),
        "train_s_short": train_s("short"),
        "train_s_long": train_s("long"),
        "missing": sum(1 for r in results if r.get("ap") is None),
        "per_arch": per_arch,
        "created": now_iso(),
        "code_version": code_version(),
        "plan_id": hashlib.sha256(json.dumps(_fingerprint(exp), sort_keys=True,
                                             default=str).encode()).hexdigest()[:12],
    }


def _params(spec: Any) -> int:
    from models.complexity import complexity

    return int(complexity(spec, image_size=64).params)


def summary(cal: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a calibration (what ``--json`` prints)."""
    return {k: cal.get(k) for k in SUMMARY_KEYS}


def describe(cal: dict[str, Any]) -> str:
    """One line quoting a calibration (for reports)."""
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    return (f"{cal.get('archs')} archs, {cal.get('short_epochs')} vs {cal.get('long_epochs')} "
            f"epochs: Kendall tau {f(cal.get('kendall_tau'))}, Spearman "
            f"{f(cal.get('spearman'))}, pairs ordered right {f(cal.get('pairs_correct'))}; "
            f"seed sd of AP {f(cal.get('seed_sd_short'))} short, {f(cal.get('seed_sd_long'))} "
            "long")


# --------------------------------------------------------------------------- figure


def plot_calibration(cal: dict[str, Any], path: str | Path) -> Path:
    """Short vs long AP per architecture, error bars = seed sd (where 2+ seeds)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 5.0))
    ax = fig.add_subplot()
    pts = [a for a in cal["per_arch"]
           if a["short_mean"] is not None and a["long_mean"] is not None]

    def sd(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    ax.errorbar([a["short_mean"] for a in pts], [a["long_mean"] for a in pts],
                xerr=[sd(a["short_aps"]) for a in pts], yerr=[sd(a["long_aps"]) for a in pts],
                fmt="o", capsize=3, color="C0")  # fmt: skip
    for a in pts:
        label = (a["label"] or "").removeprefix("yolo_nas_") or a["arch_id"][:6]
        ax.annotate(label, (a["short_mean"], a["long_mean"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)  # fmt: skip
    tau = cal.get("kendall_tau")
    ax.set_xlabel(f"AP at {cal['short_epochs']} epochs (mean of {cal['seeds']} seeds)")
    ax.set_ylabel(f"AP at {cal['long_epochs']} epochs (mean of {cal['long_seeds']} seeds)")
    ax.set_title(f"{cal['experiment']}: short vs long AP, Kendall tau "
                 f"{'n/a' if tau is None else f'{tau:.2f}'}", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    return path


__all__ = [
    "FORMAT",
    "CalibrationError",
    "calibration_stats",
    "describe",
    "plot_calibration",
    "pooled_sd",
    "rank_agreement",
    "run_calibration",
    "sample_archs",
    "summary",
    "train_archs",
    "train_job",
]
