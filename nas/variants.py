"""n/s/m/l variants: the best architecture of a run under each latency budget.

A variant is the trial with the highest AP among the complete, feasible, full-fidelity trials
whose latency is within the variant's budget (so it lies on the run's front). Budgets come
from the experiment (``variants.budgets: {n: 2.0, s: 4.0}``) or, with
``variants.match_references``, from the released models: the budget of ``n``/``s``/``m``/``l`` is
the latency of the space's reference point of that size (``yolo_nas_pose_n`` ...; with a
``width_scale`` the scaled released model), measured on the same device, backend, precision,
batch and image size as the trials. Detection has no released N model: its ``n`` budget is
half the ``s`` budget. Each variant is written to ``RUN_DIR/variants/<name>.yaml`` as a frozen
architecture file carrying its metrics, the budget and the reference it is measured against,
and (``provenance.checkpoint`` / ``provenance.recipe``) its kept weights and how they were
trained (`nas.weights`).

With several latency targets (`nas.targets`) each target has its own set,
``variants/<target>/{n,s,m,l}.yaml``, chosen on that target's latency column
(``latency_ms@<target>``) with budgets measured on that target.

Files are never deleted: the experiment's budgets write the run's own set ``variants/``
(refreshed in place when the sweep goes on); other budgets write a labelled set
``variants/<label>/``, and rewriting a variant of another budget needs ``force``.

Example:
    >>> import pandas as pd
    >>> from nas.variants import select_variants
    >>> df = pd.DataFrame({"number": [0, 1], "status": ["COMPLETE"] * 2, "ap": [0.3, 0.4],
    ...                    "latency_ms": [2.0, 5.0], "full_fidelity": [True] * 2,
    ...                    "feasible": [True] * 2})
    >>> {k: int(v["number"]) for k, v in select_variants(df, {"s": 3.0, "m": 6.0}).items()}
    {'s': 0, 'm': 1}
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.objectives import truthy
from nas.rundir import row_metrics
from nas.safepath import UnsafeNameError, check_name, inside

SIZES = ("n", "s", "m", "l")


class VariantsError(ValueError):
    """A selection that would overwrite another selection's files, or found nothing."""


def valid_trials(df: Any, latency: str = "latency_ms") -> Any:
    """Rows that may be a variant or on a front (`nas.pareto.valid_mask`, the one rule:
    COMPLETE, full fidelity, feasible) with AP and the ``latency`` column."""
    from nas.pareto import valid_mask

    if df is None or len(df) == 0:
        return df
    if latency not in df.columns:
        return df.iloc[0:0]
    return df[valid_mask(df, {"ap": "max", latency: "min"}).to_numpy()]


def select_variants(df: Any, budgets: Mapping[str, float],
                    latency: str = "latency_ms") -> dict[str, Any]:
    """``{name: row}`` (pandas Series) of the best-AP valid trial within each budget of the
    ``latency`` column; a budget no trial fits is left out."""
    pool = valid_trials(df, latency)
    out: dict[str, Any] = {}
    if pool is None or len(pool) == 0:
        return out
    for name, budget in budgets.items():
        fits = pool[pool[latency].astype(float) <= float(budget)]
        if len(fits):
            best = fits.sort_values(["ap", latency], ascending=[False, True]).iloc[0]
            out[name] = best
    return out


def size_of(reference_name: str) -> str | None:
    """``yolo_nas_pose_n`` -> ``n``; names not ending in a size -> None."""
    tail = reference_name.rsplit("_", 1)[-1]
    return tail if tail in SIZES else None


def reference_budgets(
    references: Mapping[str, Any],
    task: str,
    latency_of: Callable[[str, Any], float | None],
) -> dict[str, tuple[str, float]]:
    """``{size: (reference name, budget ms)}`` for ``match_references``.

    ``references``: ``{name: ArchSpec}`` (the space's reference specs); ``latency_of(name,
    spec)`` returns the measured latency (or None when it cannot be had).
    """
    out: dict[str, tuple[str, float]] = {}
    for name, spec in references.items():
        size = size_of(name)
        if size is None:
            continue
        ms = latency_of(name, spec)
        if ms is not None and math.isfinite(ms):
            out[size] = (name, float(ms))
    if task == "detection" and "n" not in out and "s" in out:
        out["n"] = (f"{out['s'][0]} / 2", out["s"][1] / 2)
    return dict(sorted(out.items(), key=lambda kv: SIZES.index(kv[0])))


def write_variants(
    variants_dir: Path,
    chosen: Mapping[str, Any],
    specs: Mapping[str, Any],
    budgets: Mapping[str, float],
    references: Mapping[str, tuple[str, float]] | None,
    reference_rows: Mapping[str, Any],
    provenance: Mapping[str, Any],
    run_name: str,
    force: bool = False,
    run_dir: Path | None = None,
    fidelity: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``<variants_dir>/<name>.yaml`` for each chosen row; returns ``{name: path}``.

    ``specs``: ``{number: ArchSpec}`` of the chosen rows; ``reference_rows``: ``{reference name:
    trials-table row}`` for references evaluated in the run (their AP goes in the file too).
    With ``run_dir``, a file names its trial's kept checkpoint (``RUN_DIR/weights``, when it
    exists) and its recipe (from the checkpoint, else ``fidelity``). Nothing is deleted; a
    file written by a selection with another budget raises `VariantsError` before anything is
    written, unless ``force``.
    """
    from models.archfile import save_arch

    if not force:
        check_overwrite(variants_dir, {n: float(budgets[n]) for n in chosen})
    if chosen:
        variants_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, row in chosen.items():
        number = int(row["number"])
        metrics = row_metrics(row)
        metrics["budget_ms"] = float(budgets[name])
        if references and name in references:
            ref_name, ref_ms = references[name]
            metrics["reference"] = ref_name
            metrics["reference_latency_ms"] = round(ref_ms, 6)
            ref_row = reference_rows.get(ref_name)
            if fully_trained(ref_row):
                metrics["reference_ap"] = finite_float(ref_row.get("ap"))
                metrics["reference_trial"] = int(ref_row["number"])
            elif ref_row is not None:  # its latency counts, its AP does not
                metrics["reference_note"] = not_fully_trained(ref_row)
        prov = dict(provenance)
        prov.update({"trial": number, "variant": name})
        path = variants_dir / f"{name}.yaml"
        if run_dir is not None:
            trained = finite_float(row.get("reused_from"))  # a duplicate: the original's weights
            owner = int(trained) if trained is not None else number
            prov.update(_weights_provenance(run_dir, owner, path, fidelity or {}))
        save_arch(specs[number], path, metrics=metrics, provenance=prov, name=f"{run_name}-{name}")
        written[name] = path
    return written


def _weights_provenance(
    run_dir: Path, number: int, path: Path, fidelity: Mapping[str, Any]
) -> dict[str, Any]:
    """``checkpoint`` (relative to the variant file, when kept) and ``recipe`` of a trial."""
    import os

    from nas.weights import recipe_of, weights_name

    ckpt = Path(run_dir) / weights_name(number)
    out: dict[str, Any] = {}
    if ckpt.is_file():
        out["checkpoint"] = Path(os.path.relpath(ckpt, path.parent)).as_posix()
    out["recipe"] = recipe_of(ckpt if ckpt.is_file() else None, fidelity)
    return out


def check_overwrite(variants_dir: Path, budgets: Mapping[str, float]) -> None:
    """Raise `VariantsError` when a file of ``variants_dir`` would be replaced by a variant of
    another budget (same name, other ``budget_ms``)."""
    from models.archfile import ArchFileError, load_arch_record

    for name, budget in budgets.items():
        path = variants_dir / f"{name}.yaml"
        if not path.is_file():
            continue
        try:
            old = finite_float(load_arch_record(path).metrics.get("budget_ms"))
        except ArchFileError:
            old = None
        if old is None or not math.isclose(old, budget, rel_tol=1e-6, abs_tol=1e-9):
            was = "no budget" if old is None else f"budget {old:g} ms"
            raise VariantsError(
                f"{path} exists ({was}); a variant {name!r} with budget {budget:g} ms would "
                "replace it: choose another --label or pass --force"
            )


def set_label(budgets: Mapping[str, float]) -> str:
    """A folder name for a set of budgets: ``{"tiny": 7, "big": 12}`` -> ``tiny7ms_big12ms``."""
    text = "_".join(f"{name}{float(ms):g}ms" for name, ms in budgets.items())
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", text)[:80] or "custom"


def fully_trained(row: Any) -> bool:
    """A trials-table row that is COMPLETE at full fidelity with a finite AP: the only kind whose
    AP may stand for a reference (a reference stopped early by ASHA, failed or interrupted does
    not)."""
    return (row is not None and str(row.get("status")) == "COMPLETE"
            and truthy(row.get("full_fidelity")) and finite_float(row.get("ap")) is not None)


def not_fully_trained(row: Any) -> str:
    """One line saying why a reference row's AP is not used."""
    done, epochs = finite_float(row.get("epochs_done")), finite_float(row.get("epochs"))
    trained = f", {done:g} of {epochs:g} epochs" if done is not None and epochs else ""
    return (f"reference not fully trained (trial {int(row['number'])}: "
            f"{row.get('status')}{trained}); no AP comparison")


def finite_float(value: Any) -> float | None:
    """``value`` as a finite float; None for missing, NaN, infinite or non-numeric values.

    Example:
        >>> finite_float("0.5"), finite_float(float("nan")), finite_float(None)
        (0.5, None, None)
    """
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def update_variants(
    rd: Any,
    exp: Any,
    df: Any,
    budgets: Mapping[str, float] | None = None,
    measure_missing: bool = True,
    notes: list[str] | None = None,
    label: str | None = None,
    force: bool = False,
    warnings: list[str] | None = None,
    target: str | None = None,
) -> dict[str, str]:
    """Select and write the variants of run directory ``rd``; returns ``{name: one line}``.

    ``target``: the latency target (experiments with several: its set is
    ``variants/<target>/``, chosen on ``latency_ms@<target>``); None: the primary target.

    ``budgets`` overrides the experiment's. With ``match_references``, a reference's latency
    comes from its trial in ``df`` (seeded references) or, if ``measure_missing``, is measured
    here with the experiment's latency settings (and cached in the run's latency cache).
    Specs come from the frozen files in ``archs/``; run.json records the variants and budgets.

    The experiment's own budgets write ``variants/``; other budgets (or a ``label``) write
    ``variants/<label>/`` (default label: `set_label`). Nothing is deleted; replacing a file
    of another budget raises `VariantsError` unless ``force``.

    Reference latencies are checked first (`nas.stability`: out-of-order ones re-measured,
    unstable or still out of order ones appended to ``warnings``); each variant's claim against
    its reference is noise-aware (`nas.noise.claim`).
    """
    from models.archfile import load_arch
    from nas.rundir import code_version, now_iso

    notes = notes if notes is not None else []
    warnings = warnings if warnings is not None else []
    ref_info: dict[str, dict[str, Any]] = {}  # reference -> latency, cv, stable, params
    v = exp.variants
    several = len(exp.targets) > 1
    target = target or next(iter(exp.targets))
    lat_section = exp.targets[target]
    sfx = f"@{target}" if several else ""
    col = f"latency_ms{sfx}"
    own = budgets is None or (v.budgets is not None and dict(budgets) == dict(v.budgets))
    if label is None and not own and budgets is not None:
        label = set_label(budgets)
    try:  # each becomes a file or folder under variants/ (variants/<target>/ per target)
        for name in list(budgets or {}) + ([label] if label else []):
            check_name(name, "variant label" if name == label else "variant name")
        base_dir = inside(rd.variants_dir, target, what="target") if several \
            else rd.variants_dir
        folder = inside(base_dir, label, what="label") if label else base_dir
    except UnsafeNameError as exc:
        raise VariantsError(str(exc)) from None
    refs: dict[str, tuple[str, float]] | None = None
    ref_rows: dict[str, Any] = {}
    if "reference" in df.columns and col in df.columns:
        for _, r in df[df["reference"].notna()].iterrows():
            if finite_float(r.get(col)) is not None:  # a fully trained row first
                name = str(r["reference"])
                if name not in ref_rows or (fully_trained(r)
                                            and not fully_trained(ref_rows[name])):
                    ref_rows[name] = r
    if budgets is None and v.budgets is not None:
        budgets = dict(v.budgets)
    if budgets is None:
        space = exp.space_object()

        def latency_of(name: str, spec: Any, fresh: bool = False) -> float | None:
            from nas.stability import latency_info, result_info

            row = ref_rows.get(name)
            if row is not None and not fresh:
                ref_info[name] = latency_info(_unsuffixed(row, sfx))
                return finite_float(row.get(col))
            if not measure_missing:
                notes.append(f"no measured latency for reference {name}")
                return None
            try:
                from nas.targets import measure

                result = measure(spec, lat_section, str(rd.latency_cache), fresh)
                ref_info[name] = result_info(result)
                return float(result.median_ms)
            except Exception as exc:  # noqa: BLE001 - a missing budget is reported, not fatal
                notes.append(f"cannot measure reference {name}: {exc}")
                return None

        specs_ref = space.reference_specs()
        _check_reference_latencies(specs_ref, ref_info, latency_of, measure_missing, warnings)
        refs = reference_budgets(specs_ref, exp.task,
                                 lambda name, _spec: (ref_info.get(name) or {}).get("latency_ms"))
        budgets = {k: ms for k, (_, ms) in refs.items()}
        from nas.stability import unstable_budget_warnings
        from nas.targets import cv_threshold

        warnings.extend(unstable_budget_warnings(refs, ref_info, cv_threshold(lat_section)))
    chosen = select_variants(df, budgets, col)
    specs = {int(r["number"]): load_arch(rd.path / str(r["arch_file"])) for r in chosen.values()}
    provenance = {"run": rd.name, "experiment": exp.name, "code_version": code_version(),
                  "created": now_iso()}
    # the run's own set is refreshed in place (same budgets); another set may not replace
    # files of other budgets unless forced
    paths = write_variants(folder, chosen, specs, budgets, refs, ref_rows, provenance, rd.name,
                           force=force or not label, run_dir=rd.path, fidelity=_fidelity(exp))
    claims = _variant_claims(exp, df, chosen, refs, ref_rows, ref_info, sfx)
    out: dict[str, str] = {}
    for name, budget in budgets.items():
        if name in paths:
            r = chosen[name]
            ref = f" vs {refs[name][0]}" if refs and name in refs else ""
            out[name] = (f"{paths[name]} (trial {int(r['number'])}, ap {float(r['ap']):.4f}, "
                         f"{float(r[col]):.2f} ms <= {budget:.2f} ms{ref})")
            if name in claims:
                out[name] += f": {claims[name].text}"
        else:
            out[name] = f"none within {budget:.2f} ms"
    if several:  # run.json: per target
        meta = rd.meta()
        by_target = dict(meta.get("target_variants") or {})
        entry = dict(by_target.get(target) or {})
        if label:
            sets = dict(entry.get("variant_sets") or {})
            if paths:
                sets[label] = {"variants": {k: str(p.relative_to(rd.path))
                                            for k, p in paths.items()},
                               "budgets_ms": dict(budgets)}
            entry["variant_sets"] = sets
        else:
            entry.update(variants={k: str(p.relative_to(rd.path)) for k, p in paths.items()},
                         variant_budgets_ms=dict(budgets),
                         variant_claims={k: dataclasses.asdict(c) for k, c in claims.items()})
        if refs is not None:
            entry.update(reference_latency=ref_info)
        by_target[target] = entry
        rd.update_meta(target_variants=by_target)
    elif label:
        sets = dict(rd.meta().get("variant_sets") or {})
        if paths:
            sets[label] = {"variants": {k: str(p.relative_to(rd.path)) for k, p in paths.items()},
                           "budgets_ms": dict(budgets),
                           "claims": {k: dataclasses.asdict(c) for k, c in claims.items()}}
            rd.update_meta(variant_sets=sets)
    else:
        rd.update_meta(
            variants={k: str(p.relative_to(rd.path)) for k, p in paths.items()},
            variant_budgets_ms=dict(budgets),
            variant_claims={k: dataclasses.asdict(c) for k, c in claims.items()},
        )
    if refs is not None and not several:
        rd.update_meta(reference_latency=ref_info, latency_warnings=list(warnings))
    return out


def _unsuffixed(row: Any, sfx: str) -> dict[str, Any]:
    """A row's ``<column>@<target>`` values under their plain names (one target's view)."""
    out = dict(row)
    if sfx:
        for key, value in dict(row).items():
            if str(key).endswith(sfx):
                out[str(key)[: -len(sfx)]] = value
    return out


def _fidelity(exp: Any) -> dict[str, Any]:
    return dataclasses.asdict(exp.fidelity)


def _check_reference_latencies(
    specs: Mapping[str, Any], ref_info: dict[str, dict[str, Any]],
    latency_of: Callable[..., float | None], can_measure: bool, warnings: list[str],
) -> None:
    """Collect every reference's latency into ``ref_info`` (with its params) and settle their
    order (`nas.stability.settle_reference_order`), re-measuring when ``can_measure``."""
    from models.complexity import complexity
    from nas.stability import settle_reference_order

    for name, spec in specs.items():
        if size_of(name) is None:
            continue
        if latency_of(name, spec) is not None and name in ref_info:
            ref_info[name]["params"] = int(complexity(spec, image_size=64).params)

    def remeasure(name: str) -> dict[str, Any] | None:
        ms = latency_of(name, specs[name], True)
        return None if ms is None else dict(ref_info[name])

    settle_reference_order(ref_info, remeasure if can_measure else None, warnings)


def _variant_claims(
    exp: Any, df: Any, chosen: Mapping[str, Any], refs: Mapping[str, tuple[str, float]] | None,
    ref_rows: Mapping[str, Any], ref_info: Mapping[str, Mapping[str, Any]], sfx: str = "",
) -> dict[str, Any]:
    """``{variant: nas.noise.Claim}`` against its reference, for variants that have one."""
    from nas.noise import claim, run_noise

    band = run_noise(df, exp)
    out = {}
    for name, row in chosen.items():
        if not refs or name not in refs:
            continue
        ref_name, ref_ms = refs[name]
        ref_row = ref_rows.get(ref_name)
        ref_ap = finite_float(ref_row.get("ap")) if fully_trained(ref_row) else None
        ref_n = None if ref_row is None else ref_row.get("repeats")
        ref_cv = (ref_info.get(ref_name) or {}).get("cv")
        out[name] = claim(float(row["ap"]), row.get("repeats"), float(row[f"latency_ms{sfx}"]),
                          row.get(f"lat_cv{sfx}"), ref_ap, ref_n, ref_ms, ref_cv, band, ref_name)
    return out


def parse_budget_args(items: list[str]) -> dict[str, float]:
    """``["n=2.5", "s=4"]`` -> ``{"n": 2.5, "s": 4.0}``; ValueError names the bad item."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            ms = float(value)
        except ValueError:
            ms = float("nan")
        if not sep or not name or not math.isfinite(ms) or ms <= 0:
            raise ValueError(f"--budget {item!r}: expected NAME=MS with a positive latency in ms")
        check_name(name, f"--budget {item!r}")  # NAME becomes NAME.yaml
        out[name] = ms
    return out


__all__ = [
    "SIZES",
    "VariantsError",
    "check_overwrite",
    "finite_float",
    "fully_trained",
    "not_fully_trained",
    "parse_budget_args",
    "reference_budgets",
    "row_metrics",
    "select_variants",
    "set_label",
    "size_of",
    "update_variants",
    "valid_trials",
    "write_variants",
]
