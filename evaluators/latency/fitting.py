"""Small fitting helpers of the latency predictor: Kendall's tau, (robust) non-negative least
squares, the Theil-Sen line, the unseen-block estimator. Pure Python + torch.linalg (SciPy is
not a dependency).

Example:
    >>> kendall_tau([1, 2, 3], [10, 30, 20])
    0.3333333333333333
    >>> [round(c, 6) for c in nonneg_lstsq([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]], [3, 5, 7])]
    [2.0, 1.0]
    >>> theil_sen([1, 2, 3, 4, 5], [3, 5, 7, 9, 100])  # the outlier does not move the line
    (2.0, 1.0)
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

import torch

FEATURES = ("gmacs", "layers", "mact")  # block features, see decompose.Block.features
GROUP_FEATURES = ("gmacs", "layers")  # per family / position: work and kernel launches
GLOBAL_FEATURES = FEATURES
MIN_GROUP = 4  # entries a family or position needs for its own fit


def kendall_tau(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences (NaN with fewer than two points or when
    one of them is constant)."""
    if len(xs) != len(ys):
        raise ValueError("kendall_tau: sequences of different lengths")
    concordant = discordant = ties_x = ties_y = 0
    for (x1, y1), (x2, y2) in itertools.combinations(zip(xs, ys, strict=True), 2):
        dx, dy = x1 - x2, y1 - y2
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif (dx > 0) == (dy > 0):
            concordant += 1
        else:
            discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom else float("nan")


def nonneg_lstsq(rows: list[list[float]], targets: list[float]) -> list[float]:
    """Least squares with every coefficient >= 0 (exhaustive over column subsets: a handful
    of columns only)."""
    n = len(rows[0]) if rows else 0
    best: tuple[float, list[float]] = (math.inf, [0.0] * n)
    a_all = torch.tensor(rows, dtype=torch.float64)
    b = torch.tensor(targets, dtype=torch.float64).unsqueeze(1)
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            a = a_all[:, list(cols)]
            sol = torch.linalg.lstsq(a, b, driver="gelsd").solution.squeeze(1)
            if bool((sol < 0).any()):
                continue
            err = float(((a @ sol.unsqueeze(1) - b) ** 2).sum())
            if err < best[0] - 1e-15:
                coef = [0.0] * n
                for c, v in zip(cols, sol.tolist(), strict=True):
                    coef[c] = v
                best = (err, coef)
    return best[1]


def robust_nonneg_lstsq(
    rows: list[list[float]], targets: list[float], rounds: int = 2, cut: float = 3.0
) -> list[float]:
    """`nonneg_lstsq`, refitted without the points whose residual is more than ``cut`` robust
    standard deviations (1.4826 x the median absolute deviation) from the median residual;
    ``rounds`` times at most, never below one point more than there are columns."""
    keep = list(range(len(rows)))
    coef = nonneg_lstsq(rows, targets)
    ncols = len(rows[0]) if rows else 0
    for _ in range(rounds):
        resid = [targets[i] - sum(c * v for c, v in zip(coef, rows[i], strict=True)) for i in keep]
        mid = statistics.median(resid)
        spread = 1.4826 * statistics.median(abs(r - mid) for r in resid)
        if spread <= 0:
            break
        inliers = [i for i, r in zip(keep, resid, strict=True) if abs(r - mid) <= cut * spread]
        if len(inliers) == len(keep) or len(inliers) <= ncols:
            break
        keep = inliers
        coef = nonneg_lstsq([rows[i] for i in keep], [targets[i] for i in keep])
    return coef


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) of the Theil-Sen line: the median of the pairwise slopes, then the
    median of ``y - slope * x``; robust to a few bad points. NaN slope without two distinct x."""
    slopes = [
        (y2 - y1) / (x2 - x1)
        for (x1, y1), (x2, y2) in itertools.combinations(zip(xs, ys, strict=True), 2)
        if x2 != x1
    ]
    if not slopes:
        return float("nan"), float("nan")
    slope = statistics.median(slopes)
    return slope, statistics.median(y - slope * x for x, y in zip(xs, ys, strict=True))


def _fit_group(entries: list[dict[str, Any]], features: tuple[str, ...]) -> dict[str, Any]:
    rows = [[float(e.get(f, 0.0)) for f in features] + [1.0] for e in entries]
    coef = robust_nonneg_lstsq(rows, [float(e["ms"]) for e in entries])
    return {
        "features": list(features),
        "coef": [float(c) for c in coef[:-1]],
        "const_ms": float(coef[-1]),
        "entries": len(entries),
    }


def fit_estimator(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Coefficients that estimate an unseen block's latency from measured blocks like it.

    Three levels, the first with at least `MIN_GROUP` entries answers (see `estimate_block_ms`):
    the block's family (same position, class, input shapes and switches: only depths and
    widths differ), its position (``block`` path), then all entries. Each is a robust
    non-negative linear fit ``ms = const + a * GMACs + b * conv layers`` (all entries: also
    activations); with fewer entries than that overall, a ratio of milliseconds to GMACs.
    """
    out: dict[str, Any] = {"families": {}, "paths": {}, "global": None}
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {"families": {}, "paths": {}}
    for e in entries:
        if e.get("family"):
            groups["families"].setdefault(e["family"], []).append(e)
        groups["paths"].setdefault(e["block"], []).append(e)
    for level, by_name in groups.items():
        for name, es in by_name.items():
            if len(es) >= MIN_GROUP:
                out[level][name] = _fit_group(es, GROUP_FEATURES)
    if len(entries) >= MIN_GROUP:
        out["global"] = _fit_group(entries, GLOBAL_FEATURES)
    else:
        gmacs = sum(e["gmacs"] for e in entries)
        ms = sum(e["ms"] for e in entries)
        out["global"] = {
            "features": ["gmacs"],
            "coef": [ms / gmacs if gmacs > 0 else 0.0],
            "const_ms": 0.0 if gmacs > 0 else ms / max(len(entries), 1),
            "entries": len(entries),
        }
    return out


def estimate_block_ms(
    estimator: dict[str, Any], path: str, family: str | None, features: dict[str, float]
) -> tuple[float, str]:
    """(milliseconds, level that answered: ``family``, ``path`` or ``global``) of a block."""
    for level, name, key in (("families", family, "family"), ("paths", path, "path")):
        fit = estimator.get(level, {}).get(name) if name else None
        if fit is not None:
            return _apply(fit, features), key
    return _apply(estimator["global"], features), "global"


def _apply(fit: dict[str, Any], features: dict[str, float]) -> float:
    value = fit["const_ms"] + sum(
        c * features[f] for c, f in zip(fit["coef"], fit["features"], strict=True)
    )
    return max(float(value), 0.0)


__all__ = [
    "FEATURES",
    "GLOBAL_FEATURES",
    "GROUP_FEATURES",
    "MIN_GROUP",
    "estimate_block_ms",
    "fit_estimator",
    "kendall_tau",
    "nonneg_lstsq",
    "robust_nonneg_lstsq",
    "theil_sen",
]
