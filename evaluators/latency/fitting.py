"""Small fitting helpers of the latency predictor: Kendall's tau, non-negative least squares,
the unseen-block estimator. Pure Python + torch.linalg (SciPy is not a dependency).

Example:
    >>> kendall_tau([1, 2, 3], [10, 30, 20])
    0.3333333333333333
    >>> [round(c, 6) for c in nonneg_lstsq([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]], [3, 5, 7])]
    [2.0, 1.0]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch

FEATURES = ("gmacs", "layers", "mact")  # block features, see decompose.Block.features


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


def fit_estimator(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Coefficients that estimate an unseen block's latency from its convolution work.

    Per block position (``path``) with entries: ``ms = const + rate * GMACs`` (a line with three
    or more distinct GMACs, else a ratio); for any other position a global non-negative fit on
    GMACs, layers and activations.
    """
    rows = [[e[f] for f in FEATURES] + [1.0] for e in entries]
    coef = nonneg_lstsq(rows, [e["ms"] for e in entries])
    out: dict[str, Any] = {
        "global": {**dict(zip(FEATURES, coef[:-1], strict=True)), "const_ms": coef[-1]},
        "paths": {},
    }
    by_path: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_path.setdefault(e["block"], []).append(e)
    for path, es in by_path.items():
        rate, const = 0.0, 0.0
        if len({round(e["gmacs"], 9) for e in es}) >= 3:
            rate, const = nonneg_lstsq([[e["gmacs"], 1.0] for e in es], [e["ms"] for e in es])
        if rate <= 0:
            total = sum(e["gmacs"] for e in es)
            if total <= 0:
                continue
            rate, const = sum(e["ms"] for e in es) / total, 0.0
        out["paths"][path] = {"ms_per_gmac": rate, "const_ms": const, "entries": len(es)}
    return out


__all__ = ["FEATURES", "fit_estimator", "kendall_tau", "nonneg_lstsq"]
