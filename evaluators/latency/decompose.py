"""Split a built model into the blocks the latency predictor times one by one.

The blocks are the children of the model's parts (``backbone``, ``neck``, ``head``), with
``nn.ModuleList`` children opened: ``backbone.stem``, ``backbone.stages.0..3``,
``backbone.spp``, ``neck.up1``, ``neck.up2``, ``neck.down1``, ``neck.down2``,
``head.levels.0..2``. Whatever the model's own ``forward`` does between them (flattening,
decoding) is the overhead that the predictor fits.

A block's key is a hash of its fused structure (the module tree's ``repr`` plus each
submodule's plain settings) and its input shapes: two blocks with the same key do the same
work, whatever architecture they come from. Its family is a coarser hash: position, class,
input shapes and the switches (boolean settings, e.g. QCI vs QSP) of its submodules, but not
depths or hidden widths; the predictor estimates an unseen block from measured blocks of the
same family.

Example:
    >>> from models.presets import get_preset
    >>> blocks = spec_blocks(get_preset("yolo_nas_tiny"), image_size=64)
    >>> [b.path for b in blocks][:3]
    ['backbone.stem', 'backbone.stages.0', 'backbone.stages.1']
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

_PARTS = ("backbone", "neck", "head")
_PLAIN = (int, float, bool, str, tuple)


@dataclass
class Block:
    """One block of a model at its input shapes."""

    path: str  # module path in the model, e.g. "backbone.stages.2"
    key: str  # structure + input shapes hash (16 hex digits)
    family: str  # position + class + input shapes + switches hash (12 hex digits)
    macs: int  # multiply-accumulates of its convolutions
    layers: int  # convolution layers (kernel launches, roughly)
    activations: int  # elements its convolutions write
    module: nn.Module | None = field(default=None, repr=False)
    inputs: tuple[Any, ...] | None = field(default=None, repr=False)

    def features(self) -> dict[str, float]:
        return {
            "gmacs": self.macs / 1e9,
            "layers": float(self.layers),
            "mact": self.activations / 1e6,
        }


def block_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of each block, in forward order for the YOLO-NAS models."""
    out: list[tuple[str, nn.Module]] = []
    for part in _PARTS:
        parent = getattr(model, part, None)
        if not isinstance(parent, nn.Module):
            continue
        for name, child in parent.named_children():
            if isinstance(child, nn.ModuleList):
                out.extend((f"{part}.{name}.{i}", c) for i, c in enumerate(child))
            else:
                out.append((f"{part}.{name}", child))
    if not out:
        raise ValueError("model has no backbone/neck/head parts to decompose")
    return out


def structure_signature(module: nn.Module) -> str:
    """The module tree's repr plus every submodule's plain public settings."""
    lines = [repr(module)]
    for name, sub in module.named_modules():
        plain = sorted(
            (k, v)
            for k, v in vars(sub).items()
            if not k.startswith("_") and k != "training" and isinstance(v, _PLAIN)
        )
        if plain:
            lines.append(f"{name}:{plain}")
    return "\n".join(lines)


def _shapes(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return list(obj.shape)
    if isinstance(obj, (list, tuple)):
        return [_shapes(o) for o in obj]
    return repr(obj)


def _clone(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().clone()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(o) for o in obj)
    return obj


def block_key(module: nn.Module, inputs: tuple[Any, ...]) -> str:
    """Hash of the block's fused structure and its input shapes (16 hex digits)."""
    text = structure_signature(module) + "\n" + repr(_shapes(inputs))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def block_family(path: str, module: nn.Module, inputs: tuple[Any, ...]) -> str:
    """Hash of the block's position, class, input shapes and the set of boolean settings of
    its submodules (12 hex digits): blocks that differ only in depth or widths share it."""
    switches = sorted(
        {
            (type(sub).__name__, k, v)
            for sub in module.modules()
            for k, v in vars(sub).items()
            if not k.startswith("_") and k != "training" and isinstance(v, bool)
        }
    )
    text = f"{path}\n{type(module).__name__}\n{_shapes(inputs)!r}\n{switches!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _conv_cost(mod: nn.Module, inp: Tensor, out: Tensor) -> int:
    if isinstance(mod, nn.Conv2d):
        kh, kw = mod.kernel_size
        return out.numel() * (mod.in_channels // mod.groups) * kh * kw
    if isinstance(mod, nn.ConvTranspose2d):
        kh, kw = mod.kernel_size
        return inp.numel() * (mod.out_channels // mod.groups) * kh * kw
    if isinstance(mod, nn.Linear):
        return out.numel() * mod.in_features
    return 0


@contextlib.contextmanager
def _hooks(handles: list[Any]) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def decompose(model: nn.Module, x: Tensor, keep_inputs: bool = False) -> list[Block]:
    """Run ``model(x)`` once and describe each block; with ``keep_inputs`` also keep each
    block module and a copy of its inputs (to time it alone)."""
    found = block_modules(model)
    records: dict[int, dict[str, Any]] = {}
    handles: list[Any] = []

    def on_block(i: int) -> Any:
        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            if kwargs:
                raise ValueError(f"block {found[i][0]} takes keyword inputs; cannot time it")
            rec = records.setdefault(i, {"macs": 0, "layers": 0, "act": 0})
            rec["key"] = block_key(mod, args)
            rec["family"] = block_family(found[i][0], mod, args)
            if keep_inputs:
                rec["inputs"] = _clone(args)

        return hook

    def on_conv(i: int) -> Any:
        def hook(mod: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            rec = records.setdefault(i, {"macs": 0, "layers": 0, "act": 0})
            rec["macs"] += _conv_cost(mod, args[0], out)
            rec["layers"] += 1
            rec["act"] += out.numel()

        return hook

    for i, (_, mod) in enumerate(found):
        handles.append(mod.register_forward_hook(on_block(i), with_kwargs=True))
        for sub in mod.modules():
            if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                handles.append(sub.register_forward_hook(on_conv(i)))
    with _hooks(handles), torch.inference_mode():
        model(x)
    blocks = []
    for i, (path, mod) in enumerate(found):
        rec = records.get(i)
        if rec is None or "key" not in rec:
            raise ValueError(f"block {path} was not called by the model's forward")
        blocks.append(
            Block(
                path=path,
                key=rec["key"],
                family=rec["family"],
                macs=int(rec["macs"]),
                layers=int(rec["layers"]),
                activations=int(rec["act"]),
                module=mod if keep_inputs else None,
                inputs=rec.get("inputs"),
            )
        )
    return blocks


def spec_blocks(spec: Any, image_size: int = 640, batch_size: int = 1) -> list[Block]:
    """The blocks of a spec's fused model, without timing anything (built on the ``meta``
    device: no memory, no weights; falls back to the CPU if meta tensors are refused)."""
    from models.build import build_model, fuse

    try:
        with torch.device("meta"):
            model = fuse(build_model(spec))
            return decompose(model, torch.empty(batch_size, 3, image_size, image_size))
    except (NotImplementedError, RuntimeError):  # pragma: no cover - an op without meta kernel
        model = fuse(build_model(spec))
        return decompose(model, torch.zeros(batch_size, 3, image_size, image_size))


__all__ = [
    "Block",
    "block_family",
    "block_key",
    "block_modules",
    "decompose",
    "spec_blocks",
    "structure_signature",
]
