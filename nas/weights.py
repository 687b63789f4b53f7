"""Kept weights: the trained checkpoint of every front member and every variant of a run.

A trial that completes at full fidelity copies its training checkpoint, reduced to the EMA
weights (no optimizer state), to ``RUN_DIR/weights/trial_<number>.pt`` (``opennac-ckpt/1``,
loadable by `evaluators.checkpoint`; its ``train_config`` is the recipe that trained it).
After each trial the driver deletes the files of finished trials that are neither on the front
(in the run's objectives, or in AP vs latency, where variants are chosen) nor named by a
variant file, unless the experiment says ``weights: {keep: all}``; ``keep: none`` keeps
nothing. Variant files name their checkpoint (``provenance.checkpoint``, relative to the
variant file) and its recipe (``provenance.recipe``), so ``opennac export VARIANT.yaml``,
``opennac predict VARIANT.yaml`` and ``opennac train RUN --variant m --init search`` find the
weights by themselves.

Example:
    >>> from nas.weights import weights_name
    >>> weights_name(7)
    'weights/trial_0007.pt'
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WEIGHTS_DIR = "weights"
WORK_DIR = "work"  # per-trial training folders while trials run (`TrialWeights`)
KEEP_CHOICES = ("front", "all", "none")
RECIPE_KEYS = (
    "epochs", "batch", "lr", "image_size", "seed", "train_images", "val_images",
    # the training recipe (models.recipe) and its options (evaluators.trainer.RECIPE_OPTIONS)
    "recipe", "mosaic", "rot90", "mixup", "oks_area_factor",
)  # fmt: skip


def weights_name(number: int) -> str:
    """The kept checkpoint of trial ``number``, relative to the run directory."""
    return f"{WEIGHTS_DIR}/trial_{int(number):04d}.pt"


def work_dir_of(run_dir: str | Path, number: int) -> Path:
    """Where trial ``number`` writes its per-epoch checkpoints: ``RUN_DIR/work/trial_<n>``."""
    return Path(run_dir) / WORK_DIR / f"trial_{int(number):04d}"


class TrialWeights:
    """Where a trial's training writes its checkpoint, and the copy kept in the run directory.

    ``work_dir`` is the trainer's ``out_dir``: ``RUN_DIR/work/trial_<n>`` (`work_dir_of`), where
    the per-epoch checkpoint survives a killed session so that the trial, run again on resume,
    continues from its last epoch (None without a run directory: no checkpoint). `keep`
    copies its EMA weights to ``RUN_DIR/weights`` when the trial completed at full fidelity
    (unless ``keep: none``); the driver removes the folder once it has recorded the trial, a
    failed trial removes it itself (`discard`).
    """

    def __init__(self, settings: Any, number: int) -> None:
        """``settings``: the trial's `nas.settings.TrialSettings`."""
        self.dest: Path | None = None
        self._work: Path | None = None
        run_dir = settings.run_dir
        if run_dir:
            self._work = work_dir_of(run_dir, number)
            self._work.mkdir(parents=True, exist_ok=True)
            if settings.keep_weights != "none":
                self.dest = Path(run_dir) / weights_name(number)

    @property
    def work_dir(self) -> Path | None:
        return self._work

    def keep(self, record: dict[str, Any]) -> Path | None:
        """Copy the checkpoint when ``record`` is COMPLETE at full fidelity; returns the kept
        file (None otherwise). The working folder stays until the driver has recorded the
        trial (`nas.search` removes it then): a driver killed before that runs the trial again,
        which then finds its training done."""
        from evaluators.trainer import CHECKPOINT_NAME

        done = record.get("status") == "COMPLETE" and record.get("full_fidelity")
        if self.dest is not None and self.work_dir is not None and done:
            return slim_checkpoint(self.work_dir / CHECKPOINT_NAME, self.dest)
        return None

    def discard(self) -> None:
        """Remove the working folder (its checkpoints are of no further use)."""
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None


def slim_checkpoint(src: str | Path, dest: str | Path) -> Path:
    """Write ``src`` (a training checkpoint) to ``dest`` with only its EMA weights (or its
    weights when it has no EMA) as ``state_dict``: no optimizer state, about a third of the
    size. Atomic (a temporary file renamed into place)."""
    import torch

    from evaluators.checkpoint import load_checkpoint

    doc = load_checkpoint(src)
    doc.pop("spec", None)
    ema = doc.get("ema_state_dict")
    if ema is not None:
        doc["state_dict"] = ema
    doc["ema_state_dict"] = None
    doc["optimizer"] = None
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    torch.save(doc, tmp)
    os.replace(tmp, dest)
    return dest


def recipe_of(checkpoint: str | Path | None, fidelity: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe a variant was trained with: from its kept checkpoint's ``train_config``
    when there is one, else the experiment's ``fidelity``; ``init`` says where the weights
    started (``scratch`` for search trials)."""
    source: Mapping[str, Any] = fidelity
    if checkpoint is not None and Path(checkpoint).is_file():
        from evaluators.checkpoint import CheckpointError, load_checkpoint

        try:
            source = load_checkpoint(checkpoint).get("train_config") or fidelity
        except CheckpointError:
            source = fidelity
    recipe = {k: source.get(k) for k in RECIPE_KEYS if source.get(k) is not None}
    recipe["init"] = str(source.get("init") or "scratch")
    return recipe


def kept_checkpoint(arch_file: str | Path) -> Path | None:
    """The checkpoint a frozen file names in ``provenance.checkpoint`` (resolved against the
    file's folder), or None when it names none. The path may not exist (see `require_kept`)."""
    from models.archfile import load_arch_record

    path = Path(arch_file)
    if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
        return None
    ckpt = load_arch_record(path).provenance.get("checkpoint")
    if not ckpt:
        return None
    return (path.parent / str(ckpt)).resolve()


def front_numbers(df: Any, objectives: Mapping[str, str]) -> set[int]:
    """Trials whose weights are kept by ``keep: front``: the front in the run's objectives and
    the front in AP vs latency (where a variant is chosen under a latency budget)."""
    from nas.search import pareto

    numbers: set[int] = set()
    latency = [c for c in df.columns if str(c).startswith("latency_ms@")]  # one per target
    for objs in (dict(objectives), *({"ap": "max", c: "min"} for c in ["latency_ms", *latency])):
        front = pareto(df, objs)
        if front is not None and len(front):
            numbers |= {int(n) for n in front["number"]}
    return numbers


def variant_checkpoints(run_dir: str | Path) -> set[Path]:
    """The checkpoints named by the run's variant files (``variants/*.yaml``, labelled sets
    ``variants/<label>/*.yaml`` and per-target sets ``variants/<target>/[<label>/]*.yaml``)."""
    from models.archfile import ArchFileError

    out: set[Path] = set()
    folder = Path(run_dir) / "variants"
    # variants/<label>/, variants/<target>/ and variants/<target>/<label>/
    for path in [*folder.glob("*.yaml"), *folder.glob("*/*.yaml"), *folder.glob("*/*/*.yaml")]:
        try:
            ckpt = kept_checkpoint(path)
        except ArchFileError:
            continue
        if ckpt is not None:
            out.add(ckpt)
    return out


def prune_weights(
    run_dir: str | Path, df: Any, objectives: Mapping[str, str], keep: str = "front"
) -> list[Path]:
    """Delete the kept checkpoints of finished trials that are off the front and named by no
    variant; returns the deleted files. ``keep: all`` (or ``none``, which kept nothing)
    deletes nothing. Files of trials still running are never touched."""
    if keep != "front" or df is None or not len(df):
        return []
    folder = Path(run_dir) / WEIGHTS_DIR
    if not folder.is_dir():
        return []
    finished = {int(n) for n, s in zip(df["number"], df["status"], strict=True)
                if str(s) != "RUNNING"}  # fmt: skip
    protected = front_numbers(df, objectives)
    if "reused_from" in df.columns:  # a duplicate on the front keeps its original's weights
        from nas.variants import finite_float

        for number, source in zip(df["number"], df["reused_from"], strict=True):
            if int(number) in protected and finite_float(source) is not None:
                protected.add(int(finite_float(source)))
    named = variant_checkpoints(run_dir)
    deleted = []
    for number in sorted(finished - protected):
        path = Path(run_dir) / weights_name(number)
        if path.is_file() and path.resolve() not in named:
            path.unlink()
            deleted.append(path)
    return deleted


__all__ = [
    "KEEP_CHOICES",
    "RECIPE_KEYS",
    "TrialWeights",
    "WEIGHTS_DIR",
    "WORK_DIR",
    "front_numbers",
    "kept_checkpoint",
    "prune_weights",
    "recipe_of",
    "slim_checkpoint",
    "variant_checkpoints",
    "weights_name",
    "work_dir_of",
]
