"""Score noise: seed repeats, the run's noise band, AP intervals, ties and honest claims.

A short training run's AP depends on its seed (initialisation, data order, augmentations) by
several AP points at the quickstart fidelity. With ``fidelity.repeats: K`` each candidate is
trained with seeds ``seed, seed+1, ...`` and scored by the mean; ``noise.reference_repeats``
gives the reference points more seeds. From the trials with two or more seeds the run pools the
seed standard deviation of AP (``seed_sd``, each trial's variance weighted by its degrees of
freedom); a calibration file (`opennac calibrate`) stands in when no trial has two seeds.

The AP of a trial with ``n`` seeds is the interval ``mean +- z * seed_sd / sqrt(n)`` (``z`` =
``noise.z``, 1.96); two scores are told apart only when their intervals do not overlap, so the
smallest AP difference a run can tell apart between two candidates is
``2 * z * seed_sd / sqrt(repeats)`` (``min_ap_diff`` in run.json). A latency is lower than
another beyond its noise when ``a * (1 + cv_a) < b * (1 - cv_b)`` (cv: the coefficient of
variation of the timed runs).

Example:
    >>> band = NoiseBand(seed_sd=0.02, dof=4, trials=4, z=2.0, repeats=1, reference_repeats=4)
    >>> round(band.halfwidth(4), 3), round(band.min_ap_diff, 3)
    (0.02, 0.08)
    >>> claim(0.20, 1, 3.0, 0.02, 0.15, 4, 5.0, 0.02, band).verdict  # +0.05 < 0.04 + 0.02
    'not distinguishable'
    >>> claim(0.25, 1, 3.0, 0.02, 0.15, 4, 5.0, 0.02, band).verdict
    'beats'
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NOT_DISTINGUISHABLE = "not distinguishable at this fidelity"


# --------------------------------------------------------------------------- seeds of a trial


def trial_seeds(fidelity: Any, reference: str | None,
                reference_repeats: int | None) -> list[int]:
    """The seeds a trial trains with: ``[seed, seed+1, ...]``, ``fidelity.repeats`` of them
    (``reference_repeats`` for a reference point when set). The first is the main run.
    ``fidelity``: the experiment's `Fidelity`."""
    k = int(fidelity.repeats or 1)
    if reference and reference_repeats:
        k = int(reference_repeats)
    seed = int(fidelity.seed or 0)
    return [seed + i for i in range(k)]


def seed_summary(aps: Sequence[float]) -> dict[str, Any]:
    """Trials-table fields of the per-seed APs: ``ap`` (mean), ``ap_sd`` (sample sd, None for
    one seed), ``ap_seeds`` (JSON list) and ``repeats``."""
    values = [float(a) for a in aps]
    if not values:
        raise ValueError("seed_summary: no AP values")
    return {
        "ap": statistics.fmean(values),
        "ap_sd": statistics.stdev(values) if len(values) > 1 else None,
        "ap_seeds": json.dumps([round(v, 6) for v in values]),
        "repeats": len(values),
    }


def parse_seeds(value: Any) -> list[float]:
    """The per-seed APs of a trials-table cell (a JSON list, a list or nothing)."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                out.append(f)
        return out
    return []


# --------------------------------------------------------------------------- the noise band


@dataclass(frozen=True)
class NoiseBand:
    """The seed noise of a run's AP (see the module docstring).

    ``seed_sd``: pooled seed standard deviation of AP (None: not measured); ``dof``: its degrees
    of freedom; ``trials``: trials with two or more seeds; ``repeats`` / ``reference_repeats``:
    seeds per candidate / reference; ``source``: ``repeats``, ``calibration`` or ``none``.
    """

    seed_sd: float | None
    dof: int
    trials: int
    z: float = 1.96
    repeats: int = 1
    reference_repeats: int = 1
    source: str = "repeats"
    calibration: str | None = None

    def halfwidth(self, n: Any = None) -> float | None:
        """Half-width of the AP interval of a mean over ``n`` seeds (default ``repeats``)."""
        if self.seed_sd is None:
            return None
        n = _count(n) or self.repeats
        return self.z * self.seed_sd / math.sqrt(n)

    @property
    def min_ap_diff(self) -> float | None:
        """The smallest AP difference between two candidates the run can tell apart."""
        h = self.halfwidth(self.repeats)
        return None if h is None else 2 * h

    def distinct(self, a: float, n_a: Any, b: float, n_b: Any) -> bool | None:
        """Whether APs ``a`` (``n_a`` seeds) and ``b`` differ beyond the noise (None: unknown)."""
        ha, hb = self.halfwidth(n_a), self.halfwidth(n_b)
        if ha is None or hb is None:
            return None
        return abs(float(a) - float(b)) > ha + hb

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["min_ap_diff"] = self.min_ap_diff
        for key in ("seed_sd", "min_ap_diff"):
            if d[key] is not None:
                d[key] = round(float(d[key]), 6)
        return d

    def describe(self) -> str:
        """One line: the band and where it comes from."""
        if self.seed_sd is None:
            return ("seed noise not measured (every trial has one seed): set fidelity.repeats "
                    "or noise.reference_repeats >= 2, or point `calibration:` at a calibration "
                    "file; AP differences are not checked against noise")
        where = (f"pooled over {self.trials} trials with 2+ seeds, {self.dof} dof"
                 if self.source == "repeats" else f"from calibration {self.calibration}")
        return (f"seed sd of AP {self.seed_sd:.4f} ({where}); AP +- {self.halfwidth():.4f} "
                f"with {self.repeats} seed(s); smallest AP difference told apart "
                f"{self.min_ap_diff:.4f}")


def band_of_run(df: Any, experiment: Mapping[str, Any], info: Mapping[str, Any]) -> NoiseBand:
    """The band of a finished run as its report sees it: run.json's ``noise`` when present,
    else computed from its trials and resolved experiment (plain dicts)."""
    saved = info.get("noise")
    if isinstance(saved, Mapping):
        fields = {k: saved.get(k) for k in ("seed_sd", "dof", "trials", "z", "repeats",
                                            "reference_repeats", "source", "calibration")}
        if all(fields[k] is not None for k in ("dof", "trials", "z", "repeats")):
            return NoiseBand(**{k: v for k, v in fields.items() if v is not None or
                                k in ("seed_sd", "calibration")})
    fid = experiment.get("fidelity") or {}
    noise = experiment.get("noise") or {}
    repeats = int(fid.get("repeats") or 1)
    cal_path = experiment.get("calibration")
    cal = load_calibration(cal_path)
    if cal is not None and not _same_fidelity(cal.get("short_fidelity") or {}, fid):
        cal = None
    return noise_band(df, repeats, noise.get("reference_repeats") or repeats,
                      float(noise.get("z") or 1.96), cal, cal_path)


def pooled_seed_sd(df: Any) -> tuple[float | None, int, int]:
    """(pooled sd, dof, trials) over the complete, not reused trials with 2+ seeds."""
    if df is None or len(df) == 0 or "ap_seeds" not in df.columns:
        return None, 0, 0
    ss, dof, trials = 0.0, 0, 0
    for _, row in df.iterrows():
        if str(row.get("status")) != "COMPLETE" or _present(row.get("reused_from")):
            continue
        seeds = parse_seeds(row.get("ap_seeds"))
        if len(seeds) < 2:
            continue
        ss += statistics.variance(seeds) * (len(seeds) - 1)
        dof += len(seeds) - 1
        trials += 1
    if dof == 0:
        return None, 0, 0
    return math.sqrt(ss / dof), dof, trials


def noise_band(
    df: Any,
    repeats: int = 1,
    reference_repeats: int | None = None,
    z: float = 1.96,
    calibration: Mapping[str, Any] | None = None,
    calibration_path: str | None = None,
) -> NoiseBand:
    """The run's band from its trials' seeds, else from ``calibration`` (a loaded
    calibration.json whose short fidelity is the run's), else unknown."""
    sd, dof, trials = pooled_seed_sd(df)
    common = {"z": float(z), "repeats": int(repeats),
              "reference_repeats": int(reference_repeats or repeats)}
    if sd is not None:
        return NoiseBand(sd, dof, trials, source="repeats", **common)
    cal_sd = (calibration or {}).get("seed_sd_short")
    if isinstance(cal_sd, (int, float)) and math.isfinite(cal_sd):
        return NoiseBand(float(cal_sd), int((calibration or {}).get("seed_dof_short") or 0), 0,
                         source="calibration", calibration=calibration_path, **common)
    return NoiseBand(None, 0, 0, source="none", **common)


def run_noise(df: Any, exp: Any) -> NoiseBand:
    """`noise_band` with an experiment's settings (and its calibration file, when it matches
    the experiment's fidelity)."""
    cal = load_calibration(exp.calibration) if getattr(exp, "calibration", None) else None
    if cal is not None and not calibration_matches(cal, exp):
        cal = None
    return noise_band(df, exp.fidelity.repeats, exp.reference_repeats, exp.noise.z, cal,
                      exp.calibration)


def load_calibration(path: str | Path | None) -> dict[str, Any] | None:
    """A calibration.json (a file or its folder) as a dict; None when absent or unreadable."""
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "calibration.json"
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


_FIDELITY_KEYS = ("epochs", "image_size", "batch", "train_images", "val_images", "lr")


def calibration_matches(cal: Mapping[str, Any], exp: Any) -> bool:
    """Whether a calibration's short fidelity is the experiment's (epochs, size, images...)."""
    return _same_fidelity(cal.get("short_fidelity") or {}, asdict(exp.fidelity))


def _same_fidelity(short: Mapping[str, Any], fidelity: Mapping[str, Any]) -> bool:
    return all(short.get(k) == fidelity.get(k) for k in _FIDELITY_KEYS if k in short)


def with_noise(rows: Sequence[Mapping[str, Any]], exp: Any) -> tuple[list[dict[str, Any]],
                                                                     NoiseBand]:
    """Trials-table rows with ``ap_ci`` (the AP interval's half-width) set from the run's
    current band, and that band (`run_noise`)."""
    from nas.rundir import trials_frame

    rows = [dict(r) for r in rows]
    band = run_noise(trials_frame(rows), exp)
    for r in rows:
        if _present(r.get("ap")) and str(r.get("status")) in ("COMPLETE", "STOPPED"):
            r["ap_ci"] = band.halfwidth(r.get("repeats"))
    return rows, band


# --------------------------------------------------------------------------- intervals and ties


def ap_intervals(df: Any, band: NoiseBand) -> list[float | None]:
    """The AP half-width of each row (by its ``repeats``), None where unknown."""
    if df is None or len(df) == 0:
        return []
    reps = df["repeats"] if "repeats" in df.columns else [None] * len(df)
    out = []
    for ap, n in zip(df["ap"], reps, strict=True):
        out.append(band.halfwidth(n) if _present(ap) else None)
    return out


def mark_ties(front: Any, band: NoiseBand) -> Any:
    """A copy of ``front`` with ``ap_ci`` (half-width) and ``tied_with`` (comma-separated trial
    numbers of the other front members whose AP interval overlaps this one's; None when none
    or when the noise is unknown)."""
    out = front.copy()
    if len(out) == 0:
        out["ap_ci"] = []
        out["tied_with"] = []
        return out
    out["ap_ci"] = ap_intervals(out, band)
    numbers = [int(n) for n in out["number"]]
    reps = list(out["repeats"]) if "repeats" in out.columns else [None] * len(out)
    aps = [float(a) for a in out["ap"]]
    ties: list[str | None] = []
    for i in range(len(out)):
        tied = [str(numbers[j]) for j in range(len(out))
                if j != i and band.distinct(aps[i], reps[i], aps[j], reps[j]) is False]
        ties.append(",".join(tied) if tied else None)
    out["tied_with"] = ties
    return out


# --------------------------------------------------------------------------- claims


def latency_lower(a_ms: float, a_cv: Any, b_ms: float, b_cv: Any) -> bool:
    """``a`` is lower than ``b`` beyond both measurements' noise: a(1+cv_a) < b(1-cv_b)."""
    ca, cb = _cv(a_cv), _cv(b_cv)
    return float(a_ms) * (1 + ca) < float(b_ms) * (1 - cb)


@dataclass(frozen=True)
class Claim:
    """What may be said of a variant against its reference: ``verdict`` is ``beats``,
    ``below`` (lower AP beyond the noise), ``not distinguishable`` or ``unknown`` (no reference
    AP); ``text`` says it in a sentence with the numbers."""

    verdict: str
    text: str
    ap_gain: float | None = None
    ap_band: float | None = None


def claim(
    ap: float, n: Any, latency_ms: float, cv: Any,
    ref_ap: float | None, ref_n: Any, ref_latency_ms: float | None, ref_cv: Any,
    band: NoiseBand, reference: str = "the reference",
) -> Claim:
    """The claim a variant (AP over ``n`` seeds, latency with its CV) may make against its
    reference: it beats it only when the AP gain exceeds the two intervals' half-widths and its
    latency is lower beyond both CVs; otherwise it is not distinguishable at this fidelity."""
    if ref_ap is None or ref_latency_ms is None:
        return Claim("unknown", f"no AP of {reference} in this run: nothing to compare")
    gain = float(ap) - float(ref_ap)
    ha, hb = band.halfwidth(n), band.halfwidth(ref_n)
    if ha is None or hb is None:
        return Claim("not distinguishable",
                     f"{NOT_DISTINGUISHABLE} (AP {gain:+.4f} vs {reference}; seed noise not "
                     "measured)", gain, None)
    need = ha + hb
    faster = latency_lower(latency_ms, cv, ref_latency_ms, ref_cv)
    if gain > need and faster:
        return Claim("beats", f"beats {reference}: AP {gain:+.4f} (noise band {need:.4f}), "
                     f"{float(latency_ms):.2f} vs {float(ref_latency_ms):.2f} ms beyond the "
                     "latency noise", gain, need)
    if gain < -need:
        return Claim("below", f"lower AP than {reference} beyond the noise: {gain:+.4f} "
                     f"(noise band {need:.4f})", gain, need)
    why = (f"AP {gain:+.4f} within the noise band {need:.4f}" if abs(gain) <= need
           else "latency not lower beyond its noise")
    return Claim("not distinguishable", f"{NOT_DISTINGUISHABLE} vs {reference} ({why})",
                 gain, need)


# --------------------------------------------------------------------------- helpers


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        return value == value and str(value) != "<NA>"
    except (TypeError, ValueError):
        return False


def _count(value: Any) -> int | None:
    if not _present(value):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n >= 1 else None


def _cv(value: Any) -> float:
    if not _present(value):
        return 0.0
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) and f > 0 else 0.0


__all__ = [
    "NOT_DISTINGUISHABLE",
    "Claim",
    "NoiseBand",
    "ap_intervals",
    "band_of_run",
    "calibration_matches",
    "claim",
    "latency_lower",
    "load_calibration",
    "mark_ties",
    "noise_band",
    "parse_seeds",
    "pooled_seed_sd",
    "run_noise",
    "seed_summary",
    "trial_seeds",
    "with_noise",
]
