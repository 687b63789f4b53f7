"""The noise part of a report: the run's noise band, its calibration, noise-aware claims.

`noise_lines(summary)` gives report.md's "Noise" lines of one run: the pooled seed sd of AP, the
smallest AP difference the run can tell apart, the calibration file the experiment points at
(`calibration: PATH`, quoted with its Kendall tau and seed sd) and the latency measurements that
did not settle. `add_claims(variants, band, info)` gives each variant its noise-aware verdict
against its reference (`nas.noise.claim`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nas.noise import NoiseBand, claim, load_calibration


def add_claims(variants: list[dict[str, Any]], band: NoiseBand,
               info: Mapping[str, Any]) -> None:
    """Set ``claim`` / ``verdict`` on each variant dict (from `nas.report._variants`).

    The reference latency is the one its budget came from (run.json ``reference_latency``,
    which holds re-measurements) when known, with its CV."""
    lat_info = info.get("reference_latency") or {}
    for v in variants:
        if "error" in v or not v.get("reference"):
            continue
        ref = lat_info.get(v["reference"]) or {}
        if _num(ref.get("latency_ms")) is not None:
            v["reference_latency_ms"] = _num(ref.get("latency_ms"))
        if v.get("ap") is None or v.get("latency_ms") is None:
            continue
        c = claim(v["ap"], v.get("repeats"), v["latency_ms"], v.get("lat_cv"),
                  v.get("reference_ap"), v.get("reference_repeats"),
                  v.get("reference_latency_ms"), ref.get("cv", v.get("reference_lat_cv")),
                  band, v["reference"])
        v["claim"] = c.text
        v["verdict"] = c.verdict


def noise_lines(r: Any) -> list[str]:
    """report.md lines on the noise of run summary ``r`` (`nas.report.RunSummary`)."""
    lines = ["", "### Noise", ""]
    band: NoiseBand | None = r.noise
    if band is not None:
        lines.append(f"- AP: {band.describe()}.")
        if band.seed_sd is not None:
            lines.append(
                f"- seeds: {band.repeats} per candidate, {band.reference_repeats} per reference "
                f"point; intervals are mean +- {band.z:g} x sd / sqrt(seeds), and a variant "
                "beats its reference only when the intervals do not overlap and its latency is "
                "lower beyond both CVs; otherwise: not distinguishable at this fidelity."
            )
    cal_path = (r.experiment or {}).get("calibration")
    if cal_path:
        cal = load_calibration(cal_path)
        if cal is None:
            lines.append(f"- calibration `{cal_path}`: cannot be read.")
        else:
            from nas.calibrate import describe

            lines.append(f"- calibration `{cal_path}`: {describe(cal)}.")
            short = cal.get("short_fidelity") or {}
            fid = (r.experiment or {}).get("fidelity") or {}
            if short.get("epochs") not in (None, fid.get("epochs")):
                lines.append(f"  (calibrated at {short.get('epochs')} epochs, this run trains "
                             f"{fid.get('epochs')}: its numbers describe another fidelity)")
    df = r.trials
    if "latency_stable" in df.columns and len(df):
        flags = df["latency_stable"]
        bad = df[flags.notna() & ~flags.fillna(True).astype(bool)]
        if len(bad):
            nums = ", ".join(str(int(n)) for n in bad["number"])
            lines.append(f"- latency: {len(bad)} measurement(s) never settled under the CV "
                         f"threshold (trials {nums}; `cv` column, `!`).")
        else:
            lines.append("- latency: every measurement settled under the CV threshold.")
    if "threads" in df.columns and df["threads"].notna().any():
        threads = sorted({int(t) for t in df["threads"].dropna()})
        lines.append(f"- training threads per trial: {', '.join(map(str, threads))} "
                     "(fixed, so AP does not depend on the machine's load).")
    return lines


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


__all__ = ["add_claims", "noise_lines"]
