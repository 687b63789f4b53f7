"""Experiment files: a strict, validated description of one search.

An experiment file is YAML. Every section is a small dataclass; unknown keys, wrong types and
bad values raise `ExperimentError`, whose message names the file and the key path. Relative
paths in the file (``data.path``, ``latency.predictor``) are resolved against the file's folder.
`Experiment.to_dict()` is the resolved form written to ``RUN_DIR/experiment.yaml``; loading it
again gives an equal experiment.

Objectives and constraints are the registry's (`nas.objectives`): ``objectives`` maps a
registered key to its direction, ``constraints`` sets ``max_<key>`` limits. ``latency`` is one
section (the old form: one target named ``default``, columns without suffix) or a mapping of
named targets; a per-target objective or constraint names its target (``latency_ms@cpu_int8``,
``max_latency_ms@cpu_int8``). ``Experiment.latency`` is the first (primary) target,
``Experiment.targets`` all of them. Format ``opennac-experiment/2``; ``/1`` files (one latency
section, the three fixed constraints with nulls) load unchanged.

Example:
    >>> from nas.experiment import load_experiment
    >>> exp = load_experiment({"name": "demo", "task": "pose",
    ...                        "space": {"name": "yolo_nas_pose"},
    ...                        "data": {"synthetic": {"images": 8}}})
    >>> exp.budget.trials, exp.objectives
    (12, {'ap': 'max', 'latency_ms': 'min'})
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

FORMAT = "opennac-experiment/2"
# /1: one ``latency:`` section and the three fixed constraints (still read; same meaning)
OLD_FORMATS = ("opennac-experiment/1",)
TASKS = ("detection", "pose")
SAMPLERS = ("nsga2", "tpe", "gp", "random")
SCHEDULERS = ("asha", "pareto_asha", "none")
# The name of the one target of the single ``latency:`` form (its columns carry no suffix).
DEFAULT_TARGET = "default"
# Default CV threshold of a latency measurement per device (latency.cv_threshold: null).
DEFAULT_CV_THRESHOLD = {"cuda": 0.05, "cpu": 0.10}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ExperimentError(ValueError):
    """A bad experiment file: the message names the file and the key."""


# -- sections -----------------------------------------------------------------------------------
@dataclass
class SpaceConfig:
    """``space:`` the search space by name; every other key is an override of that space
    (e.g. ``width_scale``, ``tiers``, ``max_depth``, ``fixed``; see docs/search_spaces.md)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyntheticData:
    """``data.synthetic:`` a small COCO-format data set generated into the run directory."""

    images: int = 16  # train + val images
    image_size: int = 64
    seed: int = 0
    val_fraction: float = 0.25  # of the images, in the val split
    crowd: bool = False  # pose: 2-6 overlapping figures of varied size per image


@dataclass
class DataSection:
    """``data:`` exactly one of ``synthetic`` or ``path`` (a folder with data.yaml, or the
    YAML itself; see docs/training.md)."""

    synthetic: SyntheticData | None = None
    path: str | None = None


@dataclass
class InitSection:
    """``fidelity.init:`` where candidates start: ``scratch`` (the default, written as null) or a
    parent whose weights every candidate inherits (docs/search.md, "Warm starts").

    ``{parent: CKPT}`` an opennac-ckpt/1 file (same task, or detection for a pose search);
    ``{parent: train, arch: NAME_OR_FILE, epochs: E}`` the search trains the parent once first
    (a reference point of the space, e.g. ``yolo_nas_pose_l``, or a frozen architecture file) at
    the experiment's fidelity for E epochs, cached in ``RUN_DIR/parent/``."""

    parent: str
    arch: str | None = None
    epochs: int | None = None


@dataclass
class DistillSection:
    """``fidelity.distill:`` the parent also teaches every candidate (knowledge distillation)."""

    weight: float = 1.0
    temperature: float = 1.0


@dataclass
class Fidelity:
    """``fidelity:`` how each candidate is trained (the short run that scores it)."""

    epochs: int = 1
    image_size: int = 64
    batch: int = 8
    train_images: int | None = None  # None: all
    val_images: int | None = None  # None: all
    seed: int = 0
    lr: float | None = None  # None: the trainer's default
    # The training recipe (models.recipe): None gives each candidate the recipe of the released
    # model nearest in head width; a name ("yolo_nas_pose_s") trains every candidate with it.
    recipe: str | None = None
    # Augmentation switches; None: the recipe's (mosaic: pose; rot90: pose M/L; mixup: det).
    mosaic: bool | None = None
    rot90: bool | None = None
    mixup: bool | None = None
    # Pose: OKS scale = box area x this (assigner and loss); None: the recipe's 0.53. 1.0 for
    # short low-resolution runs, where 0.53 leaves keypoints almost unlearnt (docs/training.md).
    oks_area_factor: float | None = None
    repeats: int = 1  # seeds per candidate (seed, seed+1, ...): the score is their mean AP
    threads: int = 1  # CPU threads per training, fixed so AP does not depend on the load
    deterministic: bool = True  # deterministic kernels where torch offers them
    # DataLoader worker processes; None: the trial's reserved CPUs beyond its threads
    # (resources.cpu - threads, so 0 with resources.cpu: 1). Samples do not depend on it.
    workers: int | None = None
    # Evaluate every N epochs (and the last); None: at the scheduler's rungs and the last only
    eval_every: int | None = None
    channels_last: bool = False  # NHWC training (docs/training.md: measured before use)
    amp_cpu: bool = False  # bf16 autocast when training on CPU (CUDA: fp16 AMP always)
    init: InitSection | None = None  # None / "scratch": every candidate from random weights
    distill: DistillSection | None = None  # needs init.parent: the parent is the teacher


@dataclass
class NoiseSection:
    """``noise:`` how score noise is measured and used (docs/search.md, "Seed noise")."""

    reference_repeats: int | None = None  # seeds per reference point; None: fidelity.repeats
    z: float = 1.96  # AP interval = mean +- z * seed sd / sqrt(seeds)


@dataclass
class LatencySection:
    """``latency:`` where and how latency is measured (and optionally predicted)."""

    target: str = "cpu"  # device name the latency is meant for ("cpu", "NVIDIA T4", ...)
    device: str = "cpu"  # "cpu" | "cuda"
    backend: str = "torch"
    precision: str = "fp32"
    batch: int = 1
    image_size: int = 640
    allow_device_mismatch: bool = False
    predictor: str | None = None  # a LatencyTable file: predicted latency checked before measuring
    warmup: int | None = None  # None: the harness default
    iters: int | None = None
    # Measure with no training of this machine running (trainings pause at an epoch boundary);
    # None: on for device "cpu", off for "cuda" (each trial has its own GPU).
    exclusive: bool | None = None
    # A timed round whose coefficient of variation exceeds this is re-measured (up to
    # max_repeats rounds) and kept with latency_stable false if none settles; None: 0.05 on a
    # GPU, 0.10 on a CPU.
    cv_threshold: float | None = None
    max_repeats: int = 3


@dataclass
class PrescreenSection:
    """``sampler.prescreen:`` score ``pool`` random architectures with a zero-cost ``proxy``
    (`evaluators.zerocost`) and enqueue the best ``keep`` as the first trials (`nas.prescreen`)."""

    proxy: str
    pool: int = 64
    keep: int = 8


@dataclass
class SamplerSection:
    """``sampler:`` the Optuna sampler that proposes architectures."""

    type: str = "nsga2"
    population: int = 8  # NSGA-II population size
    seed: int = 0
    prescreen: PrescreenSection | None = None  # None: no zero-cost pre-screen


@dataclass
class SchedulerSection:
    """``scheduler:`` ``asha`` stops candidates weak on AP early; ``pareto_asha`` stops those
    on a poor Pareto front of the objectives at each rung (`nas.schedulers`); ``none`` trains
    every one fully."""

    type: str = "none"
    grace: int = 1  # epochs before the first cut
    max_t: int | None = None  # None: fidelity.epochs
    reduction: float = 3.0


@dataclass
class Budget:
    """``budget:`` when the search stops (trials and/or wall time) and how many run at once.

    After ``wall_time_s`` no new trial starts; running trials finish."""

    trials: int | None = 12
    wall_time_s: float | None = None
    concurrency: int = 1


@dataclass
class Resources:
    """``resources:`` what one trial reserves on the Ray cluster."""

    cpu: float = 1.0
    gpu: float = 0.0
    accelerator_type: str | None = None  # Ray accelerator type, e.g. "T4"
    custom: dict[str, float] = field(default_factory=dict)  # custom Ray resources, {"t4": 1}
    # Ray Tune reruns a trial whose worker or node died up to this many times (same trial,
    # same architecture); a trial's own failure (exception, NaN, OOM) is recorded, not retried.
    max_retries: int = 3


@dataclass
class RaySection:
    """``ray:`` where the sweep runs. No address: a local Ray with ``num_cpus`` CPUs."""

    address: str | None = None  # "auto", "ray://head:10001", ...
    storage_path: str | None = None  # Ray Tune storage (dir or URI); default RUN_DIR/ray
    num_cpus: int | None = None  # local Ray only; default concurrency x resources.cpu


@dataclass
class Variants:
    """``variants:`` explicit latency budgets (ms) per name, or ``match_references``: each of
    n/s/m/l gets the measured latency of the released model of that size."""

    budgets: dict[str, float] | None = None
    # None: true unless ``budgets`` are given (the variants then use those budgets)
    match_references: bool | None = None

    @property
    def uses_references(self) -> bool:
        """Whether the budgets are the released models' latencies (no explicit budgets)."""
        return self.budgets is None


@dataclass
class WeightsSection:
    """``weights:`` which trained checkpoints the run keeps in ``RUN_DIR/weights`` (see
    `nas.weights`): ``front`` (front members and variants), ``all`` or ``none``."""

    keep: str = "front"


@dataclass
class Experiment:
    """A whole experiment file, validated (see the module docstring)."""

    name: str
    task: str
    space: SpaceConfig
    data: DataSection
    fidelity: Fidelity = field(default_factory=Fidelity)
    # {objective: direction}; a per-target objective names its target: latency_ms@cpu_int8
    objectives: dict[str, str] = field(default_factory=lambda: {"ap": "max", "latency_ms": "min"})
    # the primary (first) latency target; ``targets`` has them all by name (`_parse_latency`)
    latency: LatencySection = field(default_factory=LatencySection)
    # hard limits, checked before training (violators are never trained): max_<objective>,
    # e.g. max_latency_ms, max_params, max_latency_ms@cpu_int8, max_peak_mem_mb
    constraints: dict[str, float | None] = field(default_factory=dict)
    sampler: SamplerSection = field(default_factory=SamplerSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    ray: RaySection = field(default_factory=RaySection)
    storage: str | None = None  # Optuna storage URL; default sqlite in the run directory
    storage_env: str | None = None  # or: the environment variable holding it (nas.secrets)
    seed_references: bool = True
    variants: Variants = field(default_factory=Variants)
    weights: WeightsSection = field(default_factory=WeightsSection)
    noise: NoiseSection = field(default_factory=NoiseSection)
    calibration: str | None = None  # a calibration.json (`opennac calibrate`) the report quotes
    format: str = FORMAT
    source: str | None = field(default=None, compare=False)  # the file it came from
    targets: dict[str, LatencySection] = field(default_factory=dict, metadata={"internal": True})

    def __post_init__(self) -> None:
        if not self.targets:
            self.targets = {DEFAULT_TARGET: self.latency}

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment (defaults filled in, paths absolute), YAML-ready."""
        d = dataclasses.asdict(self)
        d.pop("source")
        targets = d.pop("targets")
        if list(targets) != [DEFAULT_TARGET]:
            d["latency"] = targets
        d["constraints"] = {k: v for k, v in d["constraints"].items() if v is not None}
        space = d.pop("space")
        d["space"] = {"name": space["name"], **space["overrides"]}
        ordered = {"format": d.pop("format"), "name": d.pop("name"), "task": d.pop("task")}
        ordered["space"] = d.pop("space")
        ordered.update(d)
        return ordered

    def storage_url(self) -> str | None:
        """The Optuna storage URL with its ``${NAME}`` / ``storage_env`` read from the
        environment (None: SQLite in the run directory); ExperimentError names a missing one."""
        from nas.secrets import SecretError, storage_url

        try:
            return storage_url(self.storage, self.storage_env, f"{self.source}: ")
        except SecretError as exc:
            raise ExperimentError(str(exc)) from None

    @property
    def cv_threshold(self) -> float:
        """The latency CV threshold: ``latency.cv_threshold``, else 0.05 GPU / 0.10 CPU."""
        if self.latency.cv_threshold is not None:
            return self.latency.cv_threshold
        return DEFAULT_CV_THRESHOLD[self.latency.device]

    @property
    def reference_repeats(self) -> int:
        """Seeds per reference point (``noise.reference_repeats``, else ``fidelity.repeats``)."""
        return self.noise.reference_repeats or self.fidelity.repeats

    def space_object(self) -> Any:
        """The configured `search_spaces.SearchSpace`."""
        from search_spaces import get_space

        return get_space(self.space.name, **self.space.overrides)


# -- loading ------------------------------------------------------------------------------------
def load_experiment(source: str | Path | dict[str, Any] | Experiment) -> Experiment:
    """Load and validate an experiment from a YAML file, a dict, or return an Experiment as is.

    A name without a path (``quickstart``) is looked up in ``./experiments/``, then in the
    installed checkout's ``experiments/`` (`shipped_experiments`).
    """
    if isinstance(source, Experiment):
        return source
    if isinstance(source, dict):
        return parse_experiment(source, "<experiment>", base=Path.cwd())
    path = find_experiment(source)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{path}: not valid YAML ({exc})") from None
    return parse_experiment(doc, str(path), base=path.parent)


def find_experiment(name_or_path: str | Path) -> Path:
    """A file path, or the name of a shipped experiment (``quickstart``, ``coco_pose``, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_experiments()
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and stem in shipped:
        return shipped[stem]
    known = ", ".join(sorted(shipped)) or "none found"
    raise ExperimentError(f"{path}: no such experiment file (shipped experiments: {known})")


def shipped_experiments() -> dict[str, Path]:
    """``{name: path}`` of the experiment files in ``./experiments/`` (the working directory:
    the checkout a Ray job was submitted with ``--working-dir .``) and in the installed
    checkout's experiments/; the working directory's win."""
    found: dict[str, Path] = {}
    for folder in (Path(__file__).resolve().parent.parent / "experiments",
                   Path.cwd() / "experiments"):
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob("*.yaml"))})
    return found


def parse_experiment(doc: Any, source: str, base: Path | None = None) -> Experiment:
    """Validate a loaded document; ``base`` resolves relative paths (None: leave them)."""
    if not isinstance(doc, dict):
        raise ExperimentError(f"{source}: expected a mapping of sections, got {_kind(doc)}")
    doc = dict(doc)
    fmt = doc.pop("format", FORMAT)
    if fmt != FORMAT and fmt not in OLD_FORMATS:
        raise ExperimentError(f"{source}: format: expected {FORMAT!r}, got {fmt!r}")
    targets = _parse_latency(doc.pop("latency", None), source)
    if isinstance(doc.get("constraints"), dict):  # an unset limit (null) is no limit
        doc["constraints"] = {k: v for k, v in doc["constraints"].items() if v is not None}
    space = doc.get("space")
    if isinstance(space, str):
        doc["space"] = space = {"name": space}
    if isinstance(space, dict):
        space = dict(space)
        if "name" not in space:
            raise ExperimentError(f"{source}: space.name: missing required key")
        doc["space"] = {"name": space.pop("name"), "overrides": space}
    elif "space" in doc:
        raise ExperimentError(
            f"{source}: space: expected a mapping with 'name', got {_kind(space)}"
        )
    fid = doc.get("fidelity")
    if isinstance(fid, dict) and "init" in fid:
        fid = doc["fidelity"] = dict(fid)
        if fid["init"] == "scratch":
            fid["init"] = None
        elif isinstance(fid["init"], str):
            raise ExperimentError(
                f"{source}: fidelity.init: expected 'scratch' or a mapping with 'parent', "
                f"got {fid['init']!r}"
            )
    exp = _build(Experiment, doc, "", source)
    exp.source = source
    if targets:
        exp.targets = targets
        exp.latency = next(iter(targets.values()))
    _check(exp, source)
    if base is not None:
        if exp.data.path is not None:
            exp.data.path = _resolve(exp.data.path, base)
        for lat in exp.targets.values():
            if lat.predictor is not None:
                lat.predictor = _resolve(lat.predictor, base)
        if exp.calibration is not None:
            exp.calibration = _resolve(exp.calibration, base)
        init = exp.fidelity.init
        if init is not None and init.parent != "train":
            init.parent = _resolve(init.parent, base)
        if init is not None and init.arch is not None and _looks_like_file(init.arch):
            init.arch = _resolve(init.arch, base)
    return exp


def _looks_like_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml", ".json")) or "/" in name


def _resolve(path: str, base: Path) -> str:
    if "://" in path:
        return path
    return str((base / Path(path).expanduser()).resolve())


# -- semantic checks ----------------------------------------------------------------------------
def _check(exp: Experiment, src: str) -> None:
    def fail(key: str, msg: str) -> None:
        raise ExperimentError(f"{src}: {key}: {msg}")

    if not _NAME_RE.match(exp.name):
        fail("name", f"expected letters, digits, '_', '-', '.' (a folder name), got {exp.name!r}")
    if exp.task not in TASKS:
        fail("task", f"expected one of {', '.join(TASKS)}, got {exp.task!r}")
    _check_space(exp, src)
    _check_storage(exp, src)
    d = exp.data
    if (d.synthetic is None) == (d.path is None):
        fail("data", "expected exactly one of 'synthetic' or 'path'")
    if d.synthetic is not None:
        _positive(fail, "data.synthetic.images", d.synthetic.images, minimum=4)
        _size(fail, "data.synthetic.image_size", d.synthetic.image_size)
        if not 0.0 < d.synthetic.val_fraction < 1.0:
            fail("data.synthetic.val_fraction",
                 f"expected a number in (0, 1), got {d.synthetic.val_fraction}")
    f = exp.fidelity
    _positive(fail, "fidelity.epochs", f.epochs)
    _size(fail, "fidelity.image_size", f.image_size)
    _positive(fail, "fidelity.batch", f.batch)
    for key in ("train_images", "val_images"):
        if getattr(f, key) is not None:
            _positive(fail, f"fidelity.{key}", getattr(f, key))
    if f.lr is not None and not f.lr > 0:
        fail("fidelity.lr", f"expected a positive number, got {f.lr}")
    if f.oks_area_factor is not None:
        if exp.task != "pose":
            fail("fidelity.oks_area_factor", "only a pose search scores keypoints by OKS")
        if not f.oks_area_factor > 0:
            fail("fidelity.oks_area_factor",
                 f"expected a positive number, got {f.oks_area_factor}")  # fmt: skip
    if f.recipe is not None:
        from models.recipe import get_recipe, list_recipes

        try:
            recipe = get_recipe(f.recipe)
        except KeyError:
            fail("fidelity.recipe", f"unknown recipe {f.recipe!r} (known: "
                 f"{', '.join(list_recipes())})")  # fmt: skip
        if recipe.task != exp.task:
            fail("fidelity.recipe", f"{f.recipe!r} is a {recipe.task} recipe, the experiment's "
                 f"task is {exp.task}")  # fmt: skip
    _positive(fail, "fidelity.repeats", f.repeats)
    _positive(fail, "fidelity.threads", f.threads)
    if f.workers is not None:
        _positive(fail, "fidelity.workers", f.workers, minimum=0)
    if f.eval_every is not None:
        _positive(fail, "fidelity.eval_every", f.eval_every)
    _check_init(f, fail)
    if exp.noise.reference_repeats is not None:
        _positive(fail, "noise.reference_repeats", exp.noise.reference_repeats)
    if not exp.noise.z > 0:
        fail("noise.z", f"expected a positive number, got {exp.noise.z}")
    _check_objectives(exp, fail)
    for i, (name, lat) in enumerate(exp.targets.items()):
        _check_latency(lat, "latency" if name == DEFAULT_TARGET else f"latency.{name}", fail)
        if i and lat.predictor is not None:
            fail(f"latency.{name}.predictor", "only the first target's predictor screens "
                 "candidates (predicted_latency_ms); move it there")
    _check_constraints(exp, fail)
    s = exp.sampler
    if s.type not in SAMPLERS:
        fail("sampler.type", f"expected one of {', '.join(SAMPLERS)}, got {s.type!r}")
    _positive(fail, "sampler.population", s.population, minimum=2)
    if s.prescreen is not None:
        from nas.prescreen import check_prescreen

        check_prescreen(s.prescreen, fail)
    sch = exp.scheduler
    if sch.type not in SCHEDULERS:
        fail("scheduler.type", f"expected one of {', '.join(SCHEDULERS)}, got {sch.type!r}")
    _positive(fail, "scheduler.grace", sch.grace)
    if sch.max_t is not None:
        _positive(fail, "scheduler.max_t", sch.max_t)
        if sch.max_t > f.epochs:
            fail("scheduler.max_t", f"expected <= fidelity.epochs ({f.epochs}), got {sch.max_t}")
    if not sch.reduction > 1:
        fail("scheduler.reduction", f"expected a number > 1, got {sch.reduction}")
    b = exp.budget
    if b.trials is None and b.wall_time_s is None:
        fail("budget", "expected 'trials' and/or 'wall_time_s'")
    if b.trials is not None:
        _positive(fail, "budget.trials", b.trials)
    if b.wall_time_s is not None and not b.wall_time_s > 0:
        fail("budget.wall_time_s", f"expected a positive number, got {b.wall_time_s}")
    _positive(fail, "budget.concurrency", b.concurrency)
    r = exp.resources
    if not r.cpu > 0:
        fail("resources.cpu", f"expected a positive number, got {r.cpu}")
    if r.gpu < 0:
        fail("resources.gpu", f"expected a number >= 0, got {r.gpu}")
    _positive(fail, "resources.max_retries", r.max_retries, minimum=0)
    cuda = any(lat.device == "cuda" for lat in exp.targets.values())
    if cuda and r.gpu <= 0:
        fail("resources.gpu", "latency.device is 'cuda': each trial needs a GPU (resources.gpu)")
    if cuda and 0 < r.gpu < 1:
        fail("resources.gpu", f"latency.device is 'cuda': a trial measures latency on its GPU, "
             f"which a fractional share ({r.gpu}) would split with other trials' trainings; "
             "expected a whole number of GPUs (1, 2, ...)")  # fmt: skip
    if exp.fidelity.channels_last and not exp.fidelity.amp_cpu and r.gpu <= 0:
        from evaluators.trainer import CPU_CHANNELS_LAST

        fail("fidelity.channels_last", f"trials train on CPU (resources.gpu 0): "
             f"{CPU_CHANNELS_LAST}")  # fmt: skip
    if exp.ray.num_cpus is not None:
        _positive(fail, "ray.num_cpus", exp.ray.num_cpus)
    if exp.weights.keep not in ("front", "all", "none"):
        fail("weights.keep", f"expected one of front, all, none, got {exp.weights.keep!r}")
    v = exp.variants
    if v.budgets is not None and v.match_references:
        fail("variants", "expected 'budgets' or 'match_references', not both")
    if v.budgets is None and v.match_references is False:
        fail("variants.match_references", "false needs variants.budgets (explicit latency "
             "budgets); without budgets the variants match the released models")
    for key, ms in (v.budgets or {}).items():
        if not _NAME_RE.match(key):
            fail(f"variants.budgets.{key}", "expected a simple name (letters, digits, '_', '-')")
        if not ms > 0:
            fail(f"variants.budgets.{key}", f"expected a positive latency in ms, got {ms}")


def _parse_latency(doc: Any, src: str) -> dict[str, LatencySection] | None:
    """``latency:``: one section (the old form: target ``default``) or ``{name: section}``
    (several targets; the first is the primary). None: the default section."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ExperimentError(f"{src}: latency: expected a mapping, got {_kind(doc)}")
    own = {f.name for f in dataclasses.fields(LatencySection)}
    if not doc or any(k in own for k in doc) or not all(isinstance(v, dict) for v in doc.values()):
        return {DEFAULT_TARGET: _build(LatencySection, doc, "latency", src)}
    out = {}
    for name, section in doc.items():
        if not _NAME_RE.match(str(name)):
            raise ExperimentError(f"{src}: latency.{name}: expected a target name (letters, "
                                  "digits, '_', '-', '.')")
        out[str(name)] = _build(LatencySection, section, f"latency.{name}", src)
    return out


def _check_objectives(exp: Experiment, fail: Any) -> None:
    """``objectives``: registered keys (per-target ones naming a latency target) with their
    direction, at least one accuracy objective (`nas.objectives`)."""
    from nas.objectives import accuracy_keys, get_objective, list_objectives, split_name

    if not exp.objectives:
        fail("objectives", "expected at least one objective")
    for name, direction in exp.objectives.items():
        key, target = split_name(name)
        try:
            obj = get_objective(key)
        except KeyError:
            fail(f"objectives.{name}",
                 f"unknown objective (known: {', '.join(list_objectives())})")  # fmt: skip
        if direction != obj.direction:
            fail(f"objectives.{name}", f"expected {obj.direction!r}, got {direction!r}")
        if exp.task not in obj.tasks:
            fail(f"objectives.{name}", f"only a {' or '.join(obj.tasks)} search reports {key}")
        _check_target_name(exp, name, key, target, obj.stage, f"objectives.{name}", fail)
    if not any(split_name(k)[0] in accuracy_keys() for k in exp.objectives):
        fail("objectives", f"expected an accuracy objective ({', '.join(accuracy_keys())})")


def _check_target_name(exp: Experiment, name: str, key: str, target: str | None, stage: str,
                       where: str, fail: Any) -> None:
    if target is None:
        return
    if stage != "target":
        fail(where, f"{key} does not depend on the latency target; write {key}")
    if target not in exp.targets or list(exp.targets) == [DEFAULT_TARGET]:
        known = ", ".join(t for t in exp.targets if t != DEFAULT_TARGET) or "none: latency has "
        fail(where, f"unknown latency target {target!r} (targets: {known}"
             f"{'the single form' if known.startswith('none') else ''})")  # fmt: skip


def _check_constraints(exp: Experiment, fail: Any) -> None:
    """``constraints``: ``max_<objective>[@target]`` of minimised objectives, positive."""
    from nas.objectives import get_objective, list_objectives, split_name

    for name, value in exp.constraints.items():
        where = f"constraints.{name}"
        key, target = split_name(name.removeprefix("max_"))
        try:
            obj = get_objective(key)
        except KeyError:
            obj = None
        if not name.startswith("max_") or obj is None or obj.direction != "min":
            keys = [k for k in list_objectives() if get_objective(k).direction == "min"]
            fail(where, f"unknown constraint (expected max_<objective> of {', '.join(keys)}, "
                 "e.g. max_latency_ms or max_latency_ms@TARGET)")  # fmt: skip
        _check_target_name(exp, name, key, target, obj.stage, where, fail)
        if value is not None and not value > 0:
            fail(where, f"expected a positive number, got {value}")


def _check_latency(lat: LatencySection, at: str, fail: Any) -> None:
    """One latency section (``at``: its key path)."""
    if lat.device not in ("cpu", "cuda"):
        fail(f"{at}.device", f"expected 'cpu' or 'cuda', got {lat.device!r}")
    _check_latency_enums(lat, at, fail)
    _positive(fail, f"{at}.batch", lat.batch)
    _size(fail, f"{at}.image_size", lat.image_size)
    for key in ("warmup", "iters"):
        value = getattr(lat, key)
        if value is not None and value < (0 if key == "warmup" else 1):
            kind = "non-negative" if key == "warmup" else "positive"
            fail(f"{at}.{key}", f"expected a {kind} integer, got {value}")
    if lat.cv_threshold is not None and not lat.cv_threshold > 0:
        fail(f"{at}.cv_threshold", f"expected a positive number, got {lat.cv_threshold}")
    _positive(fail, f"{at}.max_repeats", lat.max_repeats)


def _check_latency_enums(lat: LatencySection, at: str, fail: Any) -> None:
    """``latency.backend`` / ``precision``: registered names that the device can run."""
    from evaluators.latency.backends import PRECISIONS, get_backend, list_backends

    if lat.backend not in list_backends():
        fail(f"{at}.backend",
             f"expected one of {', '.join(list_backends())}, got {lat.backend!r}")  # fmt: skip
    if lat.precision not in PRECISIONS:
        fail(f"{at}.precision",
             f"expected one of {', '.join(PRECISIONS)}, got {lat.precision!r}")  # fmt: skip
    kinds = get_backend(lat.backend).support
    if lat.device not in kinds:
        fail(f"{at}.backend", f"{lat.backend!r} needs latency.device 'cuda'")
    if lat.precision not in kinds[lat.device]:
        fail(f"{at}.precision", f"{lat.backend!r} on {lat.device} runs "
             f"{', '.join(kinds[lat.device])}, got {lat.precision!r}")  # fmt: skip


def _check_storage(exp: Experiment, src: str) -> None:
    from nas.secrets import SecretError, check_storage

    try:
        check_storage(exp.storage, exp.storage_env, f"{src}: ")
    except SecretError as exc:
        raise ExperimentError(str(exc)) from None


def _check_space(exp: Experiment, src: str) -> None:
    from search_spaces import get_space, list_spaces

    if exp.space.name not in list_spaces():
        raise ExperimentError(
            f"{src}: space.name: unknown search space {exp.space.name!r} "
            f"(known: {', '.join(list_spaces())})"
        )
    try:
        space = get_space(exp.space.name, **exp.space.overrides)
    except (ValueError, TypeError) as exc:
        raise ExperimentError(f"{src}: space: {exc}") from None
    if space.task != exp.task:
        raise ExperimentError(
            f"{src}: task: {exp.task!r} does not match space {space.name!r} (task {space.task!r})"
        )


def _check_init(f: Fidelity, fail: Any) -> None:
    """``fidelity.init`` and ``fidelity.distill`` (the parent itself is loaded by the search)."""
    init = f.init
    if init is not None and init.parent == "train":
        if init.arch is None:
            fail("fidelity.init.arch", "parent: train needs the parent's architecture (a "
                 "reference point of the space, e.g. yolo_nas_pose_l, or a frozen file)")
        if init.epochs is None:
            fail("fidelity.init.epochs", "parent: train needs the parent's training epochs")
        _positive(fail, "fidelity.init.epochs", init.epochs)
    elif init is not None:
        for key in ("arch", "epochs"):
            if getattr(init, key) is not None:
                fail(f"fidelity.init.{key}", "only with parent: train (a parent checkpoint "
                     "already has its architecture and training)")
    if f.distill is not None:
        if init is None:
            fail("fidelity.distill", "needs fidelity.init: {parent: ...} (the parent teaches)")
        for key in ("weight", "temperature"):
            if not getattr(f.distill, key) > 0:
                fail(f"fidelity.distill.{key}",
                     f"expected a positive number, got {getattr(f.distill, key)}")


def _positive(fail: Any, key: str, value: int, minimum: int = 1) -> None:
    if value < minimum:
        fail(key, f"expected an integer >= {minimum}, got {value}")


def _size(fail: Any, key: str, value: int) -> None:
    if value < 32 or value % 32:
        fail(key, f"expected a multiple of 32 (>= 32), got {value}")


# -- generic strict conversion ------------------------------------------------------------------
def _build(cls: type, data: Any, where: str, src: str) -> Any:
    label = where or "top level"
    if not isinstance(data, dict):
        raise ExperimentError(f"{src}: {label}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)
              if f.name != "source" and not f.metadata.get("internal")}
    for key in data:
        if key not in fields or key == "format":
            allowed = ", ".join(n for n in fields if n != "format")
            raise ExperimentError(
                f"{src}: {_join(where, str(key))}: unknown key (allowed: {allowed})"
            )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ExperimentError(f"{src}: {_join(where, name)}: missing required key")
            continue
        kwargs[name] = _convert(hints[name], data[name], _join(where, name), src)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str, src: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, key, src)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, key, src)
    if origin is dict:
        _, item_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ExperimentError(f"{src}: {key}: expected a mapping, got {_kind(value)}")
        return {str(k): _convert(item_tp, v, f"{key}.{k}", src) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ExperimentError(f"{src}: {key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExperimentError(f"{src}: {key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            value = _number_string(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ExperimentError(f"{src}: {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str) or not value:
            raise ExperimentError(f"{src}: {key}: expected a non-empty string, got {value!r}")
        return value
    raise ExperimentError(f"{src}: {key}: unsupported type {tp!r}")  # pragma: no cover


def _number_string(value: str) -> Any:
    """YAML 1.1 reads ``5e6`` as a string; accept plain scientific notation for numbers."""
    try:
        return float(value)
    except ValueError:
        return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"


def dump_experiment(exp: Experiment, path: str | Path) -> Path:
    """Write the resolved experiment as YAML (a password in a URL masked: `nas.secrets`)."""
    from nas.secrets import mask

    path = Path(path)
    doc = mask(exp.to_dict())
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return path


__all__ = [
    "Experiment",
    "ExperimentError",
    "DEFAULT_TARGET",
    "FORMAT",
    "dump_experiment",
    "find_experiment",
    "load_experiment",
    "parse_experiment",
    "shipped_experiments",
]
