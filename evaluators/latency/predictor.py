"""Per-block latency lookup table for a search space, and its calibration.

`LatencyTable.build` samples architectures of a space, builds and fuses each, and times every
block (see `evaluators.latency.decompose`) on the device, plus the whole model. A prediction
is::

    predicted_ms = intercept_ms + scale * sum(block_ms)

Blocks are timed **in context** (``timing: context``, the ``torch`` backend): inside whole
forward passes, by hooks around each block (`evaluators.latency.blockprofile`), so a block's
time includes the cache misses it pays inside the model, and one profiled architecture gives
both its block times and a whole-model point. Each entry keeps the median of up to `MAX_OBS`
observations (one per profiled architecture that contains the block). With
``torch-cudagraph`` (no hooks inside a graph) each new block is timed alone in its own graph
(``timing: isolated``). ``intercept_ms`` and ``scale`` are a Theil-Sen line (median of the
pairwise slopes) through the whole-model points.

A block the table has never seen is estimated from measured blocks like it
(`evaluators.latency.fitting.fit_estimator`: same family, else same position, else all) and
counted as not covered. `LatencyTable.extend` times the missing blocks of a spec on demand.

`LatencyTable.calibrate` measures fresh random architectures and reports the share of
predictions within +-10 % and Kendall's tau between predicted and measured latencies.

Example:
    >>> from search_spaces import get_space
    >>> table = LatencyTable.build(get_space("yolo_nas", width_scale=0.25), image_size=64,
    ...                            samples=2, warmup=1, iters=3)   # doctest: +SKIP
    >>> table.predict(get_space("yolo_nas").reference_specs()["yolo_nas_s"])  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from evaluators.latency.backends import DTYPES, check_support, make_runner, parse_device
from evaluators.latency.blockprofile import profile_blocks
from evaluators.latency.decompose import Block, decompose, spec_blocks
from evaluators.latency.fitting import (
    estimate_block_ms,
    fit_estimator,
    kendall_tau,
    theil_sen,
)
from evaluators.latency.measure import measure_latency, measuring, synthetic_batch, time_runner
from evaluators.latency.report import CalibrationReport
from evaluators.latency.result import LatencyError
from evaluators.latency.tablefile import FORMAT, read_table, table_document
from evaluators.latency.target import check_target
from evaluators.latency.telemetry import device_name, library_versions

# Whole-model points needed to fit a line; with fewer, in-context sums get scale 1 and the median
# gap (a line through few points is noisier: 1.7-3.5 % vs 1.2-2.3 % mean error with 4-8 points
# on 40 fresh architectures), isolated sums the median ratio.
MIN_LINE_POINTS = {"context": 12, "isolated": 4}
MAX_OBS = 9  # observations kept per entry (its ms is their median)


def resolve_space(space: Any) -> Any:
    """Check that ``space`` is a search space object (anything with ``sample_random(seed)``,
    e.g. ``search_spaces.get_space(name)``). The evaluators layer does not import
    ``search_spaces``: callers look spaces up by name."""
    if not hasattr(space, "sample_random"):
        raise LatencyError(
            f"space: expected a search space object with sample_random(seed) "
            f"(e.g. search_spaces.get_space(name)), got {space!r}"
        )
    return space


def sample_specs(space: Any, samples: int, seed: int) -> list[Any]:
    """``samples`` random architectures of ``space`` (seeds ``seed``, ``seed + 1``, ...)."""
    space = resolve_space(space)
    return [space.sample_random(seed + i) for i in range(samples)]


@dataclass
class LatencyTable:
    """Block latencies of one device and context, plus the fitted overhead terms.

    ``entries``: block key -> ``{"block", "family", "ms", "obs", "cv", "gmacs", "layers",
    "mact"}``. ``overhead``: ``{"intercept_ms", "scale", "method", "points", "rmse_ms"}``;
    ``fit_points``: whole-model measurements (``arch_id``, ``keys``, ``blocks_ms``,
    ``measured_ms``); ``estimator``: `fit_estimator`'s coefficients for unseen blocks.
    """

    context: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    overhead: dict[str, Any] = field(default_factory=lambda: {"intercept_ms": 0.0, "scale": 1.0})
    fit_points: list[dict[str, Any]] = field(default_factory=list)
    estimator: dict[str, Any] = field(default_factory=dict)
    # The space object the table was built on (in memory only; not saved).
    space: Any = field(default=None, repr=False, compare=False)

    # -- building -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        space: Any,
        device: str = "cpu",
        image_size: int = 640,
        samples: int = 16,
        seed: int = 0,
        batch_size: int = 1,
        precision: str = "fp32",
        backend: str = "torch",
        warmup: int = 5,
        iters: int = 20,
        num_threads: int | None = None,
        lock_dir: str | Path | None = None,
        references: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> LatencyTable:
        """Time the blocks and whole models of ``samples`` random architectures of ``space``
        (plus its reference points with ``references``) and fit the overhead."""
        if backend not in ("torch", "torch-cudagraph"):
            raise LatencyError(f"latency tables time blocks with torch backends, not {backend!r}")
        dev = parse_device(device)
        check_support(backend, dev.type, precision)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise LatencyError(f"samples: expected an integer >= 1, got {samples!r}")
        space = resolve_space(space)
        context = {
            "space": getattr(space, "name", str(space)),
            "space_overrides": dict(getattr(space, "overrides", {}) or {}),
            "task": getattr(space, "task", None),
            "device": dev.type,
            "device_name": device_name(str(dev)),
            "backend": backend,
            "precision": precision,
            "batch_size": batch_size,
            "image_size": image_size,
            "warmup": warmup,
            "iters": iters,
            "num_threads": (num_threads or 1) if dev.type == "cpu" else num_threads,
            "timing": "isolated" if backend == "torch-cudagraph" else "context",
            "samples": samples,
            "seed": seed,
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        table = cls(context=context)
        table.space = space
        specs = sample_specs(space, samples, seed)
        if references and hasattr(space, "reference_specs"):
            specs += list(space.reference_specs().values())
        for i, spec in enumerate(specs):
            new = table.add_architecture(spec, lock_dir=lock_dir, refit=False)
            if progress:
                p = table.fit_points[-1]
                progress(
                    f"[{i + 1}/{len(specs)}] {spec.arch_id[:12]}: {new} new blocks, "
                    f"sum {p['blocks_ms']:.3f} ms, whole {p['measured_ms']:.3f} ms"
                )
        table.refit()
        return table

    def _measure_kwargs(self) -> dict[str, Any]:
        c = self.context
        return {
            "device": c["device"] if c["device"] == "cpu" else "cuda",
            "precision": c["precision"],
            "batch_size": c["batch_size"],
            "image_size": c["image_size"],
            "warmup": c["warmup"],
            "iters": c["iters"],
            "num_threads": c["num_threads"],
        }

    def _measure_whole(self, spec: Any, lock_dir: str | Path | None) -> float:
        kw = self._measure_kwargs()
        return measure_latency(
            spec, backend=self.context["backend"], lock_dir=lock_dir, **kw
        ).median_ms

    def _device(self) -> torch.device:
        """The table's device on this machine (refused when it is another device)."""
        dev = parse_device(self._measure_kwargs()["device"])
        check_target(self.context["device_name"], device_name(str(dev)), device=dev.type)
        return dev

    def add_architecture(
        self, spec: Any, lock_dir: str | Path | None = None, refit: bool = True
    ) -> int:
        """Time ``spec`` on the device: its blocks (in context: all of them, adding an
        observation to known entries; isolated: the missing ones) and the whole model, which
        becomes a fit point. Returns how many entries were added."""
        dev = self._device()
        if self.context.get("timing") == "context":
            new, measured, keys = self._profile(spec, dev, lock_dir)
        else:
            new = self._time_isolated(spec, dev, lock_dir)
            measured = self._measure_whole(spec, lock_dir)
            keys = [b.key for b in spec_blocks_cached(self, spec)]
        blocks_ms = sum(self.entries[k]["ms"] for k in keys)
        self.fit_points.append(
            {
                "arch_id": spec.arch_id,
                "keys": keys,
                "blocks_ms": blocks_ms,
                "measured_ms": measured,
            }
        )
        if refit:
            self.refit()
        return new

    def extend(self, spec: Any, lock_dir: str | Path | None = None, refit: bool = True) -> int:
        """Time the blocks of ``spec`` that the table lacks (on this machine's device, which
        must be the table's; nothing is measured when none is missing); returns how many
        entries were added. In context timing this profiles the whole model, which also adds
        a fit point."""
        if all(b.key in self.entries for b in spec_blocks_cached(self, spec)):
            return 0
        if self.context.get("timing") == "context":
            return self.add_architecture(spec, lock_dir, refit)
        new = self._time_isolated(spec, self._device(), lock_dir)
        if refit:
            self.refit()
        return new

    def _fused_and_input(self, spec: Any) -> tuple[Any, torch.Tensor]:
        """The fused model of ``spec`` (on the CPU) and the table's fixed input batch."""
        from models.build import build_model, fuse

        c = self.context
        return fuse(build_model(spec)), synthetic_batch(c["batch_size"], c["image_size"])

    def _observe(self, block: Block, ms: float, cv: float) -> bool:
        """Record one timing of ``block``; True when it is a new entry."""
        entry = self.entries.get(block.key)
        if entry is None:
            self.entries[block.key] = {
                "block": block.path,
                "family": block.family,
                "ms": ms,
                "obs": [round(ms, 6)],
                "cv": round(cv, 4),
                **{k: round(v, 6) for k, v in block.features().items()},
            }
            return True
        obs = [*entry.get("obs", [entry["ms"]]), round(ms, 6)][-MAX_OBS:]
        entry.update(obs=obs, ms=statistics.median(obs), family=block.family)
        return False

    def _profile(
        self, spec: Any, dev: torch.device, lock_dir: str | Path | None
    ) -> tuple[int, float, list[str]]:
        c = self.context
        model, x = self._fused_and_input(spec)
        with measuring(dev, c["num_threads"], lock_dir):
            prof = profile_blocks(
                model,
                x,
                device=str(dev),
                precision=c["precision"],
                warmup=c["warmup"],
                iters=c["iters"],
                num_threads=c["num_threads"] or 1,
            )
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        added = sum(
            self._observe(b, ms, cv)
            for b, ms, cv in zip(prof.blocks, prof.block_ms, prof.block_cv, strict=True)
        )
        return added, prof.whole.median_ms, [b.key for b in prof.blocks]

    def _time_isolated(self, spec: Any, dev: torch.device, lock_dir: str | Path | None) -> int:
        """Time each missing block alone (its own runner, e.g. its own CUDA graph)."""
        c = self.context
        if all(b.key in self.entries for b in spec_blocks_cached(self, spec)):
            return 0
        model, x = self._fused_and_input(spec)
        model = model.to(device=dev, dtype=DTYPES[c["precision"]])
        added = 0
        with measuring(dev, c["num_threads"], lock_dir):
            blocks = decompose(model, x.to(device=dev, dtype=DTYPES[c["precision"]]), True)
            for block in blocks:
                if block.key in self.entries:
                    continue
                assert block.module is not None and block.inputs is not None
                runner = make_runner(
                    block.module,
                    block.inputs,
                    c["backend"],
                    dev,
                    c["precision"],
                    c["num_threads"] or 1,
                )
                try:
                    timing = time_runner(runner, c["warmup"], c["iters"], 0.1, 3)
                finally:
                    runner.close()
                added += self._observe(block, timing.median_ms, timing.cv)
        del model, blocks
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return added

    def refit(self) -> None:
        """Fit the unseen-block estimator on the entries and the overhead on the fit points
        (their block sums recomputed from the current entries)."""
        self.estimator = fit_estimator(list(self.entries.values())) if self.entries else {}
        pts = self.fit_points
        for p in pts:
            keys = p.get("keys")
            if keys and all(k in self.entries for k in keys):
                p["blocks_ms"] = sum(self.entries[k]["ms"] for k in keys)
        xs = [p["blocks_ms"] for p in pts]
        ys = [p["measured_ms"] for p in pts]
        scale, intercept, method = math.nan, 0.0, ""
        timing = self.context.get("timing", "isolated")
        if len(pts) >= MIN_LINE_POINTS[timing] and len({round(x, 9) for x in xs}) >= 2:
            scale, intercept = theil_sen(xs, ys)
            method = "theil-sen"
        if not scale > 0:  # too few points for a line, or no slope
            if not pts:
                scale, intercept, method = 1.0, 0.0, "none"
            elif timing == "context":  # block sums are close to the whole
                scale, intercept = (
                    1.0,
                    statistics.median(y - x for x, y in zip(xs, ys, strict=True)),
                )
                method = "median offset"
            else:  # isolated blocks run faster than in the model: a ratio through zero
                ratios = [y / x for x, y in zip(xs, ys, strict=True) if x > 0]
                scale, intercept = (statistics.median(ratios) if ratios else 1.0), 0.0
                method = "median ratio"
        resid = [y - (intercept + scale * x) for x, y in zip(xs, ys, strict=True)]
        self.overhead = {
            "intercept_ms": float(intercept),
            "scale": float(scale),
            "method": method,
            "points": len(pts),
            "rmse_ms": math.sqrt(sum(r * r for r in resid) / len(resid)) if resid else 0.0,
        }

    # -- predicting ---------------------------------------------------------------------
    def _estimate(self, block: Block) -> tuple[float, str]:
        if not self.estimator:
            raise LatencyError("latency table has no entries to estimate unseen blocks from")
        return estimate_block_ms(self.estimator, block.path, block.family, block.features())

    def explain(self, spec: Any) -> list[dict[str, Any]]:
        """Per block: path, key, ms, whether it came from the table (``exact``) and its
        ``source`` (``table``, or the estimator level: ``family``, ``path``, ``global``)."""
        rows = []
        for b in spec_blocks_cached(self, spec):
            entry = self.entries.get(b.key)
            ms, source = (entry["ms"], "table") if entry else self._estimate(b)
            rows.append(
                {
                    "block": b.path,
                    "key": b.key,
                    "ms": ms,
                    "exact": entry is not None,
                    "source": source,
                }
            )
        return rows

    def predict(self, spec: Any) -> float:
        """Predicted latency (ms) of ``spec`` in the table's context."""
        total = sum(r["ms"] for r in self.explain(spec))
        return self.overhead["intercept_ms"] + self.overhead["scale"] * total

    def coverage(self, spec: Any) -> float:
        """Share of the spec's blocks found in the table."""
        rows = self.explain(spec)
        return sum(r["exact"] for r in rows) / len(rows)

    # -- calibration --------------------------------------------------------------------
    def calibrate(
        self,
        samples: int = 10,
        seed: int = 10_000,
        space: Any = None,
        specs: Sequence[Any] | None = None,
        lock_dir: str | Path | None = None,
        allow_mismatch: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> CalibrationReport:
        """Measure ``samples`` random architectures (seeds from ``seed``, away from the build's)
        and compare with the predictions (the table is not changed)."""
        c = self.context
        dev = self._measure_kwargs()["device"]
        check_target(c["device_name"], device_name(dev), allow_mismatch, device=dev)
        if specs is None:
            space = space if space is not None else self.space
            if space is None:
                raise LatencyError(
                    f"calibrate: pass space= (the table was built on space {c['space']!r} with "
                    f"overrides {c.get('space_overrides') or {}}) or specs="
                )
            specs = sample_specs(space, samples, seed)
        rows = []
        for i, spec in enumerate(specs):
            predicted = self.predict(spec)
            cover = self.coverage(spec)
            measured = self._measure_whole(spec, lock_dir)
            err = 100.0 * (predicted - measured) / measured
            rows.append(
                {
                    "arch_id": spec.arch_id,
                    "measured_ms": measured,
                    "predicted_ms": predicted,
                    "error_pct": err,
                    "coverage": cover,
                }
            )
            if progress:
                progress(
                    f"[{i + 1}/{len(specs)}] {spec.arch_id[:12]}: measured {measured:.3f}"
                    f" ms, predicted {predicted:.3f} ms ({err:+.1f}%)"
                )
        if not rows:
            raise LatencyError("calibrate: no architectures to measure")
        keys = ("space", "device_name", "backend", "precision", "batch_size", "image_size")
        return CalibrationReport(
            rows=rows,
            within_10pct=sum(abs(r["error_pct"]) <= 10.0 for r in rows) / len(rows),
            kendall_tau=kendall_tau(
                [r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows]
            ),
            mape_pct=sum(abs(r["error_pct"]) for r in rows) / len(rows),
            coverage=sum(r["coverage"] for r in rows) / len(rows),
            context={**{k: c[k] for k in keys}, "timing": c.get("timing"), "seed": seed},
        )

    # -- files --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return table_document(self)

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (format `FORMAT`)."""
        import json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table file (an older format is upgraded in memory); a wrong format or a
        missing key raises LatencyError naming it."""
        doc = read_table(path)
        table = cls(
            context=doc["context"],
            entries=doc["entries"],
            overhead=doc["overhead"],
            fit_points=list(doc.get("fit_points", [])),
            estimator=dict(doc.get("estimator") or {}),
        )
        if doc.get("upgraded_from") or not table.estimator:
            table.estimator = fit_estimator(list(table.entries.values())) if table.entries else {}
        return table


_BLOCK_CACHE: dict[tuple[str, int, int], list[Block]] = {}


def spec_blocks_cached(table: LatencyTable, spec: Any) -> list[Block]:
    """`spec_blocks` at the table's image size and batch, memoised per arch_id."""
    key = (spec.arch_id, int(table.context["image_size"]), int(table.context["batch_size"]))
    if key not in _BLOCK_CACHE:
        if len(_BLOCK_CACHE) > 4096:
            _BLOCK_CACHE.clear()
        _BLOCK_CACHE[key] = spec_blocks(spec, key[1], key[2])
    return _BLOCK_CACHE[key]


__all__ = [
    "CalibrationReport",
    "FORMAT",
    "LatencyTable",
    "fit_estimator",
    "kendall_tau",
    "resolve_space",
    "sample_specs",
]
