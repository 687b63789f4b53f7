"""The parent of a warm-started search (``fidelity.init``): found, checked, or trained once.

With ``init: {parent: CKPT}`` the checkpoint is checked (format, task) and used as it is. With
``init: {parent: train, arch: NAME_OR_FILE, epochs: E}`` the parent is trained once, as a Ray task
with one trial's resources, at the experiment's fidelity for E epochs, into
``RUN_DIR/parent/last.pt``. A finished parent is reused (a resumed search, a second session); a
parent whose training was interrupted continues from its last epoch. Every candidate then
inherits from it (`evaluators.inherit`) and, with ``fidelity.distill``, is taught by it.

The search records the parent in run.json (``parent``: path, arch_id, task, epochs, AP, how
long it took) and each trial row records ``init`` and ``inherited_fraction``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PARENT_DIR = "parent"


class ParentError(ValueError):
    """A parent that cannot be used; the message names the key, the file and the value."""


def resolve_parent(exp: Any, run_dir: Path, settings: dict[str, Any],
                   say: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The parent record of ``exp`` (None: candidates start from scratch), training it first
    when the experiment asks for ``parent: train`` and ``run_dir`` has no finished one.
    Needs Ray initialised for the training."""
    init = exp.fidelity.init
    if init is None:
        return None
    if init.parent != "train":
        return {**_check_path_parent(exp), "trained_here": False}
    spec = parent_spec(exp)
    path = Path(run_dir) / PARENT_DIR / "last.pt"
    done = _finished(path, spec.arch_id, init.epochs)
    if done is None:
        t0 = time.monotonic()
        say(f"opennac: training the parent {init.arch} ({spec.short_id}, {init.epochs} "
            f"epochs) once, into {path.parent}")
        _train_remote(exp, spec, path.parent, settings)
        done = _finished(path, spec.arch_id, init.epochs)
        if done is None:
            raise ParentError(f"{path}: the parent's training did not finish")
        say(f"opennac: parent trained in {time.monotonic() - t0:.0f} s: ap {done['ap']:.4f}")
    else:
        say(f"opennac: parent {init.arch} ({spec.short_id}) reused from {path} "
            f"(ap {done['ap']:.4f})")
    return {**done, "trained_here": True, "name": init.arch}


def check_init(exp: Any) -> None:
    """Refuse an unusable parent before anything starts (no Ray, no training)."""
    init = exp.fidelity.init
    if init is None:
        return
    if init.parent == "train":
        parent_spec(exp)
    else:
        _check_path_parent(exp)


def _check_path_parent(exp: Any) -> dict[str, Any]:
    child = exp.space_object().sample_random(0)  # every candidate has its task and keypoints
    return check_parent(exp.fidelity.init.parent, child, distill=exp.fidelity.distill is not None)


def check_parent(path: str | Path, child: Any, distill: bool = False) -> dict[str, Any]:
    """The record of a parent checkpoint, refusing one that cannot start (or teach) a model
    like ``child`` (an ArchSpec of the search's space)."""
    from evaluators.checkpoint import CheckpointError, load_checkpoint
    from evaluators.inherit import check_init_compatible

    try:
        doc = load_checkpoint(path)
        check_init_compatible(child, doc["spec"], path)
    except (CheckpointError, ValueError) as exc:
        raise ParentError(f"fidelity.init.parent: {exc}") from None
    ptask = doc["spec"].task
    if distill and ptask != child.task:
        raise ParentError(f"fidelity.distill: the parent {path} is a {ptask} model; it can "
                          f"only teach a {ptask} search")
    if distill:
        from evaluators.distill import check_teacher

        try:  # the trainer's own rule (reg_max, classes), checked before anything starts
            check_teacher(doc["spec"], child, path)
        except ValueError as exc:
            raise ParentError(f"fidelity.distill: {exc}") from None
    return _record(Path(path), doc)


def parent_spec(exp: Any) -> Any:
    """The architecture of ``parent: train``: a reference point of the experiment's space (as
    the space scales it), else a frozen architecture file."""
    arch = exp.fidelity.init.arch
    refs = exp.space_object().reference_specs()
    if arch in refs:
        spec = refs[arch]
    elif Path(arch).is_file():
        from models.archfile import load_arch
        from models.spec import SpecError

        try:
            spec = load_arch(arch)
        except (SpecError, ValueError, OSError) as exc:
            raise ParentError(f"fidelity.init.arch: {exc}") from None
    else:
        raise ParentError(f"fidelity.init.arch: {arch!r} is neither a reference point of space "
                          f"{exp.space.name} ({', '.join(refs) or 'none'}) nor an architecture "
                          "file")
    if spec.task != exp.task:
        raise ParentError(f"fidelity.init.arch: {arch} is a {spec.task} model, the search's "
                          f"task is {exp.task}")
    return spec


def train_parent(spec_dict: dict[str, Any], settings: Any, epochs: int,
                 out_dir: str) -> dict[str, Any]:
    """Train (or continue training) the parent into ``out_dir`` (a Ray task's body)."""
    import torch

    from evaluators.trainer import train_candidate
    from models.spec import ArchSpec
    from nas.trial import _data_config, train_config

    torch.set_num_threads(int(settings.fidelity.threads or 1))
    spec = ArchSpec.from_dict(spec_dict)
    result = train_candidate(spec, _data_config(settings), train_config(settings, epochs),
                             out_dir=out_dir, resume=True)
    return result.to_dict()


def _train_remote(exp: Any, spec: Any, out_dir: Path, settings: Any) -> None:
    import ray

    remote = ray.remote(train_parent).options(num_cpus=exp.resources.cpu,
                                              num_gpus=exp.resources.gpu, max_retries=0)
    ray.get(remote.remote(spec.to_dict(), settings, exp.fidelity.init.epochs,
                          str(out_dir.resolve())))


def _finished(path: Path, arch_id: str, epochs: int) -> dict[str, Any] | None:
    """The record of a finished parent at ``path`` (None: absent, unfinished or another
    architecture, which is trained again into the same place)."""
    from evaluators.checkpoint import CheckpointError, load_checkpoint

    if not path.is_file():
        return None
    try:
        doc = load_checkpoint(path)
    except CheckpointError:
        return None
    if doc["spec"].arch_id != arch_id or int(doc["epoch"]) < epochs:
        return None
    return _record(path, doc)


def _record(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    metrics = doc.get("metrics") or {}
    return {
        "path": str(Path(path).resolve()),
        "arch_id": doc["spec"].arch_id,
        "task": doc["spec"].task,
        "epochs": int(doc["epoch"]),
        "ap": float(metrics.get("ap") or 0.0),
        "wall_s": round(float(doc.get("wall_s") or 0.0), 3),
        "recipe": (doc.get("recipe") or {}).get("label"),
    }


__all__ = [
    "PARENT_DIR",
    "ParentError",
    "check_init",
    "check_parent",
    "parent_spec",
    "resolve_parent",
    "train_parent",
]
