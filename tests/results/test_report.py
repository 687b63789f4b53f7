"""plot_fronts and `opennac report`: the files exist, the PNG is a real plot, numbers agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nas.cli import main as cli
from nas.pareto import hypervolume, pareto_front
from nas.plots import plot_fronts


def _table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 20
    return pd.DataFrame(
        {
            "number": range(n),
            "status": ["COMPLETE"] * (n - 2) + ["FAIL", "STOPPED"],
            "ap": rng.uniform(0.1, 0.6, n),
            "latency_ms": rng.uniform(1.0, 9.0, n),
            "full_fidelity": [True] * (n - 1) + [False],
            "feasible": True,
            "reference": ["yolo_nas_pose_n"] + [None] * (n - 1),
        }
    )


def test_plot_fronts_draws_each_front_as_a_step_line(tmp_path) -> None:
    runs = {"a": _table(0), "b": _table(1)}
    fig = plot_fronts(runs, references={"published": (4.0, 0.5)}, path=tmp_path / "f.svg")
    ax = fig.axes[0]
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert len(steps) == 2
    for line, df in zip(steps, runs.values(), strict=True):
        front = pareto_front(df).sort_values("latency_ms")
        np.testing.assert_allclose(line.get_xdata(), front["latency_ms"])
        np.testing.assert_allclose(line.get_ydata(), front["ap"])
        assert np.all(np.diff(line.get_ydata()) > 0)  # faster models have lower AP on a front
    labels = [t.get_text() for t in ax.texts]
    assert "published" in labels and "pose_n" in labels
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    html = plot_fronts(runs, path=tmp_path / "f.html")
    assert {t.name for t in html.data} >= {"a front", "b front", "a trials"}
    assert "plotly" in (tmp_path / "f.html").read_text()[:200000].lower()
    with pytest.raises(ValueError, match="expected a .png"):
        plot_fronts(runs, path=tmp_path / "f.jpg")


@pytest.mark.slow  # uses the tiny_runs fixture (two real sweeps)
def test_report_command_writes_the_files_and_a_real_plot(tiny_runs, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    argv = ["report", *map(str, tiny_runs), "--out", str(out),
            "--reference", "published_n=2.0,0.1"]  # fmt: skip
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "run tiny_a" in printed and "run tiny_b" in printed and "variants:" in printed
    for name in ("front.csv", "pareto.png", "pareto.html", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    # the PNG is a real plot: a decent size, many colours, a good share of drawn pixels
    image = np.asarray(Image.open(out / "pareto.png").convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 400
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    assert (image.min(axis=2) < 200).mean() > 0.01
    front = pd.read_csv(out / "front.csv")
    assert list(front["run"].unique()) == ["tiny_a", "tiny_b"][: front["run"].nunique()]
    from nas.results import load_run

    for run in tiny_runs:
        df = load_run(run)
        assert (front["run"] == df.attrs["run"]).sum() == len(pareto_front(df))
    md = (out / "report.md").read_text()
    for text in ("## Run tiny_a", "## Run tiny_b", "fidelity: 1 epochs at 64 px",
                 "hypervolume", "### Variants", "yolo_nas_pose_", "![Pareto fronts]"):  # fmt: skip
        assert text in md, text
    df = load_run(tiny_runs[0])
    assert f"{hypervolume(df):.6g}" in md


def test_report_command_errors(tmp_path, capsys) -> None:
    assert cli(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "run.json").write_text('{"format": "opennac-run/1", "status": "running"}')
    assert cli(["report", str(tmp_path), "--reference", "x=1"]) == 2
    assert "expected NAME=MS,AP" in capsys.readouterr().err
    assert cli(["report", str(tmp_path)]) == 2
    assert "no trials yet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli(["report", "--help"])
    assert exc.value.code == 0 and "RUN_DIR" in capsys.readouterr().out


def test_report_numbers_agree_with_the_api(tmp_path) -> None:
    """A run directory with a spread of results: the report's hypervolume and front are the
    API's, and a second report reuses the saved reference point."""
    import json

    from nas.report import build_report
    from nas.results import load_run

    run = tmp_path / "runs" / "spread"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"format": "opennac-run/1", "name": "spread",
                                              "status": "finished"}))  # fmt: skip
    _table(0).to_csv(run / "trials.csv", index=False)
    report = build_report([run], tmp_path / "out")
    df = load_run(run)
    hv = hypervolume(df)
    assert hv > 0 and report.runs[0].hypervolume == pytest.approx(hv)
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"hypervolume: {hv:.6g}" in md
    front = pd.read_csv(tmp_path / "out" / "front.csv")
    assert sorted(front["number"]) == sorted(pareto_front(df)["number"])
    saved = json.loads((run / "run.json").read_text())["hv_reference"]
    assert saved == report.runs[0].hv_reference
    assert build_report([run], tmp_path / "again").runs[0].hypervolume == pytest.approx(hv)
