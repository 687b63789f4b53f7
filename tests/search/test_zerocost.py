"""Zero-cost proxies and ``sampler.prescreen``: the registry, determinism, validation at load,
and the pre-screened architectures enqueued as a study's first trials."""

from __future__ import annotations

import math

import optuna
import pytest

from evaluators.zerocost import get_proxy, list_proxies, register_proxy, score_spec
from nas.experiment import ExperimentError, load_experiment
from nas.prescreen import enqueue_prescreened, prescreen, random_pool
from search_spaces import get_space
from tests._tiny import tiny_experiment


@pytest.fixture(scope="module")
def space():
    return get_space("yolo_nas_pose", width_scale=0.25)


def test_registry_refuses_duplicates_and_names_known() -> None:
    assert {"naswot", "synflow", "zen"} <= set(list_proxies())
    assert list_proxies("syn*") == ["synflow"]
    with pytest.raises(ValueError, match="already registered"):
        register_proxy("naswot")(lambda m, x: 0.0)
    with pytest.raises(KeyError, match="known: naswot"):
        get_proxy("nope")


@pytest.mark.parametrize("proxy", ["naswot", "synflow", "zen"])
def test_proxy_deterministic_finite_and_discriminating(space, proxy: str) -> None:
    a, b = space.sample_random(0), space.sample_random(1)
    sa = score_spec(a, proxy, image_size=32, batch=4, seed=0)
    assert math.isfinite(sa)
    assert sa == score_spec(a, proxy, image_size=32, batch=4, seed=0)  # same seed, same score
    assert sa != score_spec(b, proxy, image_size=32, batch=4, seed=0)  # depends on the arch


def test_synflow_grows_with_size(space) -> None:
    """Synflow sums |theta * dR/dtheta| over all parameters: the L model outscores the N."""
    refs = space.reference_specs()
    small = score_spec(refs["yolo_nas_pose_n"], "synflow", image_size=32, batch=2)
    large = score_spec(refs["yolo_nas_pose_l"], "synflow", image_size=32, batch=2)
    assert large > small


@pytest.mark.parametrize("bad, match", [
    ({"proxy": "nope"}, r"sampler\.prescreen\.proxy: expected one of naswot"),
    ({"proxy": "naswot", "pool": 4, "keep": 5}, r"sampler\.prescreen\.keep: expected <= pool"),
    ({"proxy": "naswot", "pool": 0}, r"sampler\.prescreen\.pool: expected an integer >= 1"),
    ({"proxy": "naswot", "size": 3}, r"sampler\.prescreen\.size: unknown key"),
    ({"pool": 3}, r"sampler\.prescreen\.proxy: missing required key"),
])
def test_prescreen_validated_at_load(bad: dict, match: str) -> None:
    doc = tiny_experiment("ps", sampler={"type": "nsga2", "prescreen": bad})
    with pytest.raises(ExperimentError, match=match):
        load_experiment(doc)


def test_prescreen_enqueues_the_best_first(space) -> None:
    exp = load_experiment(tiny_experiment(
        "ps", sampler={"type": "nsga2", "prescreen": {"proxy": "zen", "pool": 3, "keep": 2}}))
    pre = exp.sampler.prescreen
    assert (pre.proxy, pre.pool, pre.keep) == ("zen", 3, 2)
    pool = random_pool(space, 3, seed=0)
    assert len({c["arch_id"] for c in pool}) == 3
    best = prescreen(space, "zen", 3, 2, seed=0, image_size=32, batch=4)
    scores = {c["arch_id"]: score_spec(c["spec"], "zen", image_size=32, batch=4) for c in pool}
    assert [b["arch_id"] for b in best] == sorted(scores, key=lambda a: -scores[a])[:2]
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=0))
    got = enqueue_prescreened(study, space, pre, seed=0, limit=1)
    assert len(got) == 1
    trial = study.ask()
    assert space.sample(trial).arch_id == got[0]["arch_id"]
    assert trial.user_attrs["prescreen"] == "zen"
