"""Reports on one or more run directories: front table, variants, figures and ``report.md``.

`build_report` writes into ``out_dir``:

- ``front.csv``: the Pareto front(s), one row per front member, with a ``run`` column;
- ``pareto.png`` and ``pareto.html``: the fronts (and released models measured in the runs);
- ``report.md``: per run the settings, fidelity, latency device, trial counts, hypervolume,
  the front and the best trial per variant against its reference model.

A run with several latency targets (`nas.targets`) gets one front per target (AP against
``latency_ms@<target>``, ``pareto-<target>.png``) and one variant table per target
(``variants/<target>/``). The front tables carry every objective of the run's experiment
(`nas.objectives`), registered ones included.

Example:
    >>> from nas.report import build_report                      # doctest: +SKIP
    >>> report = build_report(["runs/a", "runs/b"], "reports/ab")  # doctest: +SKIP
    >>> print(report.text)                                        # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nas.noise import band_of_run, mark_ties
from nas.pareto import (
    DEFAULT_OBJECTIVES,
    common_reference_point,
    hypervolume,
    pareto_front,
)
from nas.report_noise import add_claims, noise_lines
from nas.results import load_run, read_experiment
from nas.rundir import now_iso
from nas.variants import SIZES, finite_float, fully_trained, not_fully_trained

# Columns of front.csv and of the printed front table (those present).
FRONT_COLUMNS = (
    "run", "number", "arch_id", "ap", "ap_ci", "ap_sd", "repeats", "tied_with", "latency_ms",
    "lat_cv", "latency_stable", "ap50", "box_ap", "params", "gflops", "epochs", "image_size",
    "reference", "arch_file",
)  # fmt: skip


@dataclass
class RunSummary:
    """One run as the report sees it."""

    name: str
    run_dir: Path
    info: dict[str, Any]
    experiment: dict[str, Any]
    trials: pd.DataFrame
    front: pd.DataFrame
    hv_reference: dict[str, float] | None
    hypervolume: float | None
    variants: list[dict[str, Any]] = field(default_factory=list)
    noise: Any = None  # nas.noise.NoiseBand of the run
    # several latency targets: {target: front on AP and latency_ms@target}, its variants
    target_fronts: dict[str, pd.DataFrame] = field(default_factory=dict)
    target_variants: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    objectives: dict[str, str] = field(default_factory=dict)  # the run's own objectives


@dataclass
class Report:
    """What `build_report` produced: the runs, the files written and the printable text."""

    runs: list[RunSummary]
    out_dir: Path
    files: dict[str, Path]
    common_reference: dict[str, float] | None
    common_hypervolume: dict[str, float]
    text: str


def build_report(
    run_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    references: Mapping[str, tuple[float, float]] | None = None,
) -> Report:
    """Summarise ``run_dirs`` into ``out_dir`` (created); see the module doc.

    ``references``: extra labelled points ``{name: (latency_ms, ap)}`` for the figures (e.g.
    published numbers measured on the same device).
    """
    from nas.plots import plot_fronts

    if not run_dirs:
        raise ValueError("build_report: no run directories given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    objectives = dict(DEFAULT_OBJECTIVES)
    runs: list[RunSummary] = []
    names: set[str] = set()
    for run_dir in run_dirs:
        summary = summarize_run(run_dir, objectives)
        base, i = summary.name, 2
        while summary.name in names:
            summary.name = f"{base}-{i}"
            i += 1
        names.add(summary.name)
        runs.append(summary)
    refs = [r.hv_reference for r in runs if r.hv_reference]
    common = common_reference_point(refs, objectives) if len(runs) > 1 and refs else None
    common_hv: dict[str, float] = {}
    if common is not None:
        for r in runs:
            common_hv[r.name] = hypervolume(r.trials, objectives, common)

    files: dict[str, Path] = {}
    fronts = [r.front.assign(run=r.name) for r in runs if len(r.front)]
    fronts += [f.assign(run=r.name, target=t) for r in runs
               for t, f in r.target_fronts.items() if len(f)]
    front_csv = out / "front.csv"
    table = pd.concat(fronts, ignore_index=True) if fronts else pd.DataFrame(columns=["run"])
    extra = [c for r in runs for c in r.objectives if c not in FRONT_COLUMNS]
    columns = [*FRONT_COLUMNS, *dict.fromkeys(extra), "target"]
    table[[c for c in columns if c in table.columns]].to_csv(front_csv, index=False)
    files["front.csv"] = front_csv
    frames = {r.name: r.trials for r in runs}
    if any(len(r.front) for r in runs):
        for suffix in ("png", "html"):
            path = out / f"pareto.{suffix}"
            plot_fronts(frames, references, path)
            files[f"pareto.{suffix}"] = path
    for target in dict.fromkeys(t for r in runs for t in r.target_fronts):
        column = f"latency_ms@{target}"
        have = {r.name: r.trials for r in runs if len(r.target_fronts.get(target, []))}
        for suffix in ("png", "html") if have else ():
            path = out / f"pareto-{target}.{suffix}"
            plot_fronts(have, None, path, x=column, objectives={"ap": "max", column: "min"})
            files[f"pareto-{target}.{suffix}"] = path
    md = out / "report.md"
    md.write_text(_markdown(runs, common, common_hv, files))
    files["report.md"] = md
    return Report(runs, out, files, common, common_hv, _text(runs, common, common_hv))


def summarize_run(
    run_dir: str | os.PathLike[str], objectives: Mapping[str, str] | None = None
) -> RunSummary:
    """Load a run and compute its front, hypervolume (own reference point) and variants."""
    objectives = dict(objectives or DEFAULT_OBJECTIVES)
    df = load_run(run_dir)
    path = Path(run_dir)
    ref = df.attrs.get("hv_reference")
    info = dict(df.attrs.get("run_info") or {})
    band = band_of_run(df, read_experiment(path), info)
    front = mark_ties(pareto_front(df, objectives), band)
    hv = hypervolume(df, objectives, ref) if ref else None
    summary = RunSummary(
        name=str(df.attrs.get("run") or path.name),
        run_dir=path,
        info=dict(df.attrs.get("run_info") or {}),
        experiment=read_experiment(path),
        trials=df,
        front=front,
        hv_reference=ref,
        hypervolume=hv,
        noise=band,
    )
    summary.variants = _variants(path, df)
    add_claims(summary.variants, band, info)
    summary.objectives = dict(summary.experiment.get("objectives") or {})
    for target in _targets(summary.experiment):
        column = f"latency_ms@{target}"
        if column not in df.columns:
            continue
        summary.target_fronts[target] = mark_ties(
            pareto_front(df, {"ap": "max", column: "min"}), band)
        summary.target_variants[target] = _variants(path, df, target)
    return summary


def _targets(experiment: Mapping[str, Any]) -> list[str]:
    """The target names of a run's experiment with several latency targets ([] for one)."""
    from nas.experiment import LatencySection

    lat = experiment.get("latency")
    own = {f for f in LatencySection.__dataclass_fields__}
    if isinstance(lat, Mapping) and lat and not any(k in own for k in lat) \
            and all(isinstance(v, Mapping) for v in lat.values()):
        return [str(k) for k in lat]
    return []


# --------------------------------------------------------------------------- variants


def _variants(run_dir: Path, df: pd.DataFrame, target: str | None = None
              ) -> list[dict[str, Any]]:
    """Each ``variants/<name>.yaml`` (``variants/<target>/`` of one of several targets, on
    ``latency_ms@<target>``) with its trial and its reference model's trial."""
    from models.archfile import ArchFileError, load_arch_record

    folder = run_dir / "variants" / target if target else run_dir / "variants"
    sfx = f"@{target}" if target else ""
    if not folder.is_dir():
        return []
    order = {size: i for i, size in enumerate(SIZES)}
    out = []
    for path in sorted(folder.glob("*.yaml"), key=lambda p: (order.get(p.stem, 9), p.stem)):
        try:
            record = load_arch_record(path)
        except ArchFileError as exc:
            out.append({"variant": path.stem, "error": str(exc)})
            continue
        metrics, prov = record.metrics, record.provenance
        row = _row_of(df, prov.get("trial"), record.spec.arch_id)
        ref_name = metrics.get("reference") or _reference_for(df, path.stem)
        ref_row = _reference_row(df, ref_name, sfx)
        item = {
            "variant": path.stem,
            "file": str(path),
            "trial": prov.get("trial"),
            "arch_id": record.spec.arch_id[:12],
            "ap": finite_float(row.get("ap") if row is not None else metrics.get("ap")),
            "latency_ms": finite_float(
                row.get(f"latency_ms{sfx}") if row is not None
                else metrics.get(f"latency_ms{sfx}")
            ),
            "budget_ms": finite_float(metrics.get("budget_ms")),
            "reference": ref_name,
            "reference_trial": int(ref_row["number"]) if fully_trained(ref_row) else None,
            "reference_ap": (
                finite_float(ref_row["ap"]) if fully_trained(ref_row)
                else None if ref_row is not None else finite_float(metrics.get("reference_ap"))
            ),
            "reference_note": (not_fully_trained(ref_row) if ref_row is not None
                               and not fully_trained(ref_row) else metrics.get("reference_note")),
            "reference_latency_ms": finite_float(
                ref_row[f"latency_ms{sfx}"]
                if ref_row is not None
                else metrics.get("reference_latency_ms")
            ),
        }
        item.update(_noise_fields(row, metrics, ref_row, sfx))
        out.append(item)
    return out


def _noise_fields(row: pd.Series | None, metrics: Mapping[str, Any],
                  ref_row: pd.Series | None, sfx: str = "") -> dict[str, Any]:
    """Seeds and latency CV of a variant and of its reference (for `add_claims`)."""
    def get(r: pd.Series | None, key: str) -> Any:
        value = r.get(key) if r is not None else None
        return value if value is not None and value is not pd.NA and value == value else None

    return {
        "repeats": get(row, "repeats") or metrics.get("repeats"),
        "lat_cv": get(row, f"lat_cv{sfx}") if row is not None else metrics.get(f"lat_cv{sfx}"),
        "reference_repeats": get(ref_row, "repeats"),
        "reference_lat_cv": get(ref_row, f"lat_cv{sfx}"),
    }


def _row_of(df: pd.DataFrame, trial: Any, arch_id: str) -> pd.Series | None:
    if trial is not None and "number" in df.columns:
        rows = df[df["number"] == int(trial)]
        if len(rows):
            return rows.iloc[0]
    rows = df[(df["arch_id"] == arch_id) & (df["status"] == "COMPLETE")]
    return rows.iloc[0] if len(rows) else None


def _reference_for(df: pd.DataFrame, variant: str) -> str | None:
    names = sorted({str(r) for r in df["reference"].dropna()}) if "reference" in df else []
    match = [n for n in names if n.rsplit("_", 1)[-1] == variant]
    return match[0] if match else None


def _reference_row(df: pd.DataFrame, name: str | None, sfx: str = "") -> pd.Series | None:
    if not name or "reference" not in df.columns or f"latency_ms{sfx}" not in df.columns:
        return None
    rows = df[(df["reference"] == name) & df[f"latency_ms{sfx}"].notna()]
    full = [r for _, r in rows.iterrows() if fully_trained(r)]
    if full:  # a reference's AP only from a complete, full-fidelity training
        return full[0]
    return rows.iloc[0] if len(rows) else None  # its latency only (`fully_trained` is False)


# --------------------------------------------------------------------------- text


def _markdown(
    runs: list[RunSummary],
    common: dict[str, float] | None,
    common_hv: dict[str, float],
    files: Mapping[str, Path],
) -> str:
    lines = [f"# OpenNAC report: {', '.join(r.name for r in runs)}", "",
             f"Generated {now_iso()}.", ""]
    if "pareto.png" in files:
        lines += ["![Pareto fronts](pareto.png)", "", "Interactive: [pareto.html](pareto.html). "
                  "Front members: [front.csv](front.csv).", ""]  # fmt: skip
    else:
        lines += ["No run has a valid trial yet (complete, full fidelity, feasible).", ""]
    if common is not None:
        lines += [
            "## Hypervolume on a common reference point",
            "",
            f"Reference point (the worst of the runs' points): {_point(common)}.",
            "",
            "| run | hypervolume |",
            "|---|---|",
        ]
        lines += [f"| {name} | {hv:.6g} |" for name, hv in common_hv.items()]
        lines.append("")
    for r in runs:
        lines += _run_markdown(r)
    return "\n".join(lines) + "\n"


def _run_markdown(r: RunSummary) -> list[str]:
    exp, df = r.experiment, r.trials
    fid = exp.get("fidelity") or {}
    lat = exp.get("latency") or {}
    space = exp.get("space") or {}
    overrides = {k: v for k, v in space.items() if k != "name" and v not in (None, {}, [])}
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    devices = sorted({str(d) for d in df["lat_device"].dropna()}) if "lat_device" in df else []
    lines = [f"## Run {r.name}", ""]
    lines += [
        f"- directory: `{r.run_dir}`",
        f"- status: {r.info.get('status', 'unknown')}; created {r.info.get('created', '?')}; "
        f"code {r.info.get('code_version', '?')}",
        f"- task: {exp.get('task', '?')}; space: {space.get('name', '?')}"
        + (f" {overrides}" if overrides else ""),
        f"- sampler: {(exp.get('sampler') or {}).get('type', '?')}; scheduler: "
        f"{(exp.get('scheduler') or {}).get('type', '?')}; budget: "
        f"{(exp.get('budget') or {}).get('trials', '?')} trials",
        f"- trials: {len(df)} (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")",
        f"- fidelity: {fid.get('epochs', '?')} epochs at {fid.get('image_size', '?')} px, "
        f"{_opt(fid.get('train_images'), 'all')} train / {_opt(fid.get('val_images'), 'all')} "
        f"val images, seed {fid.get('seed', '?')}",
    ]
    targets = _targets(exp)
    for name, one in ({n: lat[n] for n in targets} if targets else {"": lat}).items():
        where = devices if not name else sorted(
            {str(d) for d in df[f"lat_device@{name}"].dropna()}) if f"lat_device@{name}" in df \
            else []
        lines.append(
            f"- latency{' ' + name if name else ''}: target {one.get('target', '?')}, measured "
            f"on {', '.join(where) or one.get('device', '?')} ({one.get('backend', '?')}, "
            f"{one.get('precision', '?')}, batch {one.get('batch', '?')}, "
            f"{one.get('image_size', '?')} px), fused model")
    if r.hypervolume is not None:
        lines.append(
            f"- hypervolume: {r.hypervolume:.6g} (reference point {_point(r.hv_reference)}, "
            "saved in run.json)"
        )
    else:
        lines.append("- hypervolume: none (no valid trial)")
    lines += noise_lines(r)
    lines += ["", f"### Front ({len(r.front)} trials)", ""]
    lines += _md_table(_front_table(r.front, r.objectives)) if len(r.front) else ["(empty)"]
    if len(r.front) and "ap_ci" in r.front.columns:
        lines += ["", "`+-`: the AP interval (mean +- z x seed sd / sqrt(seeds)); `ties`: the "
                  "front members whose intervals overlap this one's (not told apart at this "
                  "fidelity); `cv`: the latency's coefficient of variation (`!`: unstable)."]
    lines += ["", "### Variants (best trial within each budget vs its reference model)", ""]
    for warning in r.info.get("latency_warnings") or []:
        lines += [f"> **Warning:** {warning}", ""]
    if r.variants:
        lines += _md_table(_variant_table(r.variants))
    elif not r.target_fronts:
        lines.append("(no variants written)")
    for target, front in r.target_fronts.items():
        lines += ["", f"### Front on target {target} ({len(front)} trials: AP vs "
                  f"latency_ms@{target})", "", f"![{target}](pareto-{target}.png)", ""]
        lines += (_md_table(_front_table(front, r.objectives, f"@{target}")) if len(front)
                  else ["(empty)"])
        lines += ["", f"### Variants on target {target} (`variants/{target}/`)", ""]
        variants = r.target_variants.get(target) or []
        lines += _md_table(_variant_table(variants)) if variants else ["(no variants written)"]
    lines.append("")
    return lines


def _text(
    runs: list[RunSummary], common: dict[str, float] | None, common_hv: dict[str, float]
) -> str:
    parts = []
    for r in runs:
        hv = "n/a" if r.hypervolume is None else f"{r.hypervolume:.6g}"
        parts.append(f"run {r.name}: {len(r.trials)} trials, {len(r.front)} on the front, "
                     f"hypervolume {hv}")  # fmt: skip
        if r.noise is not None:
            parts.append(f"noise: {r.noise.describe()}")
        for warning in r.info.get("latency_warnings") or []:
            parts.append(f"WARNING: {warning}")
        if len(r.front):
            parts.append(_front_table(r.front, r.objectives).to_string(index=False))
        if r.variants:
            parts.append("variants:")
            parts.append(_variant_table(r.variants).to_string(index=False))
        for target, front in r.target_fronts.items():
            parts.append(f"front on target {target}: {len(front)} trials")
            if len(front):
                parts.append(_front_table(front, r.objectives, f"@{target}")
                             .to_string(index=False))
            if r.target_variants.get(target):
                parts.append(f"variants on target {target}:")
                parts.append(_variant_table(r.target_variants[target]).to_string(index=False))
        parts.append("")
    if common is not None:
        parts.append(f"common reference point {_point(common)}: "
                     + ", ".join(f"{k} {v:.6g}" for k, v in common_hv.items()))  # fmt: skip
    return "\n".join(parts).rstrip() + "\n"


def _front_table(front: pd.DataFrame, objectives: Mapping[str, str] | None = None,
                 sfx: str = "") -> pd.DataFrame:
    """The printed front: AP, latency (of target ``sfx``), the run's other objectives."""
    base = ("number", "ap", "ap_ci", "tied_with", f"latency_ms{sfx}", f"lat_cv{sfx}", "params",
            "gflops")
    extra = [c for c in (objectives or {}) if c not in base and "@" not in c]
    cols = [c for c in (*base, *extra, "reference")
            if c in front.columns and front[c].notna().any()]  # fmt: skip
    if sfx:  # this target's latency context under the plain names
        front = front.drop(columns=[c for c in ("lat_cv", "latency_stable")
                                    if c in front.columns])
        front = front.rename(columns={f"lat_cv{sfx}": "lat_cv",
                                      f"latency_stable{sfx}": "latency_stable"})
        cols = ["lat_cv" if c == f"lat_cv{sfx}" else c for c in cols]
    table = front[cols].copy()
    if "lat_cv" in table.columns and "latency_stable" in front.columns:
        unstable = front["latency_stable"].map(lambda v: v is not None and v is not pd.NA
                                               and v == v and not bool(v))
        table["lat_cv"] = [f"{cv:.3f}!" if bad else f"{cv:.3f}"
                           for cv, bad in zip(table["lat_cv"], unstable, strict=True)]
    table = table.rename(columns={"ap_ci": "+-", "tied_with": "ties", "lat_cv": "cv"})
    if "params" in table.columns:
        table["params"] = table["params"].map(lambda v: f"{v / 1e6:.3g}M" if v == v else "-")
    if "arch_id" in front.columns:
        table.insert(1, "arch_id", front["arch_id"].map(lambda s: (s or "")[:12]))
    return table.rename(columns={"number": "trial"})


def _variant_table(variants: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for v in variants:
        if "error" in v:
            rows.append({"variant": v["variant"], "trial": "error: " + v["error"]})
            continue
        rows.append({
            "variant": v["variant"],
            "trial": v["trial"],
            "arch_id": v["arch_id"],
            "ap": _fmt(v["ap"]),
            "latency_ms": _fmt(v["latency_ms"]),
            "budget_ms": _fmt(v["budget_ms"]),
            "reference": v["reference"] or "-",
            "ref_ap": (_fmt(v["reference_ap"]) if v["reference_ap"] is not None
                       or not v.get("reference_note") else "not fully trained"),
            "ref_latency_ms": _fmt(v["reference_latency_ms"]),
            "d_ap": _fmt(_diff(v["ap"], v["reference_ap"]), signed=True),
            "speedup": _fmt(_ratio(v["reference_latency_ms"], v["latency_ms"]), suffix="x"),
            "verdict": v.get("claim") or "-",
        })  # fmt: skip
    return pd.DataFrame(rows)


def _md_table(df: pd.DataFrame) -> list[str]:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return [head, rule, *body]


def _cell(value: Any) -> str:
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _fmt(value: float | None, signed: bool = False, suffix: str = "") -> str:
    if value is None:
        return "-"
    return (f"{value:+.4g}" if signed else f"{value:.4g}") + suffix


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _opt(value: Any, default: str) -> str:
    return default if value is None else str(value)


def _point(point: Mapping[str, float] | None) -> str:
    if not point:
        return "-"
    return "(" + ", ".join(f"{k} {v:.4g}" for k, v in point.items()) + ")"
