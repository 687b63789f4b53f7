"""Pareto-front figures: several runs on one plot, the released models as labelled points.

`plot_fronts` draws each run's valid trials as faint dots and its front as a step line (the
boundary of what the run attains) with AP error bars where the table has them (``ap_ci``, the
seed-noise interval of `nas.noise`), plus reference points. Matplotlib for PNG/SVG/PDF, plotly for
interactive HTML (self-contained: it opens offline).

Example:
    >>> from nas import load_runs, plot_fronts                      # doctest: +SKIP
    >>> runs = load_runs(["runs/a", "runs/b"])                      # doctest: +SKIP
    >>> plot_fronts(runs, {"yolo_nas_s": (3.2, 0.475)}, "front.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nas.pareto import check_objectives, pareto_front, valid_mask

RunsLike = (
    pd.DataFrame
    | Sequence[pd.DataFrame | str | os.PathLike[str]]
    | Mapping[str, pd.DataFrame | str | os.PathLike[str]]
)


def _label(column: str) -> str:
    """An axis label from the objectives registry (``latency (ms) @cpu_int8``)."""
    from nas.objectives import label_of

    return label_of(column)


def plot_fronts(
    runs: RunsLike,
    references: Mapping[str, tuple[float, float]] | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    x: str = "latency_ms",
    y: str = "ap",
    objectives: Mapping[str, str] | None = None,
    backend: str | None = None,
    title: str | None = None,
    show_trials: bool = True,
    label_reference_trials: bool = True,
    only_valid: bool = True,
) -> Any:
    """Draw the fronts of one or more runs; returns the figure (and writes it to ``path``).

    - ``runs``: a DataFrame from `nas.load_run` or `nas.load_runs` (split on its ``run``
      column), a list of DataFrames or run directories, or ``{name: DataFrame or directory}``.
    - ``references``: ``{name: (x, y)}`` points drawn and labelled, e.g. released models'
      published ``(latency_ms, ap)``.
    - ``path``: ``.png``/``.svg``/``.pdf`` (matplotlib) or ``.html`` (plotly).
    - ``backend``: ``"matplotlib"`` or ``"plotly"``; default from ``path``, else matplotlib.
    - ``objectives``: directions of ``x`` and ``y`` (default: AP max, latency min).
    - ``label_reference_trials``: label trials whose architecture is a released model (the
      ``reference`` column of `nas.load_run`).
    """
    directions = check_objectives(objectives)
    for axis in (x, y):
        if axis not in directions:
            from nas.objectives import direction_of

            try:  # the registry's direction; an unregistered column is maximised
                directions[axis] = direction_of(axis)
            except KeyError:
                directions[axis] = "max"
    directions = {y: directions[y], x: directions[x]}
    named = _named_frames(runs)
    if not named:
        raise ValueError("plot_fronts: no runs given")
    suffix = Path(path).suffix.lower() if path is not None else ""
    if backend is None:
        backend = "plotly" if suffix in (".html", ".htm") else "matplotlib"
    if backend not in ("matplotlib", "plotly"):
        raise ValueError(f"backend: expected 'matplotlib' or 'plotly', got {backend!r}")
    if path is not None and backend == "plotly" and suffix not in (".html", ".htm"):
        raise ValueError(f"{path}: the plotly backend writes .html files")
    if path is not None and backend == "matplotlib" and suffix not in (".png", ".svg", ".pdf"):
        raise ValueError(f"{path}: expected a .png, .svg or .pdf file (or .html for plotly)")
    layers = [
        _layers(name, df, x, y, directions, only_valid, label_reference_trials)
        for name, df in named
    ]
    refs = {str(k): (float(v[0]), float(v[1])) for k, v in (references or {}).items()}
    step = "post" if directions[x] == "min" else "pre"
    title = title or _default_title([df for _, df in named], x, y)
    draw = _draw_plotly if backend == "plotly" else _draw_matplotlib
    fig = draw(layers, refs, x, y, step, title, show_trials)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if backend == "plotly":
            fig.write_html(str(path), include_plotlyjs=True, full_html=True)
        else:
            fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig


# --------------------------------------------------------------------------- data


def _named_frames(runs: RunsLike) -> list[tuple[str, pd.DataFrame]]:
    from nas.results import load_run

    def as_frame(item: Any) -> pd.DataFrame:
        return item if isinstance(item, pd.DataFrame) else load_run(item)

    if isinstance(runs, pd.DataFrame):
        if "run" in runs.columns:
            return [(str(k), g) for k, g in runs.groupby("run", sort=False)]
        return [(str(runs.attrs.get("run") or "run"), runs)]
    if isinstance(runs, Mapping):
        return [(str(k), as_frame(v)) for k, v in runs.items()]
    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    out = []
    for item in runs:
        df = as_frame(item)
        name = df.attrs.get("run") or (
            Path(os.fspath(item)).name
            if not isinstance(item, pd.DataFrame)
            else f"run {len(out) + 1}"
        )
        out.append((str(name), df))
    return out


def _layers(
    name: str,
    df: pd.DataFrame,
    x: str,
    y: str,
    directions: Mapping[str, str],
    only_valid: bool,
    label_reference_trials: bool,
) -> dict[str, Any]:
    for col in (x, y):
        if col not in df.columns:
            raise KeyError(f"run {name!r}: no column {col!r} to plot")
    valid = df[valid_mask(df, directions, only_valid).to_numpy()]
    front = pareto_front(df, directions, only_valid).sort_values(x, kind="stable")
    labelled = []
    if label_reference_trials and "reference" in valid.columns:
        for _, row in valid[valid["reference"].notna()].iterrows():
            label = str(row["reference"]).removeprefix("yolo_nas_")  # "pose_n", "s", ...
            labelled.append((label, float(row[x]), float(row[y])))
    return {
        "name": name,
        "all_x": valid[x].astype(float).tolist(),
        "all_y": valid[y].astype(float).tolist(),
        "front_x": front[x].astype(float).tolist(),
        "front_y": front[y].astype(float).tolist(),
        "front_n": front["number"].tolist() if "number" in front.columns else [],
        "front_err": _errors(front, y),
        "labelled": labelled,
    }


def _errors(front: pd.DataFrame, y: str) -> list[float] | None:
    """AP error bars of the front: its ``ap_ci`` column (the noise interval's half-width,
    `nas.noise`), None when no member has one."""
    if y != "ap" or "ap_ci" not in front.columns:
        return None
    errs = pd.to_numeric(front["ap_ci"], errors="coerce").astype(float)
    return None if errs.isna().all() else errs.fillna(0.0).tolist()


def _default_title(frames: list[pd.DataFrame], x: str, y: str) -> str:
    devices = set()
    suffix = x[len("latency_ms"):] if x.startswith("latency_ms") else None
    for df in frames:
        if suffix is not None and f"lat_device{suffix}" in df.columns:
            devices.update(str(d) for d in df[f"lat_device{suffix}"].dropna().unique())
    where = f" on {', '.join(sorted(devices))}" if devices else ""
    return f"Pareto fronts: {_label(y)} vs {_label(x)}{where}"


# --------------------------------------------------------------------------- drawing


def _draw_matplotlib(
    layers: list[dict[str, Any]],
    refs: Mapping[str, tuple[float, float]],
    x: str,
    y: str,
    step: str,
    title: str,
    show_trials: bool,
) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.0))
    ax = fig.add_subplot()
    colours = [f"C{i}" for i in range(10)]
    for i, layer in enumerate(layers):
        colour = colours[i % len(colours)]
        if show_trials and layer["all_x"]:
            ax.scatter(layer["all_x"], layer["all_y"], s=14, color=colour, alpha=0.25,
                       linewidths=0)  # fmt: skip
        if layer["front_x"]:
            ax.step(layer["front_x"], layer["front_y"], where=step, color=colour, linewidth=1.8,
                    label=f"{layer['name']} ({len(layer['front_x'])} on front)")  # fmt: skip
            ax.scatter(layer["front_x"], layer["front_y"], s=28, color=colour, zorder=3)
            if layer["front_err"]:
                ax.errorbar(layer["front_x"], layer["front_y"], yerr=layer["front_err"],
                            fmt="none", ecolor=colour, elinewidth=1, capsize=3, alpha=0.7)
        else:
            ax.plot([], [], color=colour, label=f"{layer['name']} (no valid trial)")
        for j, (label, px, py) in enumerate(layer["labelled"]):
            ax.scatter([px], [py], s=60, facecolors="none", edgecolors=colour, zorder=4)
            offset = (4, (-11, 5, -20, 14)[(i + j) % 4])  # staggered: neighbours stay legible
            ax.annotate(label, (px, py), textcoords="offset points", xytext=offset,
                        fontsize=8, color=colour)  # fmt: skip
    if refs:
        xs, ys = zip(*refs.values(), strict=True)
        ax.scatter(xs, ys, marker="*", s=110, color="black", zorder=5, label="reference models")
        for label, (px, py) in refs.items():
            ax.annotate(label, (px, py), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _draw_plotly(
    layers: list[dict[str, Any]],
    refs: Mapping[str, tuple[float, float]],
    x: str,
    y: str,
    step: str,
    title: str,
    show_trials: bool,
) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip
    shape = "hv" if step == "post" else "vh"
    for i, layer in enumerate(layers):
        colour = palette[i % len(palette)]
        if show_trials and layer["all_x"]:
            fig.add_trace(go.Scatter(
                x=layer["all_x"], y=layer["all_y"], mode="markers", name=f"{layer['name']} trials",
                marker={"color": colour, "opacity": 0.3, "size": 6}, legendgroup=layer["name"],
            ))  # fmt: skip
        fig.add_trace(go.Scatter(
            x=layer["front_x"], y=layer["front_y"], mode="lines+markers", line_shape=shape,
            name=f"{layer['name']} front", line={"color": colour, "width": 2},
            marker={"color": colour, "size": 8}, legendgroup=layer["name"],
            error_y=({"type": "data", "array": layer["front_err"], "visible": True}
                     if layer["front_err"] else None),
            text=[f"trial {n}" for n in layer["front_n"]] or None,
            hovertemplate=f"%{{text}}<br>{x}=%{{x:.4g}}<br>{y}=%{{y:.4g}}<extra></extra>",
        ))  # fmt: skip
        if layer["labelled"]:
            labels, xs, ys = zip(*layer["labelled"], strict=True)
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="markers+text", text=labels, textposition="bottom right",
                name=f"{layer['name']} reference trials", legendgroup=layer["name"],
                marker={"color": colour, "size": 12, "symbol": "circle-open"},
            ))  # fmt: skip
    if refs:
        fig.add_trace(go.Scatter(
            x=[v[0] for v in refs.values()], y=[v[1] for v in refs.values()],
            mode="markers+text", text=list(refs), textposition="top right",
            name="reference models", marker={"color": "black", "size": 12, "symbol": "star"},
        ))  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis_title=_label(x),
        yaxis_title=_label(y),
        template="plotly_white",
    )
    return fig
