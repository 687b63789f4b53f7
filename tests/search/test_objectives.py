"""Objectives as data and several latency targets, in one real tiny sweep (real Ray, Optuna,
trainer, ONNX Runtime): an objective registered in this file alone is measured on the Ray
workers, optimised by the study, and carried into the front, the report and the variants; two
latency targets (CPU fp32 with torch, CPU INT8 with ONNX Runtime static QDQ) give a column,
a front and a variant set each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from models import load_arch_record
from nas.objectives import (
    Objective,
    TrialContext,
    get_objective,
    register_objective,
    unregister_objective,
)
from nas.pareto import pareto_front
from nas.results import load_run
from nas.rundir import RunDir


def _backbone_blocks(ctx: TrialContext) -> dict[str, Any]:
    """The toy objective: how many blocks the backbone's stages hold (fewer is better)."""
    return {"backbone_blocks": sum(stage.depth for stage in ctx.spec.backbone.stages)}


BLOCKS = Objective("backbone_blocks", "min", "backbone blocks", dtype="int",
                   measure=_backbone_blocks)
TARGETS = {
    "cpu_fp32": {"image_size": 64, "warmup": 1, "iters": 5},
    "cpu_int8": {"backend": "onnxruntime", "precision": "int8", "image_size": 64, "warmup": 1,
                 "iters": 5},
}
OBJECTIVES = {"ap": "max", "latency_ms@cpu_fp32": "min", "latency_ms@cpu_int8": "min",
              "backbone_blocks": "min"}


@pytest.fixture(scope="module")
def blocks_objective() -> Any:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # reaches the workers
    register_objective(BLOCKS)
    yield BLOCKS
    unregister_objective(BLOCKS.key)


def test_registry_refuses_duplicates_and_bad_entries(blocks_objective: Any) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_objective(BLOCKS)
    with pytest.raises(ValueError, match="belongs to objective 'latency_ms'"):
        register_objective(Objective("lat2", "min", "x", measure=_backbone_blocks,
                                     columns=(("lat_cv", "float"),)))
    with pytest.raises(ValueError, match="direction"):
        Objective("x", "up", "x", measure=_backbone_blocks)
    assert get_objective("latency_ms@cpu_int8").key == "latency_ms"


def test_backend_registry_refuses_a_duplicate_name() -> None:
    from evaluators.latency.backends import Backend, get_backend, list_backends, register_backend

    assert list_backends()[:4] == ["torch", "torch-cudagraph", "onnxruntime", "tensorrt"]
    with pytest.raises(ValueError, match="already registered"):
        register_backend(Backend("torch", {"cpu": ("fp32",)}, get_backend("torch").make))


def test_unknown_target_and_constraint_named(tiny: Any, blocks_objective: Any) -> None:
    from nas.experiment import ExperimentError, load_experiment

    with pytest.raises(ExperimentError, match=r"objectives.latency_ms@gpu: unknown latency "
                                              r"target 'gpu' \(targets: cpu_fp32, cpu_int8"):
        load_experiment(tiny("bad", latency=TARGETS,
                             objectives={"ap": "max", "latency_ms@gpu": "min"}))
    with pytest.raises(ExperimentError, match="constraints.max_ap: unknown constraint"):
        load_experiment(tiny("bad", constraints={"max_ap": 0.5}))
    with pytest.raises(ExperimentError, match="backbone_blocks does not depend on the latency"):
        load_experiment(tiny("bad", latency=TARGETS,
                             objectives={"ap": "max", "backbone_blocks@cpu_int8": "min"}))
    with pytest.raises(ExperimentError, match="latency.cpu_int8.predictor: only the first"):
        load_experiment(tiny("bad", latency={**TARGETS, "cpu_int8": {
            **TARGETS["cpu_int8"], "predictor": "table.json"}}))
    exp = load_experiment(tiny("ok", latency=TARGETS, objectives=OBJECTIVES))
    assert list(exp.targets) == ["cpu_fp32", "cpu_int8"] and exp.latency.precision == "fp32"
    assert exp.to_dict()["latency"]["cpu_int8"]["precision"] == "int8"
    assert load_experiment(exp.to_dict()) == exp  # the resolved form round-trips


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, tiny: Any, ray_local: Any,
          blocks_objective: Any) -> Path:
    from nas.search import run_search

    exp = tiny("objectives", latency=TARGETS, objectives=OBJECTIVES,
               constraints={"max_model_mb": 1000.0, "max_peak_mem_mb@cpu_int8": 1e5},
               variants={"budgets": {"s": 1e4}}, budget={"trials": 3, "concurrency": 2})
    return run_search(exp, output=tmp_path_factory.mktemp("runs"), progress=False)


@pytest.mark.slow
def test_a_registered_objective_is_searched_fronted_reported(sweep: Path, tmp_path: Path) -> None:
    df = load_run(sweep)
    done = df[df.status == "COMPLETE"]
    assert len(done) >= 2 and str(df["backbone_blocks"].dtype) == "Int64"
    for _, row in done.iterrows():  # measured on the workers by this file's function
        spec = load_arch_record(sweep / row["arch_file"]).spec
        assert row["backbone_blocks"] == sum(s.depth for s in spec.backbone.stages)
    # the study optimises it: its values and names are the experiment's objectives
    study = optuna.load_study(study_name="objectives", storage=RunDir(sweep).storage_url())
    assert study.metric_names == list(OBJECTIVES)
    for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        assert t.values[3] == df.loc[df.number == t.number, "backbone_blocks"].item()
    # the front is in all the objectives, the toy one included
    pareto = pd.read_csv(sweep / "pareto.csv")
    expect = pareto_front(done, {k: v for k, v in OBJECTIVES.items()})
    assert sorted(pareto["number"]) == sorted(expect["number"]) and "backbone_blocks" in pareto
    # the report's front table and front.csv carry it; the variants' files too
    from nas.report import build_report

    report = build_report([sweep], tmp_path / "report")
    assert "backbone_blocks" in pd.read_csv(report.files["front.csv"]).columns
    assert "backbone_blocks" in report.files["report.md"].read_text()
    files = sorted((sweep / "variants").glob("*/s.yaml"))
    assert len(files) == 2
    for path in files:
        assert load_arch_record(path).metrics["backbone_blocks"] > 0


@pytest.mark.slow
def test_two_targets_two_fronts_two_variant_sets(sweep: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    df = load_run(sweep)
    done = df[df.status == "COMPLETE"]
    for target, precision, backend in (("cpu_fp32", "fp32", "torch"),
                                       ("cpu_int8", "int8", "onnxruntime")):
        assert (done[f"latency_ms@{target}"] > 0).all()  # a column per target
        assert set(done[f"lat_precision@{target}"]) == {precision}
        assert set(done[f"lat_backend@{target}"]) == {backend}
    # the primary (first) target's columns are also the plain ones
    assert done["latency_ms"].tolist() == done["latency_ms@cpu_fp32"].tolist()
    assert (done["model_mb"] > 0).all() and done["c_model_mb"].notna().all()
    assert done["c_peak_mem_mb@cpu_int8"].notna().all()
    # peak memory (a fresh process per measurement) only where a constraint names it
    assert (done["peak_mem_mb@cpu_int8"] > 1).all() and "peak_mem_mb@cpu_fp32" not in df
    # each target's latency cached under its own key (backend and precision in it)
    import json

    cached = [json.loads(p.read_text()) for p in (sweep / "latency_cache").glob("*.json")]
    keys = {(c["key"]["backend"], c["key"]["precision"]) for c in cached}
    assert {("torch", "fp32"), ("onnxruntime", "int8")} <= keys, keys
    # variants per target, chosen on that target's latency
    meta = (sweep / "run.json").read_text()
    assert '"target_variants"' in meta
    for target in TARGETS:
        rec = load_arch_record(sweep / "variants" / target / "s.yaml")
        row = done[done.number == rec.provenance["trial"]].iloc[0]
        assert rec.metrics[f"latency_ms@{target}"] == pytest.approx(row[f"latency_ms@{target}"])
    # the report: one front (and figure) per target, one variant table per target
    from nas.report import build_report

    report = build_report([sweep], tmp_path / "report")
    text = report.files["report.md"].read_text()
    for target in TARGETS:
        assert f"### Front on target {target}" in text and f"pareto-{target}.png" in text
        assert f"### Variants on target {target}" in text
        assert report.files[f"pareto-{target}.png"].is_file()
        assert len(report.runs[0].target_fronts[target]) >= 1
    fronts = pd.read_csv(report.files["front.csv"])
    assert set(fronts["target"].dropna()) == set(TARGETS)
    # `opennac variants --target`: another budget on one target, into variants/<target>/<label>/
    from nas.cli import main

    assert main(["variants", str(sweep), "--target", "cpu_int8", "--budget", "big=1e4",
                 "--label", "big", "--no-measure"]) == 0
    rec = load_arch_record(sweep / "variants" / "cpu_int8" / "big" / "big.yaml")
    assert rec.metrics["budget_ms"] == 1e4 and "latency_ms@cpu_int8" in rec.metrics
    capsys.readouterr()
    assert main(["variants", str(sweep), "--target", "gpu", "--budget", "x=1"]) == 2
    assert "--target 'gpu': not a latency target" in capsys.readouterr().err
