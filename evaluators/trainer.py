"""Short training runs that score a candidate: `train_candidate(spec, data, cfg) -> TrainResult`.

The same code trains a tiny model on a few synthetic images on a CPU and YOLO-NAS-S on COCO on a
GPU: AdamW with parameter groups (no weight decay on biases, BatchNorm and other 1-D
parameters), linear warm-up then cosine decay, an EMA of the weights (evaluated instead of the
raw weights), gradient clipping, mixed precision on CUDA, seeded data order and augmentations,
one CPU thread unless told otherwise. After each evaluation ``callback(epoch, metrics)`` gets a
flat dict (``ap``, ``ap50``, ``ap75``, ``box_ap`` for pose, ``loss``, ``epoch``, ``lr``,
``wall_s``); it may raise to stop the run. A checkpoint is written after every epoch when
``out_dir`` is given, and ``resume=True`` continues from it.

Example:
    >>> import tempfile
    >>> from evaluators.synth import make_synthetic
    >>> from evaluators.trainer import TrainConfig, train_candidate
    >>> from models.presets import get_preset
    >>> data = make_synthetic(tempfile.mkdtemp(), "detection", images=8, image_size=64)
    >>> cfg = TrainConfig(epochs=1, image_size=64, batch=4)
    >>> result = train_candidate(get_preset("yolo_nas_tiny"), data, cfg)
    >>> result.epochs, 0.0 <= result.ap <= 1.0
    (1, True)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from evaluators.checkpoint import load_checkpoint, save_checkpoint
from evaluators.coco_eval import evaluate, to_coco_results
from evaluators.data import CocoDataset, DataConfig, load_data_config, make_loader
from evaluators.determinism import deterministic_algorithms
from evaluators.latency.measure import torch_threads
from evaluators.transforms import Augment
from models.recipe import Recipe, get_recipe, recipe_for, set_bn_momentum
from models.spec import ArchSpec

if TYPE_CHECKING:
    from evaluators.distill import Distiller

# Fallbacks of the released recipes (`models.recipe`), used when no recipe resolved a config.
WEIGHT_DECAY = {"detection": 1e-5, "pose": 1e-6}
FINAL_LR_RATIO = {"detection": 0.1, "pose": 0.05}
CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.json"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``epoch`` and ``step`` (the global optimizer step,
    counted from 1) say where."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged: loss is {loss} at epoch {epoch}, step {step}")
        self.epoch = epoch
        self.step = step


# TrainConfig fields that choose the recipe and its switches: what experiments, `opennac
# train` flags and kept weights carry from one training to the next (None: the recipe's).
RECIPE_OPTIONS = ("recipe", "mosaic", "rot90", "mixup", "oks_area_factor")


@dataclass
class TrainConfig:
    """Fidelity and recipe of a short training run. ``train_images`` / ``val_images``: a count,
    a fraction in (0, 1], or None for all (a fixed, deterministic subset: ``subset_seed``)."""

    epochs: int = 10
    image_size: int = 320
    batch: int = 16
    train_images: int | float | None = None
    val_images: int | float | None = None
    seed: int = 0
    device: str = "cpu"
    lr: float = 2e-3
    # The recipe (models.recipe): loss weights and targets, BN momentum, weight decay, cosine
    # floor, augmentation defaults. None: the spec's (`recipe_for`); or a name, "yolo_nas_pose_s".
    recipe: str | None = None
    weight_decay: float | None = None  # None: the recipe's (1e-5 detection, 1e-6 pose)
    warmup: float = 1.0  # epochs of linear warm-up (from 10% of lr); fractions allowed
    final_lr_ratio: float | None = None  # cosine floor; None: the recipe's (0.1 det, 0.05 pose)
    ema: bool = True
    ema_decay: float = 0.9997
    ema_tau: float = 2000.0  # EMA decay ramps up as 1 - exp(-updates / tau)
    grad_clip: float | None = 10.0  # max gradient norm; None or 0 disables
    amp: bool = True  # mixed precision on CUDA: fp16 autocast + GradScaler
    amp_cpu: bool = False  # bf16 autocast on CPU (benchmarks/train.py --amp-cpu measures it)
    channels_last: bool = False  # NHWC model and batches (benchmarks/train.py --channels-last)
    # Augmentations (see evaluators.transforms.Augment).
    affine: bool = True
    scale: float = 0.25
    translate: float = 0.1
    degrees: float = 5.0
    flip: bool = True
    hsv: bool = True
    # None: the recipe's switch (mosaic: pose; rot90: pose M/L; mixup: detection).
    mosaic: bool | None = None
    rot90: bool | None = None
    mixup: bool | None = None
    # Pose: OKS scale = box area x this, in the assigner and the loss. None: the recipe's (0.53,
    # the reference's segment-area estimate); 1.0, the whole box, widens the OKS basin, which
    # short low-resolution runs need to learn keypoints at all (docs/training.md).
    oks_area_factor: float | None = None
    num_threads: int | None = 1  # CPU threads for torch; None leaves torch's setting
    deterministic: bool = False  # deterministic kernels where torch has them (the search: on)
    workers: int = 0  # DataLoader worker processes (kept up across epochs)
    eval_every: int = 1  # evaluate (and call the callback) every N epochs and at the end
    # or exactly at these epochs and at the end (a scheduler's rungs); None: eval_every
    eval_epochs: tuple[int, ...] | None = None
    eval_batch: int | None = None  # default: batch
    subset_seed: int = 0
    # Distillation (evaluators.distill): the weight of the distillation loss when
    # `train_candidate` gets a teacher (both or neither), and its temperature.
    distill_weight: float | None = None
    distill_temperature: float = 1.0

    def __post_init__(self) -> None:
        _positive_int("epochs", self.epochs)
        _positive_int("batch", self.batch)
        _positive_int("eval_every", self.eval_every)
        if self.eval_epochs is not None:
            if isinstance(self.eval_epochs, (str, bytes)) or not hasattr(
                    self.eval_epochs, "__iter__"):
                raise ValueError(f"eval_epochs: expected a list of epochs, got "
                                 f"{self.eval_epochs!r}")  # fmt: skip
            for e in self.eval_epochs:
                _positive_int("eval_epochs[]", e)
            self.eval_epochs = tuple(sorted(set(self.eval_epochs)))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) \
                or self.workers < 0:
            raise ValueError(f"workers: expected a count >= 0, got {self.workers!r}")
        _positive_int("image_size", self.image_size)
        if self.image_size % 32:
            raise ValueError(f"image_size: expected a multiple of 32, got {self.image_size}")
        for key in ("train_images", "val_images"):
            v = getattr(self, key)
            bad = isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0
            if v is not None and bad:
                raise ValueError(f"{key}: expected a positive count or fraction, got {v!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or self.lr <= 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr!r}")
        f = self.oks_area_factor
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0):
            raise ValueError(f"oks_area_factor: expected a positive number, got {f!r}")
        for key in ("distill_weight", "distill_temperature"):
            v = getattr(self, key)
            bad = isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf
            if (v is not None or key == "distill_temperature") and bad:
                raise ValueError(f"{key}: expected a positive number, got {v!r}")
        if not isinstance(self.device, str) or (
            self.device != "cpu" and not self.device.startswith("cuda")
        ):
            raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    def augment(self, recipe: Recipe | None = None) -> Augment:
        """The augmentations; switches left at None take ``recipe``'s (off without one)."""
        def on(value: bool | None, default: bool) -> bool:
            return bool(default if value is None else value)

        r = recipe
        return Augment(
            affine=self.affine, scale=self.scale, translate=self.translate, degrees=self.degrees,
            flip=self.flip, hsv=self.hsv,
            mosaic=on(self.mosaic, r is not None and r.mosaic),
            mosaic_prob=r.mosaic_prob if r is not None else 1.0,
            mosaic_center=r.mosaic_center if r is not None else (0.5, 1.5),
            rot90=on(self.rot90, r is not None and r.rot90),
            rot90_prob=r.rot90_prob if r is not None else 1.0,
            mixup=on(self.mixup, r is not None and r.mixup),
            mixup_prob=r.mixup_prob if r is not None else 1.0,
            mixup_scale=r.mixup_scale if r is not None else (0.5, 1.5),
        )  # fmt: skip

    def resolved(self, recipe: Recipe) -> TrainConfig:
        """This config with every recipe-dependent None filled in from ``recipe``."""
        aug = self.augment(recipe)
        return dataclasses.replace(
            self, recipe=recipe.label,
            weight_decay=recipe.weight_decay if self.weight_decay is None else self.weight_decay,
            final_lr_ratio=(
                recipe.final_lr_ratio if self.final_lr_ratio is None else self.final_lr_ratio
            ),
            mosaic=aug.mosaic, rot90=aug.rot90, mixup=aug.mixup,
            oks_area_factor=recipe.oks_area_factor if recipe.task == "pose" else None,
        )  # fmt: skip

    def get_recipe(self, spec: ArchSpec) -> Recipe:
        """The recipe named here, else ``spec``'s, with this config's ``oks_area_factor``;
        ValueError for an unknown name or a recipe of the other task."""
        if self.recipe is None:
            recipe = recipe_for(spec)
        else:
            try:
                recipe = get_recipe(self.recipe)
            except KeyError as exc:
                raise ValueError(f"recipe: {exc.args[0]}") from None
        if recipe.task != spec.task:
            raise ValueError(
                f"recipe: {recipe.label} is a {recipe.task} recipe, the model is {spec.task}"
            )
        if self.oks_area_factor is not None and recipe.task == "pose":
            recipe = dataclasses.replace(recipe, oks_area_factor=float(self.oks_area_factor))
        return recipe

    def evaluates(self, epoch: int) -> bool:
        """Whether the run evaluates after ``epoch`` (`eval_epochs`, else `eval_every`; the
        last epoch always)."""
        if epoch >= self.epochs:
            return True
        if self.eval_epochs is not None:
            return epoch in self.eval_epochs
        return epoch % self.eval_every == 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "training") -> TrainConfig:
        """Strict: an unknown key raises ValueError naming it (prefixed by ``where``)."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(names)})")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}.{exc}") from None


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


@dataclass
class TrainResult:
    """Outcome of a run with its fidelity. ``to_dict()`` is flat (no history)."""

    ap: float
    ap50: float
    ap75: float
    box_ap: float | None
    epochs: int  # completed epochs
    train_images: int
    val_images: int
    image_size: int
    seed: int
    wall_s: float
    checkpoint: str | None = None
    loss: float | None = None
    task: str = "detection"
    arch_id: str = ""
    recipe: str | None = None  # Recipe.label, "yolo_nas_pose_s/v1"
    inherited_fraction: float | None = None  # of the parameters, from ``init``; None: scratch
    resumed_from_epoch: int | None = None  # ``resume``: the epochs its checkpoint had; None: fresh
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("history")
        return d


Callback = Callable[[int, dict[str, Any]], Any]


CPU_CHANNELS_LAST = (
    "channels_last on CPU needs amp_cpu (bf16): fp32 channels-last training on CPU corrupts "
    "memory in PyTorch's oneDNN backward (measured with torch 2.14.1: the process aborts with "
    "'corrupted double-linked list' at 128 px and more; bf16, or fp32 without channels_last, "
    "runs); set amp_cpu as well, or train on CUDA"
)


def check_memory_format(channels_last: bool, amp_cpu: bool, device_type: str) -> None:
    """Refuse fp32 channels-last training on CPU (`CPU_CHANNELS_LAST`) before anything runs."""
    if channels_last and device_type == "cpu" and not amp_cpu:
        raise ValueError(CPU_CHANNELS_LAST)


def train_candidate(
    spec: ArchSpec,
    data: DataConfig | str | Path,
    cfg: TrainConfig | None = None,
    callback: Callback | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    init: str | Path | None = None,
    teacher: str | Path | None = None,
    on_epoch_end: Callback | None = None,
) -> TrainResult:
    """Train ``spec`` from scratch on ``data`` for ``cfg.epochs`` and score it with COCO AP.

    ``data`` is a DataConfig or a data YAML / directory. With ``out_dir``, ``last.pt`` and
    ``metrics.json`` are written there after every epoch; ``resume=True`` continues from
    ``out_dir/last.pt`` when it exists (otherwise starts afresh). ``init``: a checkpoint whose
    (EMA) weights the run starts from instead of a fresh initialisation: loaded exactly when
    it has the same architecture, inherited (`evaluators.inherit`) from another architecture of
    the same task or from a detection checkpoint for a pose spec; ValueError naming the file
    otherwise. The checkpoints' ``train_config`` records ``init`` and ``inherited_fraction``
    (also in the result; None from scratch). ``teacher``: a checkpoint to distil from
    (`evaluators.distill`), with ``cfg.distill_weight`` (both or neither); recorded as
    ``teacher`` in ``train_config``. ``callback(epoch, record)`` runs after each evaluation
    (`TrainConfig.evaluates`), ``on_epoch_end(epoch, record)`` after every epoch (before the
    callback; the record has the evaluation's metrics only when one ran).
    """
    from models.losses import loss_for

    cfg = cfg or TrainConfig()
    recipe = cfg.get_recipe(spec)
    cfg = cfg.resolved(recipe)
    start = time.perf_counter()
    data = data if isinstance(data, DataConfig) else load_data_config(data, spec.task)
    device = _device(cfg.device)
    check_memory_format(cfg.channels_last, cfg.amp_cpu, device.type)
    with (
        torch_threads(_cpu_threads(cfg.num_threads, device)),
        deterministic_algorithms(cfg.deterministic),
    ):
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        k = spec.num_keypoints if spec.task == "pose" else None
        train_ds = CocoDataset(
            data.train_images, data.train_annotations, spec.task, cfg.image_size, train=True,
            aug=cfg.augment(recipe), subset=cfg.train_images, subset_seed=cfg.subset_seed,
            seed=cfg.seed, num_keypoints=k, strict=data.strict,
        )  # fmt: skip
        val_ds = CocoDataset(
            data.val_images, data.val_annotations, spec.task, cfg.image_size,
            subset=cfg.val_images, subset_seed=cfg.subset_seed, num_keypoints=k,
            strict=data.strict,
        )  # fmt: skip
        if spec.task == "detection" and train_ds.num_classes > spec.num_classes:
            raise ValueError(
                f"{data.train_annotations}: {train_ds.num_classes} categories but the model "
                f"predicts {spec.num_classes} classes"
            )
        if not len(train_ds):
            raise ValueError(f"{data.train_annotations}: no training images")

        model, inherited = _initial_model(spec, recipe, device, init)
        memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if cfg.channels_last:
            model = model.to(memory_format=memory)
        loss_fn = loss_for(spec, recipe)
        use_amp = cfg.amp and device.type == "cuda"
        # fp16 on CUDA (with the GradScaler below); bf16 on CPU (no scaler: bf16 has fp32's
        # range) only when asked, as it is slower than fp32 on CPUs without bf16 units
        autocast_on = use_amp or (cfg.amp_cpu and device.type == "cpu")
        distiller = _distiller(teacher, spec, cfg, device, use_amp)
        optimizer = _optimizer(model, cfg.lr, _weight_decay(cfg, spec.task))
        ema = ModelEMA(model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None
        steps_per_epoch = math.ceil(len(train_ds) / cfg.batch)
        schedule = _lr_schedule(cfg, spec.task, steps_per_epoch)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

        first_epoch, history, wall_before, resumed = 1, [], 0.0, None
        ckpt_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
        if resume and ckpt_path is not None and ckpt_path.is_file():
            first_epoch, history, wall_before = _restore(ckpt_path, spec, model, ema, optimizer)
            resumed = first_epoch - 1
            if ema is not None:
                ema.updates = (first_epoch - 1) * steps_per_epoch
        step = (first_epoch - 1) * steps_per_epoch
        metrics: dict[str, Any] = dict(history[-1]) if history else {}
        fidelity = {
            "epochs": cfg.epochs, "image_size": cfg.image_size, "train_images": len(train_ds),
            "val_images": len(val_ds), "seed": cfg.seed, "recipe": recipe.label,
        }  # fmt: skip
        # one loader for every epoch: its worker processes (cfg.workers) stay up
        loader = make_loader(
            train_ds, cfg.batch, shuffle=True, seed=cfg.seed, epoch=first_epoch,
            workers=cfg.workers, pin_memory=device.type == "cuda",
        )  # fmt: skip
        for epoch in range(first_epoch, cfg.epochs + 1):
            model.train()
            train_ds.set_epoch(epoch)
            loader.sampler.set_epoch(epoch)
            sums: dict[str, float] = {}
            count = 0
            for images, targets in loader:
                lr = schedule(step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = images.to(device, non_blocking=True).float().div_(255.0)
                x = x.contiguous(memory_format=memory)
                with torch.autocast(device.type, enabled=autocast_on):
                    outputs = model(x)
                loss, parts = loss_fn(outputs, targets)
                if distiller is not None:
                    loss, parts = distiller.add(loss, parts, outputs, x)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(epoch, step + 1, float(loss.detach()))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update(model)
                step += 1
                count += 1
                sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
                for name, v in parts.items():
                    sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + float(v)
            record: dict[str, Any] = {k: v / max(count, 1) for k, v in sums.items()}
            record.update({"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]})
            evaluated = cfg.evaluates(epoch)
            if evaluated:
                eval_model = ema.module if ema is not None else model
                eval_batch = cfg.eval_batch or cfg.batch
                record.update(evaluate_model(eval_model, val_ds, device, eval_batch, amp=use_amp))
            record["wall_s"] = wall_before + time.perf_counter() - start
            history.append(record)
            if evaluated:
                metrics = record
            if ckpt_path is not None:
                save_checkpoint(
                    ckpt_path, spec=spec, model=model, epoch=epoch, metrics=metrics,
                    fidelity={**fidelity, "epochs_done": epoch}, ema=ema.module if ema else None,
                    optimizer=optimizer, history=history,
                    train_config={**cfg.to_dict(), "init": str(init) if init else "scratch",
                                  "inherited_fraction": inherited,
                                  "teacher": str(teacher) if teacher else None},
                    wall_s=record["wall_s"], recipe=recipe.to_dict(),
                )  # fmt: skip
                _write_metrics(ckpt_path.parent, metrics, fidelity, history, epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch, dict(record))
            if evaluated and callback is not None:
                callback(epoch, dict(record))
        done = history[-1]["epoch"] if history else 0
        return TrainResult(
            ap=float(metrics.get("ap", 0.0)),
            ap50=float(metrics.get("ap50", 0.0)),
            ap75=float(metrics.get("ap75", 0.0)),
            box_ap=float(metrics["box_ap"]) if "box_ap" in metrics else None,
            epochs=int(done),
            train_images=len(train_ds),
            val_images=len(val_ds),
            image_size=cfg.image_size,
            seed=cfg.seed,
            wall_s=wall_before + time.perf_counter() - start,
            checkpoint=str(ckpt_path) if ckpt_path is not None else None,
            loss=metrics.get("loss"),
            task=spec.task,
            arch_id=spec.arch_id,
            recipe=recipe.label,
            inherited_fraction=inherited,
            resumed_from_epoch=resumed,
            history=history,
        )


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset: CocoDataset,
    device: str | torch.device = "cpu",
    batch: int = 16,
    amp: bool = False,
) -> dict[str, float]:
    """COCO AP of ``model`` on ``dataset`` (letterboxed, no augmentation).

    Detection: ``ap``, ``ap50``, ``ap75`` of boxes. Pose: keypoint ``ap``, ``ap50``, ``ap75``
    and ``box_ap``, ``box_ap50`` of the person boxes.
    """
    from models.postprocess import postprocess

    device = torch.device(device)
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    try:
        for images, targets in make_loader(dataset, batch, shuffle=False):
            x = images.to(device).float().div_(255.0)
            with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                outputs = model(x)
            dets = postprocess([o.float() for o in outputs])
            results += to_coco_results(dets, targets, dataset.label_to_cat)
    finally:
        model.train(was_training)
    if dataset.task == "detection":
        m = evaluate(dataset.coco, results, "bbox", dataset.scored_image_ids)
        return {"ap": m["ap"], "ap50": m["ap50"], "ap75": m["ap75"]}
    kp = evaluate(dataset.coco, results, "keypoints", dataset.scored_image_ids)
    box = evaluate(dataset.coco, results, "bbox", dataset.scored_image_ids)
    return {
        "ap": kp["ap"], "ap50": kp["ap50"], "ap75": kp["ap75"],
        "box_ap": box["ap"], "box_ap50": box["ap50"],
    }  # fmt: skip


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: DataConfig | str | Path,
    image_size: int | None = None,
    val_images: int | float | None = None,
    batch: int = 16,
    device: str = "cpu",
    use_ema: bool = True,
    num_threads: int | None = 1,
) -> dict[str, Any]:
    """Evaluate a checkpoint on the val split of ``data``; image size defaults to the
    training one. Returns the metrics with ``image_size``, ``val_images``, ``epochs``."""
    from evaluators.checkpoint import model_from_checkpoint

    model, doc = model_from_checkpoint(checkpoint, use_ema=use_ema)
    spec = doc["spec"]
    data = data if isinstance(data, DataConfig) else load_data_config(data, spec.task)
    size = image_size or int(doc.get("fidelity", {}).get("image_size") or 640)
    if size % 32:
        raise ValueError(f"image_size: expected a multiple of 32, got {size}")
    dev = _device(device)
    with torch_threads(_cpu_threads(num_threads, dev)):
        ds = CocoDataset(
            data.val_images, data.val_annotations, spec.task, size, subset=val_images,
            num_keypoints=spec.num_keypoints if spec.task == "pose" else None,
            strict=data.strict,
        )  # fmt: skip
        start = time.perf_counter()
        metrics = evaluate_model(model.to(dev), ds, dev, batch)
    metrics.update(
        {"image_size": size, "val_images": len(ds), "epochs": int(doc["epoch"]),
         "task": spec.task, "arch_id": spec.arch_id, "wall_s": time.perf_counter() - start}
    )  # fmt: skip
    return metrics


class ModelEMA:
    """Exponential moving average of a model's weights and float buffers.

    The decay ramps up as ``decay * (1 - exp(-updates / tau))`` so that short runs are not
    dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9997, tau: float = 2000.0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        current = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(current[name].detach(), alpha=1 - d)
            else:
                value.copy_(current[name])


def _training_model(
    spec: ArchSpec, recipe: Recipe, device: torch.device, init: str | Path | None = None
) -> nn.Module:
    """A network of ``spec`` on ``device`` with the recipe's BatchNorm momentum, freshly
    initialised or started from the (EMA) weights of checkpoint ``init``."""
    return _initial_model(spec, recipe, device, init)[0]


def _initial_model(
    spec: ArchSpec, recipe: Recipe, device: torch.device, init: str | Path | None = None
) -> tuple[nn.Module, float | None]:
    """`_training_model` and the fraction of parameters inherited from ``init`` (None without
    one; 1.0 for a checkpoint of the same architecture)."""
    from models.build import build_model

    model = build_model(spec)
    fraction = _load_init(model, init, spec) if init is not None else None
    set_bn_momentum(model, recipe.bn_momentum)  # after loading: the recipe's, not the parent's
    return model.to(device), fraction


def _distiller(
    teacher: str | Path | None, spec: ArchSpec, cfg: TrainConfig, device: torch.device, amp: bool
) -> Distiller | None:
    """The `evaluators.distill.Distiller` of ``teacher``, or None without one."""
    if (teacher is None) != (cfg.distill_weight is None):
        raise ValueError("distill_weight: a teacher checkpoint and distill_weight go together "
                         f"(teacher {teacher}, distill_weight {cfg.distill_weight})")
    if teacher is None:
        return None
    from evaluators.distill import Distiller

    return Distiller.from_checkpoint(teacher, spec, float(cfg.distill_weight),
                                     cfg.distill_temperature, device, amp)  # fmt: skip


def _device(name: str) -> torch.device:
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but no CUDA GPU is available")
    return dev


def _cpu_threads(num_threads: int | None, device: torch.device) -> int | None:
    """The torch thread count to set for a run on ``device`` (None or 0: leave it)."""
    return num_threads if num_threads and device.type == "cpu" else None


def _weight_decay(cfg: TrainConfig, task: str) -> float:
    return WEIGHT_DECAY[task] if cfg.weight_decay is None else cfg.weight_decay


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, BatchNorm weights and other 1-D parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )  # fmt: skip


def _lr_schedule(cfg: TrainConfig, task: str, steps_per_epoch: int) -> Callable[[int], float]:
    """Linear warm-up from 10% of lr, then cosine decay to ``final_lr_ratio * lr``."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(total - 1, int(round(cfg.warmup * steps_per_epoch)))
    final = FINAL_LR_RATIO[task] if cfg.final_lr_ratio is None else cfg.final_lr_ratio

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (0.1 + 0.9 * step / warm)
        t = (step - warm) / max(1, total - warm - 1)
        return cfg.lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

    return lr_at


def _load_init(model: nn.Module, path: str | Path, spec: ArchSpec) -> float:
    """Start ``model`` from the (EMA) weights of checkpoint ``path``: loaded exactly for the
    same architecture, inherited (`evaluators.inherit`) for another one of the same task or a
    detection parent for pose. Returns the fraction of parameters inherited."""
    from evaluators.checkpoint import model_from_checkpoint
    from evaluators.inherit import check_init_compatible, inherit_weights

    source, doc = model_from_checkpoint(path, use_ema=True)
    if doc["spec"].arch_id == spec.arch_id:
        model.load_state_dict(source.state_dict())
        return 1.0
    check_init_compatible(spec, doc["spec"], path)
    return inherit_weights(model, spec, source, doc["spec"]).fraction


def _restore(
    path: Path, spec: ArchSpec, model: nn.Module, ema: ModelEMA | None, optimizer: Any
) -> tuple[int, list[dict[str, Any]], float]:
    doc = load_checkpoint(path)
    if doc["spec"].arch_id != spec.arch_id:
        raise ValueError(f"{path}: checkpoint of another architecture ({doc['spec'].short_id}, "
                         f"expected {spec.short_id}); cannot resume")
    model.load_state_dict(doc["state_dict"])
    if ema is not None:
        ema.module.load_state_dict(doc.get("ema_state_dict") or doc["state_dict"])
    if doc.get("optimizer") is not None:
        optimizer.load_state_dict(doc["optimizer"])
    history = list(doc.get("history") or [])
    return int(doc["epoch"]) + 1, history, float(doc.get("wall_s") or 0.0)


def _write_metrics(
    out_dir: Path, metrics: dict[str, Any], fidelity: dict[str, Any], history: list, epoch: int
) -> None:
    doc = {"metrics": metrics, "fidelity": {**fidelity, "epochs_done": epoch}, "history": history}
    tmp = out_dir / (METRICS_NAME + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=float))
    tmp.replace(out_dir / METRICS_NAME)


__all__ = [
    "RECIPE_OPTIONS",
    "ModelEMA",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "evaluate_checkpoint",
    "evaluate_model",
    "train_candidate",
]
