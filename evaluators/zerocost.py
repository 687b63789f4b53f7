"""Zero-cost proxies: training-free scores of an untrained network (higher = predicted better).

Each proxy builds the architecture with fresh weights (`models.build_model`, seeded), feeds a
tiny random batch on the CPU and returns one float. They are cheap (well under a second per
tiny model at 64 px) and deterministic for a given seed, so a search can rank a large pool of
random architectures before training any (``sampler.prescreen``, `nas.prescreen`).

Registered proxies (our own code, from the papers' definitions):

- ``naswot`` (Mellor et al., "Neural Architecture Search without Training", ICML 2021): the
  binary ReLU activation code ``c_i`` of each input of a batch; the kernel
  ``K[i, j] = N_A - hamming(c_i, c_j)``; the score is ``log |det K|``. Networks that separate
  the inputs of a batch into different linear regions score higher.
- ``synflow`` (Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020): every weight replaced by its absolute value
  (BatchNorm as its identity affine), an all-ones input, ``R = sum(raw head outputs)``; the
  score is ``log sum |theta * dR/dtheta|`` (the log only rescales: ranks are unchanged).
- ``zen`` (Lin et al., "Zen-NAS", ICCV 2021; used by MAE-NAS / DAMO-YOLO): Gaussian weights,
  BatchNorm on batch statistics, ``f`` = the neck's feature maps (before the head);
  ``log E ||f(x) - f(x + alpha * eps)||_F + sum_BN log sqrt(mean channel variance)``,
  ``alpha = 0.01``.

Example:
    >>> from models.presets import get_preset
    >>> s = score_spec(get_preset("yolo_nas_tiny"), "naswot", image_size=32, batch=4)
    >>> s == score_spec(get_preset("yolo_nas_tiny"), "naswot", image_size=32, batch=4)
    True
    >>> "synflow" in list_proxies()
    True
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from models.build import YoloNAS, build_model
from models.spec import ArchSpec

# proxy(model, x, seed) -> score; the model is fresh (training mode) and the caller's to spoil
ProxyFn = Callable[[YoloNAS, Tensor], float]
_PROXIES: dict[str, ProxyFn] = {}


def register_proxy(name: str) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator adding a proxy under ``name``; a name registered twice is an error."""

    def add(fn: ProxyFn) -> ProxyFn:
        if name in _PROXIES:
            raise ValueError(f"zero-cost proxy {name!r} is already registered")
        _PROXIES[name] = fn
        return fn

    return add


def list_proxies(pattern: str | None = None) -> list[str]:
    """The registered proxy names (sorted), optionally filtered by a glob ``pattern``."""
    names = sorted(_PROXIES)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_proxy(name: str) -> ProxyFn:
    """The proxy function of ``name``; KeyError names the known ones."""
    try:
        return _PROXIES[name]
    except KeyError:
        raise KeyError(f"unknown zero-cost proxy {name!r} (known: "
                       f"{', '.join(list_proxies())})") from None


def score_spec(spec: ArchSpec, proxy: str, image_size: int = 64, batch: int = 8,
               seed: int = 0) -> float:
    """The ``proxy`` score of ``spec`` with weights and inputs drawn from ``seed`` (CPU).

    ``image_size`` must be a multiple of 32 (the network's largest stride).
    """
    fn = get_proxy(proxy)
    if image_size < 32 or image_size % 32:
        raise ValueError(f"image_size: expected a multiple of 32, got {image_size}")
    if batch < 2:
        raise ValueError(f"batch: expected >= 2, got {batch}")
    gen_state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # tiny tensors: one thread is fastest and leaves the others
        torch.manual_seed(seed)
        model = build_model(spec)
        x = torch.randn(batch, 3, image_size, image_size)
        score = float(fn(model, x))
    finally:
        torch.random.set_rng_state(gen_state)
        torch.set_num_threads(threads)
    return score if math.isfinite(score) else float("-inf")


def _raw_outputs(model: YoloNAS, x: Tensor) -> list[Tensor]:
    """The head's raw per-level outputs, flattened to one list (no decoding)."""
    outs = model.head(model.neck(model.backbone(x)))
    flat: list[Tensor] = []
    for level in outs:
        flat.extend(level if isinstance(level, (list, tuple)) else [level])
    return flat


@register_proxy("naswot")
def naswot(model: YoloNAS, x: Tensor) -> float:
    """log |det K| of the Hamming-similarity kernel of the ReLU codes (see the module doc)."""
    codes: list[Tensor] = []

    def hook(_m: nn.Module, _inp: Any, out: Tensor) -> None:
        codes.append((out.detach() > 0).flatten(1).to(torch.float64))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model.train()  # BN on batch statistics, as in the paper's code path
            _raw_outputs(model, x)
    finally:
        for h in handles:
            h.remove()
    c = torch.cat(codes, dim=1)  # [B, N_A]
    k = c @ c.T + (1 - c) @ (1 - c).T  # N_A - Hamming distance
    _sign, logdet = torch.linalg.slogdet(k)
    return float(logdet)


@register_proxy("synflow")
def synflow(model: YoloNAS, x: Tensor) -> float:
    """log sum |theta * dR/dtheta| with |theta| weights and an all-ones input."""
    model = model.double()
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()  # running stats (0, 1): BN is its affine (1, 0), no batch coupling
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    total = sum(o.sum() for o in _raw_outputs(model, ones))
    model.zero_grad()
    total.backward()  # type: ignore[union-attr]
    s = sum(float((p.detach() * p.grad).abs().sum())
            for p in model.parameters() if p.grad is not None)
    return math.log(s) if s > 0 else float("-inf")


@register_proxy("zen")
def zen(model: YoloNAS, x: Tensor, alpha: float = 0.01) -> float:
    """Zen score: log feature change under a small input perturbation + BN scale terms."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        model.train()
        eps = torch.randn_like(x)
        variances: list[Tensor] = []

        def hook(_m: nn.Module, inp: tuple[Tensor, ...], _out: Tensor) -> None:
            variances.append(inp[0].var(dim=(0, 2, 3)).mean())

        handles = [m.register_forward_hook(hook) for m in model.modules()
                   if isinstance(m, nn.BatchNorm2d)]
        try:
            f1 = model.neck(model.backbone(x))
            n_bn = len(variances)
            f2 = model.neck(model.backbone(x + alpha * eps))
        finally:
            for h in handles:
                h.remove()
        diff = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(f1, f2, strict=True)))
        delta = float(diff) / x.shape[0]
        bn = sum(0.5 * math.log(float(v) + 1e-12) for v in variances[:n_bn])
    return (math.log(delta) if delta > 0 else float("-inf")) + bn


__all__ = ["get_proxy", "list_proxies", "register_proxy", "score_spec"]
