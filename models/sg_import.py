"""super-gradients 3.x YOLO-NAS / YOLO-NAS-Pose weights <-> OpenNAC weights.

The two implementations hold the same tensors under other names (measured on super-gradients
3.7.1: the seven released presets match tensor for tensor). The name mapping is derived from the
structure of the network `build_model(spec)` makes, one rule per module type, so it covers every
architecture of the space, not only the presets:

- QARepVGG: ``conv3`` / ``bn3`` / ``conv1`` / ``post_bn`` are ``branch_3x3.conv`` /
  ``branch_3x3.bn`` / ``branch_1x1`` / ``post_bn``. super-gradients also stores an unused
  ``rbr_reparam`` conv while training: skipped. A checkpoint saved after its fusion
  (``rbr_reparam`` without the branches) is refused.
- ConvBNAct: ``conv`` / ``bn``; inside the heads super-gradients nests them in ``seq``.
- Bottleneck: ``block1`` / ``block2`` / ``skip.alpha`` are ``cv1`` / ``cv2`` / ``alpha``;
  CSP body: ``path1`` / ``path2`` / ``out`` are ``conv1`` / ``conv2`` / ``conv3``.
- Neck up stage: ``reduce_in`` / ``down_skip2`` / ``reduce_concat`` / ``body`` are ``conv`` /
  ``downsample`` / ``reduce_after_concat`` / ``blocks``. Its upsampling ConvTranspose has a bias
  there and none here: the bias ``b`` is folded exactly into the next op. The upsampled map is
  the first ``C`` channels of the concat that feeds ``reduce_concat`` (a 1x1 conv without bias,
  then BN), so ``W[:, :C] @ b`` is subtracted from that BN's running mean (exact in eval mode;
  in training mode the batch mean absorbs the constant anyway).
- Shared-stem pose heads: ``bbox_adapter`` / ``pose_adapter`` are ``bbox_stem`` / ``pose_stem``.

BatchNorm momentum and epsilon are not weights: the recipes carry them (pose S and M 0.1,
everything else 0.03; pose eps 1e-6).

Example:
    >>> import torch
    >>> from models.build import build_model
    >>> from models.presets import get_preset
    >>> spec = get_preset("yolo_nas_tiny")
    >>> ours = build_model(spec).state_dict()
    >>> sg = export_sg_state_dict(spec, ours)
    >>> "backbone.stem.conv.branch_3x3.conv.weight" in sg
    True
    >>> back = import_state_dict(sg, spec)
    >>> all(torch.equal(back[k], v) for k, v in ours.items())
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from models.backbone import SPP, Backbone, BackboneStage
from models.blocks import Bottleneck, ConvBNAct, CSPBody, QARepVGG, Skip
from models.build import YoloNAS, build_model
from models.heads import DetectionHead, DetectionLevel, PoseHead, PoseLevel
from models.neck import DownStage, Neck, UpStage
from models.spec import ArchSpec

DDP_PREFIX = "module."
# Keys of a super-gradients training checkpoint that hold a model's state_dict, preferred first:
# the EMA weights are those super-gradients evaluates and keeps as its best model.
STATE_KEYS = ("ema_net", "net")

# Child names per module type: ours -> super-gradients ("" merges into the parent's prefix).
# A type listed here with a child missing from its table is a bug this module reports.
_CHILDREN: dict[type, dict[str, str]] = {
    YoloNAS: {"backbone": "backbone", "neck": "neck", "head": "heads"},
    Backbone: {"stem": "stem.conv", "stages": "", "spp": "context_module"},
    BackboneStage: {"down": "downsample", "body": "blocks"},
    SPP: {"reduce": "cv1", "out": "cv2", "pools": ""},
    Neck: {"up1": "neck1", "up2": "neck2", "down1": "neck3", "down2": "neck4"},
    UpStage: {
        "reduce_in": "conv",
        "upsample": "upsample",
        "reduce_skip1": "reduce_skip1",
        "reduce_skip2": "reduce_skip2",
        "down_skip2": "downsample",
        "reduce_concat": "reduce_after_concat",
        "body": "blocks",
    },
    DownStage: {"down": "conv", "body": "blocks"},
    CSPBody: {"path1": "conv1", "path2": "conv2", "out": "conv3", "bottlenecks": "bottlenecks"},
    Bottleneck: {"block1": "cv1", "block2": "cv2", "skip": ""},
    Skip: {},
    QARepVGG: {
        "conv3": "branch_3x3.conv",
        "bn3": "branch_3x3.bn",
        "conv1": "branch_1x1",
        "post_bn": "post_bn",
        "act": "",
    },
    ConvBNAct: {"conv": "conv", "bn": "bn", "act": ""},
    DetectionHead: {"levels": ""},
    PoseHead: {"levels": ""},
    DetectionLevel: {
        "stem": "stem",
        "cls_convs": "cls_convs",
        "reg_convs": "reg_convs",
        "cls_pred": "cls_pred",
        "reg_pred": "reg_pred",
    },
    PoseLevel: {
        "stem": "stem",
        "bbox_adapter": "bbox_stem",
        "pose_adapter": "pose_stem",
        "bbox_stem": "bbox_stem",
        "pose_stem": "pose_stem",
        "cls_convs": "cls_convs",
        "reg_convs": "reg_convs",
        "pose_convs": "pose_convs",
        "cls_pred": "cls_pred",
        "reg_pred": "reg_pred",
        "pose_pred": "pose_pred",
    },
}
# Children that are lists: index i is called this in super-gradients (None: the index itself).
_INDEXED = {("Backbone", "stages"): "stage{}", ("DetectionHead", "levels"): "head{}",
            ("PoseHead", "levels"): "head{}"}
# Leaves: modules whose tensors keep their own names.
_LEAVES = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)


class WeightImportError(ValueError):
    """A super-gradients checkpoint that does not fit the architecture; names the tensor."""


@dataclass(frozen=True)
class UpsampleFold:
    """Where one up stage's ConvTranspose bias goes: super-gradients' bias key, our 1x1 conv
    weight after the concat and that conv's BN running mean; ``channels`` = the upsampled
    channels, the first slice of the concat."""

    sg_bias: str
    conv_weight: str
    running_mean: str
    channels: int


@dataclass(frozen=True)
class SGMapping:
    """The mapping of one architecture: ``names`` ours -> super-gradients (every tensor of our
    state_dict), ``shapes`` ours, the QARepVGG prefixes (super-gradients names), the folds."""

    names: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    qarepvgg: tuple[str, ...]
    folds: tuple[UpsampleFold, ...]

    def sg_keys(self) -> set[str]:
        """Every super-gradients tensor name this architecture reads (rbr_reparam excluded)."""
        return set(self.names.values()) | {f.sg_bias for f in self.folds}


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _walk(
    module: nn.Module, ours: str, sg: str, in_head: bool
) -> Iterator[tuple[str, str, nn.Module]]:
    """(our prefix, super-gradients prefix, module) for every module under ``module``."""
    yield ours, sg, module
    if isinstance(module, _LEAVES):
        return
    kind = type(module)
    if isinstance(module, (nn.ModuleList, nn.Sequential)):
        table = None  # indices keep their names
    elif kind in _CHILDREN:
        table = _CHILDREN[kind]
    else:
        raise WeightImportError(
            f"no super-gradients name for a {kind.__name__} at {ours or '<model>'!r} "
            "(a fused model? import into the training form)"
        )
    head = in_head or isinstance(module, (DetectionHead, PoseHead))
    for name, child in module.named_children():
        if table is None:
            sg_name = name
        elif name not in table:
            raise WeightImportError(f"no super-gradients name for {_join(ours, name)!r}")
        else:
            sg_name = table[name]
        if isinstance(child, nn.ModuleList) and (kind.__name__, name) in _INDEXED:
            pattern = _INDEXED[(kind.__name__, name)]
            base = _join(sg, sg_name)
            for i, item in enumerate(child):
                item_sg = _join(base, pattern.format(i + 1))
                yield from _walk(item, _join(ours, name, str(i)), item_sg, head)
            continue
        if head and isinstance(child, ConvBNAct):
            sg_name = _join(sg_name, "seq")  # super-gradients' ConvBNReLU nests conv/bn in seq
        yield from _walk(child, _join(ours, name), _join(sg, sg_name), head)


def sg_mapping(spec: ArchSpec) -> SGMapping:
    """The name mapping for ``spec`` (the network is built on the meta device: no memory)."""
    with torch.device("meta"):
        model = build_model(spec)
    names: dict[str, str] = {}
    qarepvgg: list[str] = []
    folds: list[UpsampleFold] = []
    for ours, sg, module in _walk(model, "", "", False):
        for name, _ in module.named_parameters(recurse=False):
            names[_join(ours, name)] = _join(sg, name)
        for name, _ in module.named_buffers(recurse=False):
            if name not in module._non_persistent_buffers_set:
                names[_join(ours, name)] = _join(sg, name)
        if isinstance(module, QARepVGG):
            qarepvgg.append(sg)
        if isinstance(module, UpStage):
            folds.append(
                UpsampleFold(
                    sg_bias=_join(sg, "upsample", "bias"),
                    conv_weight=_join(ours, "reduce_concat", "conv", "weight"),
                    running_mean=_join(ours, "reduce_concat", "bn", "running_mean"),
                    channels=module.upsample.out_channels,
                )
            )
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if set(shapes) != set(names):  # every tensor of ours must have a name there
        unnamed = sorted(set(shapes) - set(names))
        raise WeightImportError(f"no super-gradients name for {unnamed[0]!r}")
    return SGMapping(names, shapes, tuple(qarepvgg), tuple(folds))


def unwrap_sg_checkpoint(obj: Any, key: str = "auto") -> tuple[dict[str, Tensor], str]:
    """The model state_dict inside a loaded super-gradients file, and where it was found.

    ``key``: "auto" (``ema_net`` when present and not None, else ``net``, else the object itself
    when it is a bare state_dict), "net", "ema_net" or "state_dict" (bare). A ``module.`` prefix
    (DDP) on every name is removed.
    """
    if not isinstance(obj, Mapping):
        raise WeightImportError(f"expected a dict, got {type(obj).__name__}")
    if key == "auto":
        found = next((k for k in STATE_KEYS if obj.get(k) is not None), None)
        key = found or "state_dict"
    if key == "state_dict":
        state = obj
    else:
        if obj.get(key) is None:
            present = ", ".join(k for k in STATE_KEYS if obj.get(k) is not None) or "none"
            raise WeightImportError(
                f"no {key!r} state_dict in the checkpoint (present: {present})"
            )
        state = obj[key]
    if not isinstance(state, Mapping):
        raise WeightImportError(f"{key!r}: expected a state_dict, got {type(state).__name__}")
    bad = next((k for k, v in state.items() if not isinstance(v, Tensor)), None)
    if bad is not None:
        what = "top-level key" if key == "state_dict" else f"{key!r} entry"
        raise WeightImportError(
            f"{what} {bad!r} is not a tensor: not a super-gradients checkpoint "
            f"(expected a dict holding 'net' or 'ema_net', or a bare state_dict)"
        )
    names = [str(k) for k in state]
    if names and all(n.startswith(DDP_PREFIX) for n in names):
        state = {n[len(DDP_PREFIX):]: v for n, v in state.items()}
    return dict(state), key


def import_state_dict(sg_state: Mapping[str, Tensor], spec: ArchSpec) -> dict[str, Tensor]:
    """Our state_dict for ``spec`` from a super-gradients state_dict (names without ``module.``).

    Raises `WeightImportError` naming the tensor when one is missing, extra, of another shape,
    or when the QARepVGG blocks were fused before saving.
    """
    mapping = sg_mapping(spec)
    for block in mapping.qarepvgg:
        branch = _join(block, "branch_3x3.conv.weight")
        if branch not in sg_state and _join(block, "rbr_reparam.weight") in sg_state:
            raise WeightImportError(
                f"{block!r} has 'rbr_reparam' but no {branch!r}: the checkpoint was saved after "
                "super-gradients fused its QARepVGG blocks (prep_model_for_conversion); import "
                "the training checkpoint instead"
            )
    skipped = {_join(b, "rbr_reparam", t) for b in mapping.qarepvgg for t in ("weight", "bias")}
    wanted = mapping.sg_keys()
    extra = sorted(set(sg_state) - wanted - skipped)
    if extra:
        raise WeightImportError(
            f"unexpected tensor {extra[0]!r} ({len(extra)} extra in all): "
            "not this architecture (check --arch)"
        )
    out: dict[str, Tensor] = {}
    for ours, sg in mapping.names.items():
        if sg not in sg_state:
            raise WeightImportError(f"missing tensor {sg!r} (ours: {ours!r})")
        tensor, shape = sg_state[sg], mapping.shapes[ours]
        if tuple(tensor.shape) != shape:
            raise WeightImportError(
                f"tensor {sg!r} has shape {tuple(tensor.shape)}, expected {shape} "
                f"(ours: {ours!r}; check --arch)"
            )
        tensor = tensor.detach()
        out[ours] = tensor.float() if tensor.is_floating_point() else tensor.long()
    for fold in mapping.folds:
        if fold.sg_bias not in sg_state:
            raise WeightImportError(
                f"missing tensor {fold.sg_bias!r} (folded into {fold.running_mean!r})"
            )
        bias = sg_state[fold.sg_bias].detach().double()
        if tuple(bias.shape) != (fold.channels,):
            raise WeightImportError(
                f"tensor {fold.sg_bias!r} has shape {tuple(bias.shape)}, expected "
                f"({fold.channels},)"
            )
        weight = out[fold.conv_weight][:, : fold.channels, 0, 0].double()  # [O, C]
        mean = out[fold.running_mean].double() - weight @ bias
        out[fold.running_mean] = mean.to(out[fold.running_mean].dtype)
    return out


def export_sg_state_dict(spec: ArchSpec, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The super-gradients state_dict of our weights (the inverse of `import_state_dict`).

    Upsampling biases are zero (ours have none) and each QARepVGG's unused ``rbr_reparam`` is
    written as zeros, as super-gradients stores a placeholder there while training.
    """
    mapping = sg_mapping(spec)
    missing = sorted(set(mapping.names) - set(state))
    if missing:
        raise WeightImportError(f"missing tensor {missing[0]!r} in our state_dict")
    out = {sg: state[ours].detach().clone() for ours, sg in mapping.names.items()}
    for fold in mapping.folds:
        like = state[fold.running_mean]
        out[fold.sg_bias] = torch.zeros(fold.channels, dtype=like.dtype, device=like.device)
    for block in mapping.qarepvgg:
        weight = out[_join(block, "branch_3x3.conv.weight")]
        out[_join(block, "rbr_reparam.weight")] = torch.zeros_like(weight)
        out[_join(block, "rbr_reparam.bias")] = weight.new_zeros(weight.shape[0])
    return out


__all__ = [
    "STATE_KEYS",
    "SGMapping",
    "UpsampleFold",
    "WeightImportError",
    "export_sg_state_dict",
    "import_state_dict",
    "sg_mapping",
    "unwrap_sg_checkpoint",
]
