"""The search-efficiency table (`nas.benchtable`) and the sampler replay (`nas.replay`,
benchmarks/sampler.py) on a tiny table the test writes (AP and latency made up from the
architecture's size, so they are functions of the parameters, as trained ones are)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from models.complexity import complexity
from nas.benchtable import FORMAT, Encoding, TableError, read_table, write_table
from nas.pareto import hypervolume_of_losses
from nas.replay import mean_ci, plan_of, replay_curve, told_ap, trials_to_reach
from search_spaces import RandomTrial, get_space
from tests._tiny import tiny_experiment

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"name": "yolo_nas_pose", "width_scale": 0.25}


@pytest.fixture(scope="module")
def space():
    return get_space(**SPACE)


@pytest.fixture(scope="module")
def table_path(space, tmp_path_factory) -> Path:
    rows = []
    points = list(space.reference_points().items())
    points += [("", RandomTrial(seed=i)) for i in range(14)]
    for label, p in points:
        if isinstance(p, RandomTrial):
            spec = space.sample(p)
            params = dict(p.params)
        else:
            spec, params = space.replay(p), dict(p)
        n = complexity(spec, image_size=64).params
        rows.append({"arch_id": spec.arch_id, "label": label, "params": n,
                     "latency_ms": round(1 + n / 2e5, 4), "ap_mean": round(0.1 * np.log(n), 5),
                     "ap_sd": 0.01, "seeds": 2, "ap_seeds": "0.1;0.2", "train_s": 1.0,
                     "zc_size": float(n), "zc_anti": -float(n), "space_params": params})
    path = tmp_path_factory.mktemp("bench") / "table.csv"
    write_table(path, rows, {"space": SPACE, "fidelity": {"epochs": 1}})
    return path


def test_table_round_trip_and_lookup(space, table_path: Path) -> None:
    table = read_table(table_path)
    assert table_path.read_text().startswith(f"# {FORMAT}\n# settings: ")
    assert table.settings["space"] == SPACE and len(table.rows) == 18
    table.bind(space, samples=32)
    for i, params in enumerate(table.params):  # every row is its own nearest neighbour
        assert space.replay(params).arch_id == table.rows[i]["arch_id"]
        assert table.nearest(params) == i
    # a proposal one dimension away from row 5 is answered by row 5
    near = dict(table.params[5])
    key = next(k for k, v in near.items() if isinstance(v, int) and not isinstance(v, bool))
    near[key] = near[key] + 1 if near[key] < 3 else near[key] - 1
    d = table.encoding.distance(near, table.params)
    assert 0 < d[5] <= 1 and table.nearest(near) in np.flatnonzero(d == d.min())


def test_encoding_distance_rules(space) -> None:
    enc = Encoding.of(space, samples=16)
    p = dict(space.reference_points()["yolo_nas_pose_n"])
    assert enc.distance(p, [p]).tolist() == [0.0]
    dropped = {k: v for k, v in p.items() if k != next(iter(p))}
    assert enc.distance(dropped, [p]).tolist() == [1.0]  # a missing parameter counts 1


def test_table_refuses_foreign_files(tmp_path: Path) -> None:
    other = tmp_path / "mine.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(TableError, match="not an opennac-bench-table/1 table"):
        read_table(other)
    with pytest.raises(TableError, match="not overwritten"):
        write_table(other, [], {})
    assert other.read_text() == "a,b\n1,2\n"


def test_table_names_a_bad_seed_list(table_path: Path, tmp_path: Path) -> None:
    text = table_path.read_text().replace("0.1;0.2", "0.1;n/a", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(TableError, match=r"bad.csv: row 1 \(.*\): ap_seeds '0.1;n/a' is not"):
        read_table(bad)


def test_replay_curve_is_the_hypervolume_of_the_points_told(space, table_path: Path) -> None:
    table = read_table(table_path).bind(space, samples=32)
    ref = (0.0, 20.0)
    curve = replay_curve(table, space, "random", seed=3, trials=10, reference=ref)
    assert curve.shape == (10,) and np.all(np.diff(curve) >= 0) and curve[-1] > 0
    # the same search again, its rows looked up by hand: the same hypervolume
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=3))
    ap, lat = table.column("ap_mean"), table.column("latency_ms")
    pts = []
    for _ in range(10):
        t = study.ask()
        space.sample(t)
        r = table.nearest(t.params)
        study.tell(t, [ap[r], lat[r]])
        pts.append((-ap[r], lat[r]))
    assert curve[-1] == pytest.approx(hypervolume_of_losses(np.array(pts), np.array([0.0, 20.0])))


def test_replay_tells_one_seed_and_scores_the_mean(space, table_path: Path) -> None:
    """--observe seed (the default): the study is told one training's AP per trial, drawn from
    the row's ``ap_seeds``; the hypervolume stays on ``ap_mean``."""
    import random

    table = read_table(table_path).bind(space, samples=32)
    assert table.seed_aps(0) == [0.1, 0.2]
    rng = random.Random(0)
    told = {told_ap(table, 4, "seed", rng) for _ in range(40)}
    assert told == {0.1, 0.2}  # both trainings are drawn, nothing else
    assert told_ap(table, 4, "mean", rng) == table.rows[4]["ap_mean"]
    with pytest.raises(ValueError, match="observe: expected one of seed, mean"):
        told_ap(table, 4, "best", rng)
    ref = (0.0, 20.0)
    # random ignores what it is told: same proposals, so the same curve (scored on the mean)
    np.testing.assert_array_equal(
        replay_curve(table, space, "random", 2, 12, ref, observe="seed"),
        replay_curve(table, space, "random", 2, 12, ref, observe="mean"))
    # NSGA-II's later generations follow what it was told: the seeds (0.1 / 0.2, unrelated to
    # the mean here) steer it elsewhere
    by_seed = replay_curve(table, space, plan_of("nsga2", None, population=4), 2, 16, ref)
    by_mean = replay_curve(table, space, plan_of("nsga2", None, population=4), 2, 16, ref,
                           observe="mean")
    assert not np.array_equal(by_seed, by_mean)
    np.testing.assert_array_equal(by_seed[:4], by_mean[:4])  # the first generation is random


def test_default_plan_is_the_experiments_sampler(table_path: Path) -> None:
    from nas.experiment import load_experiment

    exp = load_experiment(tiny_experiment("d", sampler={
        "type": "tpe", "population": 5, "prescreen": {"proxy": "naswot", "pool": 9, "keep": 3}}))
    plan = plan_of("default", exp)
    assert (plan.kind, plan.population, plan.seed_references, plan.prescreen) == \
        ("tpe", 5, True, ("naswot", 9, 3))
    assert plan_of("nsga2+zen", exp).prescreen == ("zen", 9, 3)
    with pytest.raises(ValueError, match="expected one of random, nsga2, tpe, gp"):
        plan_of("cmaes", exp)
    assert trials_to_reach(np.array([[0, 1, 2], [0, 1, 4]]), 1.5) == 3
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci["lo"] < 2.0 == ci["mean"] < ci["hi"]


@pytest.mark.slow
def test_sampler_benchmark_json(space, table_path: Path, tmp_path: Path, capsys) -> None:
    """benchmarks/sampler.py with every sampler (real Optuna NSGA-II, TPE, GP): the last line
    is the JSON the issue asks for, with each proxy's Kendall tau against the table's AP."""
    exp_path = tmp_path / "exp.yaml"
    exp_path.write_text(json.dumps(tiny_experiment(
        "bench", sampler={"type": "nsga2", "population": 4, "seed": 0}, seed_references=False)))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sampler as bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    bench.main(["--table", str(table_path), "--experiment", str(exp_path), "--seeds", "2",
                "--trials", "11", "--pool", "18", "--keep", "4", "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    names = {"random", "nsga2", "tpe", "gp", "default", "default+size", "default+anti"}
    assert set(res["hv_at"]) == names and set(res["trials_to_random75"]) == names
    assert set(res["hv_at"]["gp"]) == {"11"}  # fewer trials than 12: the last count only
    assert 1 <= res["trials_to_random75"]["random"] <= 11
    assert res["kendall_tau"]["size"] == 1.0 and res["kendall_tau"]["anti"] == -1.0
    for name in names:
        at = res["hv_at"][name]["11"]
        assert 0 < at["lo"] <= at["mean"] <= at["hi"]
    assert any(line.startswith("| default |") for line in out)
    assert "reference point AP 0.0" in "\n".join(out)


def test_parallel_replays_equal_serial_ones(space, table_path: Path) -> None:
    """benchmarks/sampler.py --jobs 2: the searches run in forked processes give the very
    curves of the serial run (each search is seeded), in seed order per sampler."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sampler as bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table = read_table(table_path)
    table.bind(space)
    plans = {"random": plan_of("random", None), "nsga2": plan_of("nsga2", None)}
    serial, _ = bench.replay_all(table, space, plans, seeds=3, trials=8, reference=(0.0, 30.0))
    forked, wall = bench.replay_all(table, space, plans, seeds=3, trials=8,
                                    reference=(0.0, 30.0), jobs=2)
    assert set(forked) == set(plans) and set(wall) == set(plans)
    for name in plans:
        assert forked[name].shape == (3, 8)
        np.testing.assert_array_equal(forked[name], serial[name])
    assert not np.array_equal(serial["random"][0], serial["random"][1])  # seeds differ


@pytest.mark.parametrize("table_name, experiment", [
    ("sampler_table.csv", "sampler_bench.yaml"), ("quickstart_table.csv", "quickstart.yaml")])
def test_committed_tables_match_their_experiments(table_name: str, experiment: str) -> None:
    """The committed tables (benchmarks/data/) were measured with what their experiment files
    say now (a changed experiment needs a rebuilt table), and sampler_bench.yaml is the
    quickstart's space, sampler and latency target on other data: the replayed ``default`` is
    the quickstart's search."""
    import dataclasses

    from nas.experiment import load_experiment

    exp = load_experiment(ROOT / "experiments" / experiment)
    table = read_table(ROOT / "benchmarks" / "data" / table_name)
    st = table.settings
    assert st["space"] == {"name": exp.space.name, **exp.space.overrides}
    assert st["data"] == json.loads(json.dumps(dataclasses.asdict(exp.data)))
    fid = dataclasses.asdict(exp.fidelity)
    assert {k: fid[k] for k in st["fidelity"]} == st["fidelity"]
    assert st["latency"]["image_size"] == exp.latency.image_size
    assert len(table.rows) >= 150 and all(len(table.seed_aps(i)) == 2
                                          for i in range(len(table.rows)))
    quick = load_experiment(ROOT / "experiments" / "quickstart.yaml")
    assert (exp.space, exp.sampler, exp.latency, exp.seed_references) == \
        (quick.space, quick.sampler, quick.latency, quick.seed_references)
