"""Must show: a variant inside the noise band of its reference is not said to beat it, one
outside is; the run's noise band; ties on the front; reference latencies out of order.

The run directory here is written by hand (trials table + real frozen files of the space's
architectures) so that the APs are known: the code under test is the variant selection, the
noise band, the claims and the report, all real.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from _handrun import make_hand_run  # tests/search/_handrun.py

from nas.experiment import load_experiment
from nas.noise import NoiseBand, claim, mark_ties, noise_band, run_noise, trial_seeds
from nas.report import build_report
from nas.stability import out_of_order, settle_reference_order
from nas.variants import update_variants


@pytest.fixture()
def hand_run(tmp_path: Path, tiny):
    return make_hand_run(tmp_path, tiny("noise", noise={"reference_repeats": 3},
                                        variants={"match_references": True}))


def test_noise_band_is_pooled_over_seeds(hand_run) -> None:
    _, exp, df = hand_run
    band = run_noise(df, exp)
    assert band.source == "repeats" and band.dof == 8 and band.trials == 4
    assert band.seed_sd == pytest.approx(0.02, abs=1e-9)
    assert band.min_ap_diff == pytest.approx(2 * 1.96 * 0.02)  # two 1-seed candidates
    assert band.halfwidth(3) == pytest.approx(1.96 * 0.02 / math.sqrt(3))
    from nas.experiment import Fidelity

    assert trial_seeds(Fidelity(seed=5, repeats=1), "yolo_nas_pose_n", 3) == [5, 6, 7]
    assert trial_seeds(Fidelity(seed=5, repeats=2), None, 3) == [5, 6]


def test_inside_the_band_is_not_a_win_outside_is(hand_run, tmp_path: Path) -> None:
    rd, exp, df = hand_run
    warnings: list[str] = []
    lines = update_variants(rd, exp, df, measure_missing=False, warnings=warnings)
    assert "trial 4" in lines["s"] and "trial 5" in lines["m"]
    # higher mean AP than yolo_nas_pose_s, but inside the noise band: no win claimed
    assert "not distinguishable at this fidelity vs yolo_nas_pose_s" in lines["s"]
    assert "beats" not in lines["s"]
    # outside the band and faster beyond the latency noise: it beats yolo_nas_pose_m
    assert "beats yolo_nas_pose_m" in lines["m"]
    claims = rd.meta()["variant_claims"]
    assert claims["s"]["verdict"] == "not distinguishable"
    assert claims["m"]["verdict"] == "beats"
    assert claims["m"]["ap_band"] == pytest.approx(1.96 * 0.02 * (1 + 1 / math.sqrt(3)))
    assert warnings == []  # references ordered, every measurement stable

    report = build_report([rd.path], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    table = {line.split("|")[1].strip(): line for line in md.splitlines()
             if line.startswith("| ") and line.split("|")[1].strip() in "nsml"}
    assert "not distinguishable at this fidelity vs yolo_nas_pose_s" in table["s"]
    assert "beats yolo_nas_pose_m" in table["m"]
    assert "seed sd of AP 0.0200" in md and "smallest AP difference told apart 0.0784" in md
    front = report.runs[0].front
    assert "ap_ci" in front.columns and front["ap_ci"].notna().all()


def test_without_repeats_nothing_is_claimed(tmp_path: Path, tiny) -> None:
    exp = load_experiment(tiny("plain"))
    band = noise_band(pd.DataFrame({"status": ["COMPLETE"], "ap_seeds": ["[0.3]"]}), 1)
    assert band.seed_sd is None and band.min_ap_diff is None
    c = claim(0.9, 1, 1.0, 0.01, 0.1, 1, 9.0, 0.01, band, "ref")
    assert c.verdict == "not distinguishable" and "seed noise not measured" in c.text
    assert run_noise(pd.DataFrame(), exp).source == "none"


def test_latency_must_be_lower_beyond_its_noise() -> None:
    band = NoiseBand(seed_sd=0.01, dof=10, trials=5)
    assert claim(0.5, 1, 4.0, 0.02, 0.1, 1, 5.0, 0.02, band).verdict == "beats"
    # the same AP gain, but 4.0 ms with cv 0.15 is not below 5.0 ms with cv 0.1
    c = claim(0.5, 1, 4.0, 0.15, 0.1, 1, 5.0, 0.10, band)
    assert c.verdict == "not distinguishable" and "latency" in c.text
    assert claim(0.1, 1, 4.0, 0.02, 0.5, 1, 5.0, 0.02, band).verdict == "below"


def test_front_members_with_overlapping_intervals_are_ties() -> None:
    band = NoiseBand(seed_sd=0.01, dof=10, trials=5, z=2.0)  # half-width 0.02 with 1 seed
    front = pd.DataFrame({"number": [1, 2, 3], "ap": [0.30, 0.27, 0.20],
                          "latency_ms": [5.0, 4.0, 3.0], "repeats": [1, 1, 4]})
    out = mark_ties(front, band)
    ties = [v if isinstance(v, str) else None for v in out["tied_with"]]
    assert ties == ["2", "1", None]  # 0.03 < 0.04; 0.07 > 0.02 + 0.01
    assert out["ap_ci"].tolist() == pytest.approx([0.02, 0.02, 0.01])
    unknown = mark_ties(front, NoiseBand(None, 0, 0))
    assert unknown["tied_with"].isna().all() and unknown["ap_ci"].isna().all()


def test_reference_latencies_out_of_order_are_remeasured_then_reported() -> None:
    def info() -> dict:
        return {"r_m": {"latency_ms": 25.03, "cv": 0.574, "params": 2, "stable": False},
                "r_l": {"latency_ms": 14.93, "cv": 0.32, "params": 3, "stable": False}}

    assert out_of_order(info()) == [("r_m", "r_l")]
    asked: list[str] = []
    settled = {"r_m": 9.0, "r_l": 12.0}

    def remeasure(name: str) -> dict:
        asked.append(name)
        return {"latency_ms": settled[name], "cv": 0.03, "stable": True}

    warnings: list[str] = []
    fixed = settle_reference_order(info(), remeasure, warnings)
    assert sorted(asked) == ["r_l", "r_m"] and warnings == []
    assert fixed["r_m"]["source"] == "re-measured" and fixed["r_m"]["first_latency_ms"] == 25.03
    # still out of order after re-measuring: one loud warning naming both
    settled.update(r_m=20.0, r_l=15.0)
    warnings = []
    settle_reference_order(info(), remeasure, warnings)
    assert len(warnings) == 1 and "r_l" in warnings[0] and "r_m" in warnings[0]
    warnings = []
    settle_reference_order(info(), None, warnings)
    assert "not re-measured" in warnings[0]


@pytest.mark.slow
def test_a_trial_trains_once_per_seed(tmp_path: Path, tiny) -> None:
    from evaluators.synth import make_synthetic
    from nas.search import trial_settings
    from nas.trial import evaluate_candidate

    exp = load_experiment(tiny("seeds", fidelity={"epochs": 1, "image_size": 64, "batch": 4,
                                                  "seed": 7, "repeats": 2},
                               noise={"reference_repeats": 3}))
    data = make_synthetic(tmp_path / "data", "pose", images=8, image_size=64, seed=0)
    settings = trial_settings(exp, str(data), tmp_path / "cache")
    spec = exp.space_object().reference_specs()["yolo_nas_pose_n"]
    seen: list[int] = []

    def report(metrics: dict) -> None:  # only the main run (seed 7) reports per epoch
        if "epoch" in metrics:
            seen.append(metrics["seed"])

    for reference, k in ((None, 2), ("yolo_nas_pose_n", 3)):
        config = {"number": 0, "params": {}, "arch": spec.to_dict(), "arch_id": spec.arch_id,
                  "reference": reference, "session": 1, "settings": settings}
        rec = evaluate_candidate(config, report)
        assert rec["status"] == "COMPLETE" and rec["repeats"] == k and rec["seed"] == 7
        assert len(json.loads(rec["ap_seeds"])) == k
        assert rec["ap"] == pytest.approx(sum(json.loads(rec["ap_seeds"])) / k, abs=1e-6)
        assert rec["threads"] == 1 and rec["train_loss"] is not None
    assert seen == [7, 7]
