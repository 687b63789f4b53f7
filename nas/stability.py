"""Latency you can rely on: reference latencies checked before they become variant budgets.

Each measurement already repeats a timed round whose coefficient of variation (CV) is over the
threshold (``latency.cv_threshold``, default 0.05 GPU / 0.10 CPU) up to ``latency.max_repeats``
rounds and keeps ``latency_stable: false`` when none settles (`nas.trial.measure`). Before the
variants are chosen against the released models, this module checks the reference latencies:

- they must be ordered like the models' sizes (parameters): a larger model measured faster than
  a smaller one is measured again (fresh, not from the cache); still out of order, it is a
  warning printed before the variants and written to run.json and report.md;
- a budget that comes from an unstable measurement is a warning too.

Example:
    >>> info = {"a_n": {"latency_ms": 2.0, "params": 1, "cv": 0.02, "stable": True},
    ...         "a_s": {"latency_ms": 1.5, "params": 2, "cv": 0.02, "stable": True}}
    >>> out_of_order(info)
    [('a_n', 'a_s')]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any


def latency_info(row: Any, source: str = "trial") -> dict[str, Any]:
    """``{latency_ms, cv, stable, repeats, source}`` of a trials-table row (dict or Series)."""
    def num(key: str) -> float | None:
        try:
            v = float(row.get(key))
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) else None

    stable = row.get("latency_stable")
    if stable is None or str(stable) in ("<NA>", "nan", "None"):
        stable = None
    elif isinstance(stable, str):
        stable = stable.strip().lower() in ("true", "1")
    else:
        stable = bool(stable)
    reps = num("lat_repeats")
    return {"latency_ms": num("latency_ms"), "cv": num("lat_cv"), "stable": stable,
            "repeats": None if reps is None else int(reps), "source": source}


def result_info(result: Any, source: str = "measured") -> dict[str, Any]:
    """The same fields from a `LatencyResult`."""
    return {"latency_ms": float(result.median_ms), "cv": float(result.cv),
            "stable": bool(result.stable), "repeats": int(result.repeats), "source": source}


def out_of_order(info: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Pairs ``(smaller, larger)`` of references (by ``params``) where the larger one measured
    strictly faster."""
    named = [(n, i) for n, i in info.items()
             if i.get("latency_ms") is not None and i.get("params") is not None]
    named.sort(key=lambda item: item[1]["params"])
    pairs = []
    for a in range(len(named)):
        for b in range(a + 1, len(named)):
            small, large = named[a], named[b]
            if large[1]["params"] > small[1]["params"] and (
                large[1]["latency_ms"] < small[1]["latency_ms"]
            ):
                pairs.append((small[0], large[0]))
    return pairs


def settle_reference_order(
    info: dict[str, dict[str, Any]],
    remeasure: Callable[[str], dict[str, Any] | None] | None,
    warnings: list[str],
) -> dict[str, dict[str, Any]]:
    """Check the reference latencies' order; measure the references of out-of-order pairs
    again with ``remeasure(name)`` (None: cannot, e.g. a cluster head) and, when they stay out
    of order, append a warning per pair. Returns the (updated) ``info``."""
    pairs = out_of_order(info)
    if pairs and remeasure is not None:
        for name in sorted({n for pair in pairs for n in pair}):
            fresh = remeasure(name)
            if fresh is not None:
                before = info[name].get("latency_ms")
                info[name] = {**info[name], **fresh, "source": "re-measured",
                              "first_latency_ms": before}
        pairs = out_of_order(info)
    for small, large in pairs:
        a, b = info[small], info[large]
        again = " after re-measuring" if remeasure is not None else " (not re-measured)"
        warnings.append(
            f"reference latencies out of order{again}: {large} ({b['params'] / 1e6:.2f}M "
            f"params) {b['latency_ms']:.2f} ms (cv {_f(b.get('cv'))}) is faster than {small} "
            f"({a['params'] / 1e6:.2f}M params) {a['latency_ms']:.2f} ms (cv {_f(a.get('cv'))}): "
            "the machine was probably busy; budgets from these are not to be trusted"
        )
    return info


def unstable_budget_warnings(
    refs: Mapping[str, tuple[str, float]], info: Mapping[str, Mapping[str, Any]],
    threshold: float,
) -> list[str]:
    """A warning for each variant budget whose reference measurement never settled."""
    out = []
    for size, (name, ms) in refs.items():
        i = info.get(name.split(" / ")[0]) or {}
        if i.get("stable") is False:
            out.append(
                f"variant {size}: budget {ms:.2f} ms comes from an unstable measurement of "
                f"{name} (cv {_f(i.get('cv'))} > {threshold:.2f} after {i.get('repeats')} "
                "rounds)"
            )
    return out


def _f(value: Any) -> str:
    return "?" if value is None else f"{float(value):.3f}"


__all__ = [
    "latency_info",
    "out_of_order",
    "result_info",
    "settle_reference_order",
    "unstable_budget_warnings",
]
