"""super-gradients-named checkpoints made from our own models (no super-gradients needed).

`sg_fixture(spec)` builds our model with random weights and perturbed BatchNorm statistics,
writes its weights in super-gradients naming (`models.sg_import.export_sg_state_dict`), and then
adds what a real super-gradients training checkpoint has and ours lacks: a non-zero bias on each
neck ConvTranspose and random values in every unused QARepVGG ``rbr_reparam``. The source
network (what super-gradients computes with that state_dict) is our model with the same weights
plus a forward hook that adds each bias after its upsample: `reference_outputs`.

`key_digest` is the hash of a state_dict's (name, shape) list that tests/models/
golden_sg_keys.json holds for the real super-gradients 3.7.1 models (benchmarks/import_sg.py
writes it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.build import YoloNAS, build_model
from models.neck import UpStage
from models.sg_import import export_sg_state_dict, sg_mapping
from models.spec import ArchSpec


@dataclass
class SGFixture:
    """``model``: our source network (eval, float64); ``sg_state``: its super-gradients
    state_dict (with biases and rbr_reparam); ``biases``: our UpStage path -> its bias."""

    model: YoloNAS
    sg_state: dict[str, Tensor]
    biases: dict[str, Tensor]


def random_model(spec: ArchSpec, seed: int = 0) -> YoloNAS:
    """Our network with random weights, perturbed BN statistics and alphas; eval, float64."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(spec).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
        for name, p in model.named_parameters():
            if name.endswith("skip.alpha"):
                p.copy_(torch.rand(1, generator=gen) + 0.5)
    return model


def sg_fixture(spec: ArchSpec, seed: int = 0) -> SGFixture:
    """A super-gradients-named checkpoint of a random model (see the module docstring)."""
    model = random_model(spec, seed)
    sg = export_sg_state_dict(spec, model.state_dict())
    gen = torch.Generator().manual_seed(seed + 1)
    biases: dict[str, Tensor] = {}
    mapping = sg_mapping(spec)
    for fold in mapping.folds:
        bias = (torch.rand(fold.channels, generator=gen, dtype=torch.float64) - 0.5) * 2.0
        sg[fold.sg_bias] = bias
        ours = fold.conv_weight.removesuffix(".reduce_concat.conv.weight")
        biases[ours] = bias
    for block in mapping.qarepvgg:
        for name in ("rbr_reparam.weight", "rbr_reparam.bias"):
            key = f"{block}.{name}"
            sg[key] = torch.randn(sg[key].shape, generator=gen, dtype=torch.float64)
    return SGFixture(model, sg, biases)


def reference_outputs(fx: SGFixture, x: Tensor) -> tuple[Tensor, ...]:
    """What super-gradients computes: our model with each upsample's bias added by a hook."""
    handles = []
    modules = dict(fx.model.named_modules())
    for path, bias in fx.biases.items():
        stage = modules[path]
        assert isinstance(stage, UpStage)

        def add_bias(_m: nn.Module, _i: object, out: Tensor, b: Tensor = bias) -> Tensor:
            return out + b.to(out.dtype).reshape(1, -1, 1, 1)

        handles.append(stage.upsample.register_forward_hook(add_bias))
    try:
        with torch.no_grad():
            return tuple(fx.model(x))
    finally:
        for h in handles:
            h.remove()


def max_diff(got: Sequence[Tensor], want: Sequence[Tensor]) -> float:
    """Largest absolute difference over paired outputs (compared in float64)."""
    pairs = zip(got, want, strict=True)
    return max((a.double() - b.double()).abs().max().item() for a, b in pairs)


def key_digest(shapes: Mapping[str, Sequence[int]]) -> str:
    """sha256 of the sorted ``name shape`` lines of a state_dict."""
    lines = sorted(f"{k} {tuple(int(s) for s in v)}" for k, v in shapes.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def sg_shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    """(name, shape) of every tensor of the super-gradients state_dict of ``spec``."""
    with torch.device("meta"):
        state = build_model(spec).state_dict()
    return {k: tuple(v.shape) for k, v in export_sg_state_dict(spec, state).items()}
