"""The per-block latency table: decomposition, fitting helpers, build / predict / save / check."""

from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from evaluators.latency import LatencyError, LatencyTable, kendall_tau
from evaluators.latency.decompose import decompose, spec_blocks
from evaluators.latency.fitting import nonneg_lstsq
from evaluators.latency.predictor import FORMAT, sample_specs
from models.build import build_model, fuse
from models.presets import get_preset
from search_spaces import get_space

SPACE = get_space("yolo_nas", width_scale=0.25)
FAST = {"warmup": 1, "iters": 3}


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    torch.set_num_threads(1)
    return LatencyTable.build(SPACE, image_size=64, samples=3, seed=0, **FAST)


def test_kendall_tau() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # pairs: (1,2)+ (1,3)+ (1,4)+ (2,3)- (2,4)+ (3,4)+ -> (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # tau-b with a tie in y: C=2, D=0, ties_y=1 -> 2 / sqrt(3 * 2)
    assert kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1.0], [2.0]))


def test_nonneg_lstsq_recovers_and_clamps() -> None:
    rows = [[x, 1.0] for x in (1.0, 2.0, 3.0, 5.0)]
    assert nonneg_lstsq(rows, [2 * x + 0.5 for x, _ in rows]) == pytest.approx([2.0, 0.5])
    coef = nonneg_lstsq(rows, [5.0 - x for x, _ in rows])  # the best slope is negative
    assert coef[0] == 0.0 and coef[1] > 0


def test_blocks_of_a_spec() -> None:
    spec = get_preset("yolo_nas_pose_tiny")
    blocks = spec_blocks(spec, image_size=64)
    paths = [b.path for b in blocks]
    assert paths == (
        ["backbone.stem"]
        + [f"backbone.stages.{i}" for i in range(4)]
        + ["backbone.spp", "neck.up1", "neck.up2", "neck.down1", "neck.down2"]
        + [f"head.levels.{i}" for i in range(3)]
    )
    # the meta-device description matches the real fused model, block by block
    real = decompose(fuse(build_model(spec)), torch.zeros(1, 3, 64, 64), keep_inputs=True)
    assert [b.key for b in real] == [b.key for b in blocks]
    assert [b.macs for b in real] == [b.macs for b in blocks]
    # inputs kept for timing reproduce the block's work
    up1 = real[paths.index("neck.up1")]
    assert up1.inputs is not None and len(up1.inputs) == 3
    # a different input size changes every key
    assert not {b.key for b in blocks} & {b.key for b in spec_blocks(spec, image_size=96)}


def test_build_predict_save_load(table: LatencyTable, tmp_path: Path) -> None:
    specs = sample_specs(SPACE, 3, 0)
    keys = {b.key for s in specs for b in spec_blocks(s, 64)}
    assert set(table.entries) == keys  # every distinct block timed once, nothing else
    assert all(e["ms"] > 0 and e["obs"] for e in table.entries.values())
    assert table.context["timing"] == "context"
    assert [p["arch_id"] for p in table.fit_points] == [s.arch_id for s in specs]
    for p in table.fit_points:  # a point's block sum is that of the current entries
        assert p["blocks_ms"] == pytest.approx(sum(table.entries[k]["ms"] for k in p["keys"]))
    assert table.context["space"] == "yolo_nas" and table.context["image_size"] == 64
    assert table.context["space_overrides"]["width_scale"] == 0.25
    o = table.overhead
    spec = specs[1]
    block_sum = sum(table.entries[b.key]["ms"] for b in spec_blocks(spec, 64))
    assert table.predict(spec) == pytest.approx(o["intercept_ms"] + o["scale"] * block_sum)
    assert table.coverage(spec) == 1.0
    unseen = sample_specs(SPACE, 1, 777)[0]
    assert 0.0 <= table.coverage(unseen) < 1.0 and table.predict(unseen) > 0
    path = table.save(tmp_path / "t.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["context"]["device_name"]
    loaded = LatencyTable.load(path)
    assert loaded.predict(unseen) == pytest.approx(table.predict(unseen))
    assert loaded.extend(spec) == 0  # nothing to add: no measurement


def test_profiling_again_adds_observations(table: LatencyTable) -> None:
    again = LatencyTable(
        context=dict(table.context),
        entries=copy.deepcopy(table.entries),
        fit_points=copy.deepcopy(table.fit_points),
    )
    spec = sample_specs(SPACE, 1, 0)[0]
    keys = [b.key for b in spec_blocks(spec, 64)]
    assert again.add_architecture(spec) == 0  # nothing new, but timed again
    assert len(again.fit_points) == len(table.fit_points) + 1
    for k in keys:
        obs = again.entries[k]["obs"]
        assert len(obs) == len(table.entries[k]["obs"]) + 1
        assert again.entries[k]["ms"] == pytest.approx(statistics.median(obs))
    assert again.overhead["points"] == len(again.fit_points)  # refitted


def test_calibration_report(table: LatencyTable) -> None:
    report = table.calibrate(samples=3, seed=5000)
    assert len(report.rows) == 3
    assert 0.0 <= report.within_10pct <= 1.0 and -1.0 <= report.kendall_tau <= 1.0
    within = sum(abs(r["error_pct"]) <= 10 for r in report.rows) / 3
    assert report.within_10pct == within
    for r in report.rows:
        assert r["error_pct"] == pytest.approx(
            100 * (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
        )
    assert "Kendall tau" in report.format()
    assert report.to_dict()["samples"] == 3


def test_load_refuses_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "opennac-latency-table/99"}))
    with pytest.raises(LatencyError, match="expected 'opennac-latency-table/2'"):
        LatencyTable.load(bad)
    bad.write_text(json.dumps({"format": FORMAT, "context": {}, "entries": {}, "overhead": {}}))
    with pytest.raises(LatencyError, match="context.device"):
        LatencyTable.load(bad)
    with pytest.raises(LatencyError, match="no such latency table"):
        LatencyTable.load(tmp_path / "missing.json")


def test_table_on_another_device_is_refused(table: LatencyTable) -> None:
    other = LatencyTable(
        context={**table.context, "device_name": "NVIDIA T4"}, entries=table.entries
    )
    with pytest.raises(LatencyError, match="does not match"):
        other.calibrate(samples=1)
