"""In-context block timing, the robust fits, the unseen-block estimator, the format-1 upgrade."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from evaluators.latency import LatencyTable, device_name, profile_blocks
from evaluators.latency.decompose import decompose, spec_blocks
from evaluators.latency.fitting import (
    estimate_block_ms,
    fit_estimator,
    robust_nonneg_lstsq,
    theil_sen,
)
from evaluators.latency.predictor import sample_specs
from evaluators.latency.tablefile import FORMAT, FORMAT_V1
from models.build import build_model, fuse
from search_spaces import get_space

V1_FILE = Path(__file__).parent / "fixtures" / "table_v1.json"
SPACE = get_space("yolo_nas", width_scale=0.25)  # the space the format-1 fixture was built on


class Wait(nn.Module):
    """A block that takes at least ``ms`` milliseconds (a sleep), with a 1x1 conv."""

    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.ms / 1000)
        return self.conv(x)


class Toy(nn.Module):
    """backbone/neck/head parts, as `block_modules` expects; waits between blocks too."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.ModuleList([Wait(2.0), Wait(6.0)])
        self.neck = nn.ModuleList([Wait(1.0)])
        self.head = nn.ModuleList()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in [*self.backbone, *self.neck]:
            x = block(x)
            time.sleep(0.003)  # glue outside the blocks: not counted in any block
        return x


def test_profile_times_each_block_where_it_runs() -> None:
    prof = profile_blocks(Toy(), torch.rand(1, 3, 8, 8), warmup=1, iters=5)
    assert [b.path for b in prof.blocks] == ["backbone.0", "backbone.1", "neck.0"]
    two, six, one = prof.block_ms
    assert two >= 2.0 and six >= 6.0 and one >= 1.0  # a sleep never ends early
    assert six > two > one and six < 6.0 + 20.0  # each block its own time, not the pass's
    # the whole pass also holds the 3 x 3 ms of glue between blocks, which no block counts
    assert prof.whole.median_ms >= 18.0 and sum(prof.block_ms) < 15.0


def test_profile_describes_the_real_model() -> None:
    spec = sample_specs(SPACE, 1, 3)[0]
    x = torch.rand(1, 3, 64, 64)
    prof = profile_blocks(fuse(build_model(spec)), x, warmup=1, iters=3)
    assert [b.key for b in prof.blocks] == [b.key for b in spec_blocks(spec, 64)]
    assert all(ms > 0 for ms in prof.block_ms) and len(prof.block_cv) == len(prof.blocks)
    assert prof.whole.samples == 3


def test_families_group_depths_and_widths_not_kinds() -> None:
    def blocks(params: dict[str, object]) -> dict[str, object]:
        spec = SPACE.replay({**base, **params})
        return {b.path: b for b in decompose(fuse(build_model(spec)), torch.zeros(1, 3, 64, 64))}

    base = SPACE.params_of(SPACE.reference_specs()["yolo_nas_s"])
    assert base is not None
    ref = blocks({})
    deeper = blocks({"stage3_depth": base["stage3_depth"] % 6 + 1})
    other_kind = blocks({"stage3_kind": "qci" if base["stage3_kind"] == "qsp" else "qsp"})
    s3 = "backbone.stages.2"
    assert deeper[s3].key != ref[s3].key and deeper[s3].family == ref[s3].family
    assert other_kind[s3].family != ref[s3].family
    assert len({b.family for b in ref.values()}) == len(ref)  # one family per position


def test_theil_sen_and_robust_lstsq_ignore_an_outlier() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    ys = [2 * x + 1 for x in xs]
    ys[4] = 100.0
    assert theil_sen(xs, ys) == pytest.approx((2.0, 1.0))
    rows = [[x, 1.0] for x in xs]
    assert robust_nonneg_lstsq(rows, ys) == pytest.approx([2.0, 1.0])


def _entry(path: str, family: str, gmacs: float, layers: int, ms: float) -> dict[str, object]:
    return {
        "block": path,
        "family": family,
        "gmacs": gmacs,
        "layers": layers,
        "mact": 0.1,
        "ms": ms,
    }


def test_estimator_levels() -> None:
    # family "f": ms = 0.2 + 3 * gmacs + 0.05 * layers, plus one bad timing
    fam = [
        _entry("neck.up1", "f", g, n, 0.2 + 3 * g + 0.05 * n)
        for g, n in [(0.1, 5), (0.2, 9), (0.3, 5), (0.4, 13), (0.5, 9), (0.6, 17)]
    ]
    fam.append(_entry("neck.up1", "f", 0.35, 9, 40.0))
    small = [_entry("neck.up1", "g", 0.1, 5, 9.0)]  # a family too small for its own fit
    est = fit_estimator(fam + small)
    ms, level = estimate_block_ms(est, "neck.up1", "f", {"gmacs": 0.45, "layers": 11, "mact": 0.1})
    assert level == "family" and ms == pytest.approx(0.2 + 3 * 0.45 + 0.05 * 11, rel=1e-6)
    _, level = estimate_block_ms(est, "neck.up1", "g", {"gmacs": 0.1, "layers": 5, "mact": 0.1})
    assert level == "path"
    _, level = estimate_block_ms(
        est, "head.levels.0", None, {"gmacs": 0.1, "layers": 5, "mact": 0.1}
    )
    assert level == "global"


def test_format_1_file_is_upgraded(tmp_path: Path) -> None:
    old = json.loads(V1_FILE.read_text())
    assert old["format"] == FORMAT_V1
    table = LatencyTable.load(V1_FILE)
    assert table.context["timing"] == "isolated" and table.entries.keys() == old["entries"].keys()
    assert table.overhead["scale"] == old["overhead"]["scale"]
    covered = sample_specs(SPACE, 2, 0)[0]  # the fixture was built from seeds 0 and 1
    assert table.coverage(covered) == 1.0
    block_sum = sum(old["entries"][b.key]["ms"] for b in spec_blocks(covered, 64))
    o = old["overhead"]
    assert table.predict(covered) == pytest.approx(o["intercept_ms"] + o["scale"] * block_sum)
    unseen = sample_specs(SPACE, 1, 4242)[0]
    assert table.coverage(unseen) < 1.0 and table.predict(unseen) > 0  # refitted estimator
    saved = json.loads(table.save(tmp_path / "t.json").read_text())
    assert saved["format"] == FORMAT and saved["context"]["timing"] == "isolated"
    again = LatencyTable.load(tmp_path / "t.json")
    assert again.predict(unseen) == pytest.approx(table.predict(unseen))


def test_isolated_table_extends_missing_blocks_only(tmp_path: Path) -> None:
    path = tmp_path / "v1.json"
    shutil.copy(V1_FILE, path)
    doc = json.loads(path.read_text())
    doc["context"]["device_name"] = device_name("cpu")  # the fixture's CPU may not be this one
    doc["context"]["iters"] = 2
    path.write_text(json.dumps(doc))
    table = LatencyTable.load(path)
    unseen = sample_specs(SPACE, 1, 4242)[0]
    missing = {b.key for b in spec_blocks(unseen, 64)} - set(table.entries)
    before = dict(table.entries)
    assert table.extend(unseen) == len(missing) > 0
    assert table.coverage(unseen) == 1.0 and len(table.fit_points) == len(doc["fit_points"])
    assert all(table.entries[k] == e for k, e in before.items())  # known entries untouched
