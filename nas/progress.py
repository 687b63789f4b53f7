"""Terminal progress of a sweep: one plain line per finished trial, and a closing summary.

Plain lines (no cursor tricks) read well on a terminal, in ``ray job logs`` and in CI logs.
Each line says which trial finished and how, the counts (done / running / failed), the best
front so far and the elapsed and estimated remaining time.

Example line::

    [ 5/12] #4 COMPLETE ap=0.0213 lat=3.41ms 0.21M 12.3s | done 5 (1 failed) running 2 |
    front 3: ap 0.031@4.2ms 0.021@3.4ms | 1:02 elapsed, ~2:10 left
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from nas.secrets import mask_text


def fmt_duration(seconds: float) -> str:
    """``75`` -> ``'1:15'``; ``3725`` -> ``'1:02:05'``."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_trial(row: Mapping[str, Any]) -> str:
    """A short description of one finished trial."""
    parts = [f"#{row.get('number')} {row.get('status')}"]
    if _has(row.get("ap")):
        ap = f"ap={float(row['ap']):.4f}"
        if _has(row.get("repeats")) and int(row["repeats"]) > 1 and _has(row.get("ap_sd")):
            ap += f"(sd {float(row['ap_sd']):.4f}, {int(row['repeats'])} seeds)"
        parts.append(ap)
    if _has(row.get("latency_ms")):
        lat = f"lat={float(row['latency_ms']):.2f}ms"
        if _has(row.get("lat_cv")):
            lat += f"(cv {float(row['lat_cv']):.2f}"
            lat += ", UNSTABLE)" if _false(row.get("latency_stable")) else ")"
        parts.append(lat)
    if _has(row.get("params")):
        parts.append(f"{float(row['params']) / 1e6:.2f}M")
    if _has(row.get("wall_s")):
        parts.append(f"{float(row['wall_s']):.1f}s")
    if row.get("status") == "STOPPED" and _has(row.get("epochs_done")):
        parts.append(f"(epoch {int(row['epochs_done'])}/{int(row.get('epochs') or 0)})")
    if _has(row.get("reused_from")):
        parts.append(f"(reused #{int(row['reused_from'])})")
    if _has(row.get("reference")):
        parts.append(f"[{row['reference']}]")
    if row.get("status") == "INFEASIBLE":
        over = [str(c)[2:] for c in row.keys()  # every constraint column (nas.objectives)
                if str(c).startswith("c_") and _has(row.get(c)) and float(row[c]) > 0]
        parts.append(f"(over {', '.join(over)})" if over else "")
    if _has(row.get("error")):
        parts.append(f"error: {str(row['error'])[:120]}")
    return " ".join(p for p in parts if p)


def fmt_front(front: Any, limit: int = 4) -> str:
    """``front N: ap 0.031@4.2ms ...`` from a front DataFrame (best first)."""
    if front is None or len(front) == 0:
        return "front: none yet"
    pts = [
        f"{float(r['ap']):.3f}@{float(r['latency_ms']):.1f}ms"
        for _, r in front.head(limit).iterrows()
        if _has(r.get("ap")) and _has(r.get("latency_ms"))
    ]
    more = f" +{len(front) - limit}" if len(front) > limit else ""
    return f"front {len(front)}: ap {' '.join(pts)}{more}"


class Progress:
    """Prints the progress of one sweep session.

    ``total``: the trial budget (None: wall time only); ``deadline_s``: seconds this session may
    still start trials; ``running``: returns how many trials run now.
    """

    def __init__(
        self,
        total: int | None,
        deadline_s: float | None = None,
        running: Callable[[], int] | None = None,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.deadline_s = deadline_s
        self.running = running or (lambda: 0)
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.done_before = 0  # finished in earlier sessions
        self.done_now = 0

    def say(self, text: str) -> None:
        if self.enabled:
            print(mask_text(text), file=self.stream, flush=True)

    def start(self, run_dir: str, session: int, done_before: int, failed_before: int) -> None:
        self.done_before = done_before
        what = f"{self.total} trials" if self.total else "until the wall-time budget"
        if session > 1:
            self.say(
                f"opennac: resuming {run_dir} (session {session}): {done_before} trials done "
                f"({failed_before} failed), running to {what}"
            )
        else:
            self.say(f"opennac: search in {run_dir}: {what}")

    def trial_finished(
        self, row: Mapping[str, Any], counts: Mapping[str, int], front: Any
    ) -> None:
        self.done_now += 1
        done = self.done_before + self.done_now
        width = len(str(self.total or done))
        head = f"[{done:>{width}}/{self.total}]" if self.total else f"[{done}]"
        failed = counts.get("FAIL", 0)
        state = f"done {done}" + (f" ({failed} failed)" if failed else "")
        state += f" running {self.running()}"
        self.say(f"{head} {fmt_trial(row)} | {state} | {fmt_front(front)} | {self._times(done)}")

    def _times(self, done: int) -> str:
        elapsed = time.monotonic() - self.t0
        text = f"{fmt_duration(elapsed)} elapsed"
        left = None
        if self.total and self.done_now:
            left = elapsed / self.done_now * max(0, self.total - done)
        if self.deadline_s is not None:
            by_clock = max(0.0, self.deadline_s - elapsed)
            left = by_clock if left is None else min(left, by_clock)
        if left is not None:
            text += f", ~{fmt_duration(left)} left"
        return text

    def summary(
        self,
        run_dir: str,
        status: str,
        counts: Mapping[str, int],
        front: Any,
        variants: Mapping[str, Any],
        notes: list[str],
        noise: str | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        """The closing summary; ``noise``: the run's noise band in one line; ``warnings``:
        printed loudly before the variants (e.g. reference latencies out of order)."""
        elapsed = fmt_duration(time.monotonic() - self.t0)
        total = sum(counts.values())
        tally = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items()) if n)
        self.say(f"\nopennac: sweep {status} after {elapsed}: {total} trials ({tally or 'none'})")
        if noise:
            self.say(f"noise: {noise}")
        if front is not None and len(front):
            self.say("Pareto front (full fidelity, feasible; ap +- its noise interval, ties: "
                     "front members whose intervals overlap):")
            self.say(front_table(front))
        else:
            self.say("Pareto front: empty (no complete, feasible trial at full fidelity)")
        for warning in warnings or []:
            self.say(f"WARNING: {warning}")
        for name, info in variants.items():
            self.say(f"variant {name}: {info}")
        for note in notes:
            self.say(f"note: {note}")
        self.say(f"run directory: {run_dir}")


def front_table(front: Any, limit: int = 20) -> str:
    """A small fixed-width table of a front (number, ap, latency, params, GFLOPs, arch file)."""
    lines = [f"  {'trial':>5}  {'ap':>7}  {'+-':>6}  {'lat_ms':>8}  {'cv':>5}  {'params':>8}"
             f"  {'gflops':>7}  {'ties':>6}  arch"]
    for _, r in front.head(limit).iterrows():
        params = f"{float(r['params']) / 1e6:.2f}M" if _has(r.get("params")) else "-"
        gflops = f"{float(r['gflops']):.3f}" if _has(r.get("gflops")) else "-"
        ci = f"{float(r['ap_ci']):.4f}" if _has(r.get('ap_ci')) else "-"
        cv = f"{float(r['lat_cv']):.2f}" if _has(r.get("lat_cv")) else "-"
        if _false(r.get("latency_stable")):
            cv += "!"
        ties = str(r["tied_with"]) if _has(r.get("tied_with")) else "-"
        lines.append(
            f"  {int(r['number']):>5}  {float(r['ap']):>7.4f}  {ci:>6}"
            f"  {float(r['latency_ms']):>8.2f}  {cv:>5}  {params:>8}  {gflops:>7}  {ties:>6}"
            f"  {r.get('arch_file') or ''}"
        )
    if len(front) > limit:
        lines.append(f"  ... {len(front) - limit} more in pareto.csv")
    return "\n".join(lines)


def _false(value: Any) -> bool:
    """A flag that is set and false (missing is not false)."""
    from nas.objectives import truthy

    return _has(value) and not truthy(value)


def _has(value: Any) -> bool:
    if value is None:
        return False
    try:
        return value == value and str(value) != "<NA>"  # not NaN / pd.NA
    except (TypeError, ValueError):
        return False


__all__ = ["Progress", "fmt_duration", "fmt_front", "fmt_trial", "front_table"]
