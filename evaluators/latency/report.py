"""Text of the latency results: one measurement, a latency table, a calibration report.

One place for the formatting that the ``opennac latency`` / ``opennac latency-table`` commands
and the ``benchmarks/latency.py`` / ``benchmarks/gpu_latency.py`` scripts print (plain text or
markdown). Imports nothing beyond the standard library (the GPU machine's script uses it too).

Example:
    >>> print(markdown_table(["model", "ms"], [["yolo_nas_s", "1.234"]]))
    | model | ms |
    |---|---|
    | yolo_nas_s | 1.234 |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


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

    def format(self, markdown: bool = False) -> str:
        """The rows as a table plus the summary line (see `format_calibration`)."""
        return format_calibration(self, markdown)

    def summary(self) -> str:
        """One line: within +-10 %, Kendall tau, MAPE, coverage, count and device."""
        return (
            f"within +-10%: {self.within_10pct:.0%}   Kendall tau: {self.kendall_tau:.3f}   "
            f"MAPE: {self.mape_pct:.1f}%   block coverage: {self.coverage:.0%}   "
            f"({len(self.rows)} architectures, {self.context.get('device_name', '?')})"
        )


def markdown_row(cells: Sequence[Any]) -> str:
    """One markdown table row; cells are written with ``str``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (header, rule, rows); with no rows, the header and rule only."""
    lines = [markdown_row(headers), "|" + "---|" * len(headers)]
    return "\n".join(lines + [markdown_row(row) for row in rows])


def format_calibration(report: CalibrationReport, markdown: bool = False) -> str:
    """Per architecture: measured and predicted ms, error and block coverage; then the
    summary line. Plain text (aligned columns) or a markdown table."""
    cells = [
        (
            r["arch_id"][:12],
            f"{r['measured_ms']:.3f}",
            f"{r['predicted_ms']:.3f}",
            f"{r['error_pct']:+.1f}%",
            f"{r['coverage']:.2f}",
        )
        for r in report.rows
    ]
    if markdown:
        head = ["arch_id", "measured ms", "predicted ms", "error", "coverage"]
        return markdown_table(head, cells) + "\n\n" + report.summary()
    lines = [f"{'arch_id':<14}{'measured_ms':>12}{'predicted_ms':>13}{'error':>9}{'cover':>7}"]
    lines += [f"{a:<14}{m:>12}{p:>13}{e:>9}{c:>7}" for a, m, p, e, c in cells]
    lines.append(report.summary())
    return "\n".join(lines)


def format_table_summary(table: Any, build_s: float | None = None) -> str:
    """One line about a `LatencyTable`: entries, architectures, device, timing, overhead."""
    o = table.overhead
    took = f" in {build_s:.0f} s" if build_s is not None else ""
    return (
        f"{len(table.entries)} blocks from {len(table.fit_points)} architectures{took} on "
        f"{table.context.get('device_name', '?')} ({table.context.get('timing', 'isolated')} "
        f"timing); overhead {o['intercept_ms']:.3f} ms + {o['scale']:.3f} x sum(blocks) "
        f"({o.get('method', 'least squares')}, rmse {o.get('rmse_ms', 0.0):.3f} ms)"
    )


def format_result(name: str, r: Any) -> str:
    """The plain-text description of one `LatencyResult` (``opennac latency``'s output)."""
    lines = [
        f"{name}  ({r.arch_id[:12] if r.arch_id else '-'})",
        f"device       {r.device_name} ({r.device})",
        f"backend      {r.backend}, {r.precision}, batch {r.batch_size}, "
        f"{r.image_size}x{r.image_size}, {r.num_threads} thread(s)",
        f"median       {r.median_ms:.3f} ms   ({r.fps:.1f} images/s)",
        f"p90          {r.p90_ms:.3f} ms",
        f"mean / min   {r.mean_ms:.3f} / {r.min_ms:.3f} ms",
        f"cv           {r.cv:.3f}  ({'stable' if r.stable else 'UNSTABLE'}, "
        f"{r.repeats} round(s) of {r.samples})",
    ]
    t = r.telemetry
    if "sm_clock_mhz" in t:
        lines.append(
            f"clocks       SM {t['sm_clock_mhz']} MHz (max {t.get('sm_clock_max_mhz', '?')}), "
            f"memory {t.get('mem_clock_mhz', '?')} MHz"
        )
    if "temperature_c" in t:
        lines.append(
            f"gpu          {t['temperature_c']} C, {t.get('power_w', '?')} W, driver "
            f"{t.get('driver', '?')}, throttle: {t.get('throttle_reasons') or 'none'}"
        )
    if "loadavg_1m" in t:
        lines.append(f"cpu load     {t['loadavg_1m']} (1 min), {t.get('cpu_count', '?')} cores")
    lines.append("versions     " + ", ".join(f"{k} {v}" for k, v in r.versions.items()))
    return "\n".join(lines)


def result_row(name: str, r: Any, gpu: bool = False) -> list[str]:
    """A markdown-table row of one `LatencyResult`: name, backend, median, p90, min, cv,
    rounds, wall time; with ``gpu`` the SM clock, temperature, power and throttle instead of
    min, rounds and wall time (see `RESULT_HEADERS`)."""
    row = [name, r.backend, f"{r.median_ms:.3f}", f"{r.p90_ms:.3f}"]
    if not gpu:
        return row + [f"{r.min_ms:.3f}", f"{r.cv:.3f}", str(r.repeats), f"{r.wall_s:.2f}"]
    t = r.telemetry
    return row + [
        f"{r.cv:.3f}",
        str(t.get("sm_clock_mhz", "-")),
        str(t.get("temperature_c", "-")),
        str(t.get("power_w", "-")),
        str(t.get("throttle_reasons", "-") or "none"),
    ]


RESULT_HEADERS = {
    "cpu": ["model", "backend", "median ms", "p90 ms", "min ms", "cv", "rounds", "wall s"],
    "gpu": [
        "model",
        "backend",
        "median ms",
        "p90 ms",
        "cv",
        "SM MHz",
        "temp C",
        "power W",
        "throttle",
    ],
}


__all__ = [
    "CalibrationReport",
    "RESULT_HEADERS",
    "format_calibration",
    "format_result",
    "format_table_summary",
    "markdown_row",
    "markdown_table",
    "result_row",
]
