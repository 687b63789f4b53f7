"""Per-block latency lookup table for a search space, and its calibration.

`LatencyTable.build` samples architectures of a space, builds and fuses each, and times every
block (see `evaluators.latency.decompose`) at its input shapes on the device, once per distinct
block; it also times the whole models. A prediction is::

    predicted_ms = intercept_ms + scale * sum(block_ms)

where ``intercept_ms`` and ``scale`` are a non-negative least-squares fit on the whole-model
measurements (the work done between blocks and the effect of running blocks back to back; with
fewer than four measurements, a ratio through zero). A block the table has never seen is
estimated from its convolution work (see `fit_estimator`) and counted as not covered.

`LatencyTable.calibrate` measures fresh random architectures and reports the share of
predictions within +-10 % and Kendall's tau between predicted and measured latencies.

Example:
    >>> from search_spaces import get_space
    >>> table = LatencyTable.build(get_space("yolo_nas", width_scale=0.25), image_size=64,
    ...                            samples=2, warmup=1, iters=3)   # doctest: +SKIP
    >>> table.predict(get_space("yolo_nas").reference_specs()["yolo_nas_s"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from evaluators.latency.backends import check_support, make_runner, parse_device
from evaluators.latency.decompose import Block, decompose, spec_blocks
from evaluators.latency.fitting import FEATURES, fit_estimator, kendall_tau, nonneg_lstsq
from evaluators.latency.lock import device_lock
from evaluators.latency.measure import (
    cudnn_benchmark,
    device_key,
    measure_latency,
    time_runner,
    torch_threads,
)
from evaluators.latency.result import LatencyError
from evaluators.latency.target import check_target
from evaluators.latency.telemetry import device_name, library_versions

FORMAT = "opennac-latency-table/1"
MIN_LINE_POINTS = 4  # whole-model measurements needed to fit an intercept as well as a scale


@dataclass
class CalibrationReport:
    """Predicted vs measured latency on architectures the table was not fitted on."""

    rows: list[dict[str, Any]]
    within_10pct: float  # share of predictions within +-10 % of the measurement
    kendall_tau: float
    mape_pct: float  # mean absolute percentage error
    coverage: float  # share of blocks found in the table (the rest estimated)
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "within_10pct": self.within_10pct,
            "kendall_tau": self.kendall_tau,
            "mape_pct": self.mape_pct,
            "coverage": self.coverage,
            "samples": len(self.rows),
            "rows": self.rows,
            "context": self.context,
        }

    def format(self) -> str:
        """A plain-text table plus the summary line."""
        lines = [f"{'arch_id':<14}{'measured_ms':>12}{'predicted_ms':>13}{'error':>9}{'cover':>7}"]
        for r in self.rows:
            lines.append(
                f"{r['arch_id'][:12]:<14}{r['measured_ms']:>12.3f}{r['predicted_ms']:>13.3f}"
                f"{r['error_pct']:>8.1f}%{r['coverage']:>7.2f}"
            )
        lines.append(
            f"within +-10%: {self.within_10pct:.0%}   Kendall tau: {self.kendall_tau:.3f}   "
            f"MAPE: {self.mape_pct:.1f}%   block coverage: {self.coverage:.0%}   "
            f"({len(self.rows)} architectures, {self.context.get('device_name', '?')})"
        )
        return "\n".join(lines)


def resolve_space(space: Any, overrides: dict[str, Any] | None = None) -> Any:
    """A space object, or a name looked up with ``search_spaces.get_space``."""
    if hasattr(space, "sample"):
        return space
    from search_spaces import get_space

    try:
        return get_space(str(space), **(overrides or {}))
    except ValueError as exc:
        raise LatencyError(str(exc)) from None


def sample_specs(space: Any, samples: int, seed: int) -> list[Any]:
    """``samples`` random architectures of ``space`` (seeds ``seed``, ``seed + 1``, ...)."""
    from search_spaces import RandomTrial

    return [space.sample(RandomTrial(seed=seed + i)) for i in range(samples)]


@dataclass
class LatencyTable:
    """Block latencies of one device and context, plus the fitted overhead terms.

    ``entries``: block key -> ``{"block", "ms", "cv", "gmacs", "layers", "mact"}``.
    ``overhead``: ``{"intercept_ms", "scale"}``; ``fit_points``: whole-model measurements
    (``arch_id``, ``blocks_ms``, ``measured_ms``); ``estimator``: `fit_estimator`'s coefficients
    for unseen blocks.
    """

    context: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    overhead: dict[str, float] = field(default_factory=lambda: {"intercept_ms": 0.0, "scale": 1.0})
    fit_points: list[dict[str, Any]] = field(default_factory=list)
    estimator: dict[str, Any] = field(default_factory=dict)

    # -- building -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        space: Any,
        device: str = "cpu",
        image_size: int = 640,
        samples: int = 8,
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
            "samples": samples,
            "seed": seed,
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        table = cls(context=context)
        specs = sample_specs(space, samples, seed)
        if references and hasattr(space, "reference_specs"):
            specs += list(space.reference_specs().values())
        for i, spec in enumerate(specs):
            new = table.extend(spec, lock_dir=lock_dir)
            measured = table._measure_whole(spec, lock_dir)
            blocks_ms = sum(table.entries[b.key]["ms"] for b in spec_blocks_cached(table, spec))
            table.fit_points.append(
                {"arch_id": spec.arch_id, "blocks_ms": blocks_ms, "measured_ms": measured}
            )
            if progress:
                progress(
                    f"[{i + 1}/{len(specs)}] {spec.arch_id[:12]}: {new} new blocks, "
                    f"sum {blocks_ms:.3f} ms, whole {measured:.3f} ms"
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

    def extend(self, spec: Any, lock_dir: str | Path | None = None) -> int:
        """Time the blocks of ``spec`` that the table lacks (on this machine's device, which
        must be the table's); returns how many were added."""
        from models.build import build_model, fuse

        c = self.context
        dev = parse_device(self._measure_kwargs()["device"])
        check_target(c["device_name"], device_name(str(dev)), device=dev.type)
        if all(b.key in self.entries for b in spec_blocks_cached(self, spec)):
            return 0
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        model = fuse(build_model(spec)).to(device=dev, dtype=dtype[c["precision"]])
        size, batch = c["image_size"], c["batch_size"]
        x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
        added = 0
        with (
            torch_threads(c["num_threads"]),
            cudnn_benchmark(dev.type == "cuda"),
            device_lock(device_key(dev), lock_dir),
        ):
            blocks = decompose(model, x.to(device=dev, dtype=model_dtype(model)), True)
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
                self.entries[block.key] = {
                    "block": block.path,
                    "ms": timing.median_ms,
                    "cv": round(timing.cv, 4),
                    **{k: round(v, 6) for k, v in block.features().items()},
                }
                added += 1
        if dev.type == "cuda":
            del model
            torch.cuda.empty_cache()
        return added

    def refit(self) -> None:
        """Fit the unseen-block estimator on the entries and the overhead on the fit points."""
        self.estimator = fit_estimator(list(self.entries.values())) if self.entries else {}
        pts = self.fit_points
        spread = len({round(p["blocks_ms"], 9) for p in pts})
        scale, intercept = 0.0, 0.0
        if len(pts) >= MIN_LINE_POINTS and spread >= 2:
            scale, intercept = nonneg_lstsq(
                [[p["blocks_ms"], 1.0] for p in pts], [p["measured_ms"] for p in pts]
            )
        if scale <= 0:  # too few points for a line, or no slope: a ratio through zero
            num = sum(p["measured_ms"] * p["blocks_ms"] for p in pts)
            den = sum(p["blocks_ms"] ** 2 for p in pts)
            scale, intercept = (num / den if den > 0 else 1.0), 0.0
        resid = [p["measured_ms"] - (intercept + scale * p["blocks_ms"]) for p in pts]
        self.overhead = {
            "intercept_ms": float(intercept),
            "scale": float(scale),
            "points": len(pts),
            "rmse_ms": math.sqrt(sum(r * r for r in resid) / len(resid)) if resid else 0.0,
        }

    # -- predicting ---------------------------------------------------------------------
    def estimate_block(self, block: Block) -> float:
        """Latency of a block the table lacks, from its convolution work."""
        if not self.estimator:
            raise LatencyError("latency table has no entries to estimate unseen blocks from")
        feats = block.features()
        local = self.estimator.get("paths", {}).get(block.path)
        if local is not None:  # same position: ms = const + rate * GMACs
            return local["const_ms"] + local["ms_per_gmac"] * feats["gmacs"]
        coef = self.estimator["global"]
        return coef["const_ms"] + sum(coef[f] * feats[f] for f in FEATURES)

    def explain(self, spec: Any) -> list[dict[str, Any]]:
        """Per block: path, key, ms and whether it came from the table (``exact``)."""
        rows = []
        for b in spec_blocks_cached(self, spec):
            entry = self.entries.get(b.key)
            ms = entry["ms"] if entry else self.estimate_block(b)
            rows.append({"block": b.path, "key": b.key, "ms": ms, "exact": entry is not None})
        return rows

    def predict(self, spec: Any) -> float:
        """Predicted latency (ms) of ``spec`` in the table's context."""
        total = sum(r["ms"] for r in self.explain(spec))
        return self.overhead["intercept_ms"] + self.overhead["scale"] * total

    def coverage(self, spec: Any) -> float:
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
        and compare with the predictions."""
        c = self.context
        dev = self._measure_kwargs()["device"]
        check_target(c["device_name"], device_name(dev), allow_mismatch, device=dev)
        if specs is None:
            space = resolve_space(space or c["space"], c.get("space_overrides"))
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
        return CalibrationReport(
            rows=rows,
            within_10pct=sum(abs(r["error_pct"]) <= 10.0 for r in rows) / len(rows),
            kendall_tau=kendall_tau(
                [r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows]
            ),
            mape_pct=sum(abs(r["error_pct"]) for r in rows) / len(rows),
            coverage=sum(r["coverage"] for r in rows) / len(rows),
            context={
                **{
                    k: c[k]
                    for k in (
                        "space",
                        "device_name",
                        "backend",
                        "precision",
                        "batch_size",
                        "image_size",
                    )
                },
                "seed": seed,
            },
        )

    # -- files --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "context": self.context,
            "overhead": self.overhead,
            "estimator": self.estimator,
            "fit_points": self.fit_points,
            "entries": self.entries,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table file; a wrong format or a missing key raises LatencyError naming it."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LatencyError(f"{path}: no such latency table file") from None
        except (OSError, ValueError) as exc:
            raise LatencyError(f"{path}: not a JSON latency table ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            got = doc.get("format") if isinstance(doc, dict) else None
            raise LatencyError(f"{path}: format {got!r}, expected {FORMAT!r}")
        for key in ("context", "entries", "overhead"):
            if not isinstance(doc.get(key), dict):
                raise LatencyError(f"{path}: key {key!r} missing or not a mapping")
        for key in (
            "device",
            "device_name",
            "backend",
            "precision",
            "batch_size",
            "image_size",
            "space",
        ):
            if key not in doc["context"]:
                raise LatencyError(f"{path}: key 'context.{key}' missing")
        return cls(
            context=doc["context"],
            entries=doc["entries"],
            overhead=doc["overhead"],
            fit_points=list(doc.get("fit_points", [])),
            estimator=dict(doc.get("estimator", {})),
        )


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        return p.dtype
    return torch.float32


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
    "nonneg_lstsq",
    "resolve_space",
    "sample_specs",
]
