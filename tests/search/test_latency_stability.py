"""Must show: an unstable latency measurement is re-measured and flagged (noise injected).

The noise is injected into the real timing loop (`evaluators.latency.measure._time_round`):
one pass of a round is made 50x slower, which sends that round's CV far over any threshold.
Everything else (the fused model, the harness, the trial, its row) is real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import evaluators.latency.measure as measure_mod
from nas.experiment import LatencySection, load_experiment
from nas.progress import fmt_trial
from nas.search import trial_settings
from nas.targets import cv_threshold, latency_fields, measure
from nas.trial import evaluate_candidate


def _inject(monkeypatch: pytest.MonkeyPatch, noisy_rounds: int) -> list[float]:
    """Make the first ``noisy_rounds`` timed rounds noisy; returns the CV of every round."""
    real = measure_mod._time_round
    cvs: list[float] = []

    def noisy(runner: Any, iters: int) -> list[float]:
        times = real(runner, iters)
        if len(cvs) < noisy_rounds:
            times[len(times) // 2] *= 50.0  # one pass hit by a burst of load
        cvs.append(measure_mod.summarize(times).cv)
        return times

    monkeypatch.setattr(measure_mod, "_time_round", noisy)
    return cvs


def _latency(tiny, **changes: Any) -> LatencySection:
    exp = load_experiment(tiny("lat", latency={"image_size": 64, "warmup": 1, "iters": 10,
                                                **changes}))
    return trial_settings(exp, "unused", Path("unused")).primary_latency


def test_defaults_are_005_on_gpu_and_010_on_cpu(tiny) -> None:
    assert cv_threshold(_latency(tiny)) == pytest.approx(0.10)
    assert cv_threshold(LatencySection(device="cuda")) == pytest.approx(0.05)
    assert cv_threshold(_latency(tiny, cv_threshold=0.2)) == pytest.approx(0.2)


def test_a_noisy_round_is_measured_again(monkeypatch, tmp_path: Path, tiny) -> None:
    cvs = _inject(monkeypatch, noisy_rounds=1)
    # generous, so real rounds settle even on a busy machine; one pass x50 gives cv ~2.5
    lat = _latency(tiny, cv_threshold=1.0, max_repeats=3)
    spec = load_experiment(tiny("x")).space_object().reference_specs()["yolo_nas_pose_n"]
    result = measure(spec, lat, str(tmp_path / "cache"))
    assert cvs[0] > 1.0  # the injected round was over the threshold ...
    assert result.repeats == len(cvs) >= 2 and result.stable  # ... and measured again
    assert result.cv == pytest.approx(min(cvs))  # the steadiest round is kept
    assert latency_fields(result)["latency_stable"] is True


@pytest.mark.slow
def test_a_measurement_that_never_settles_is_flagged(monkeypatch, tmp_path: Path,
                                                     tiny) -> None:
    cvs = _inject(monkeypatch, noisy_rounds=99)
    exp = load_experiment(tiny("flag", latency={"image_size": 64, "warmup": 1, "iters": 10,
                                                "max_repeats": 3}))
    from evaluators.synth import make_synthetic

    data = make_synthetic(tmp_path / "data", "pose", images=8, image_size=64, seed=0)
    settings = trial_settings(exp, str(data), tmp_path / "cache")
    spec = exp.space_object().reference_specs()["yolo_nas_pose_n"]
    config = {"number": 0, "params": {}, "arch": spec.to_dict(), "arch_id": spec.arch_id,
              "reference": "yolo_nas_pose_n", "session": 1, "settings": settings}
    rec = evaluate_candidate(config, lambda _m: None)
    assert len(cvs) == 3 and all(cv > 0.10 for cv in cvs)  # re-measured up to max_repeats
    assert rec["status"] == "COMPLETE"
    assert rec["latency_stable"] is False and rec["lat_repeats"] == 3
    assert rec["lat_cv"] == pytest.approx(min(cvs), rel=1e-4)
    assert "UNSTABLE" in fmt_trial(rec) and "cv " in fmt_trial(rec)  # the console line says so
