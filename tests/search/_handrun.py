"""A run directory written by hand: the references and two candidates with known APs.

The trials table and the frozen files are real (the space's own architectures); only the
scores are chosen, so that tests know which variant is inside or outside the noise band.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from models.archfile import save_arch
from nas.experiment import load_experiment
from nas.rundir import RunDir

# Reference points: three seeds each, sd 0.02 each (pooled sd 0.02, 8 dof).
REFS = {
    "yolo_nas_pose_n": ([0.10, 0.12, 0.14], 2.0),
    "yolo_nas_pose_s": ([0.15, 0.17, 0.19], 4.0),
    "yolo_nas_pose_m": ([0.20, 0.22, 0.24], 8.0),
    "yolo_nas_pose_l": ([0.25, 0.27, 0.29], 12.0),
}
# Candidates, one seed each: half-widths 1.96*0.02 (1 seed) + 1.96*0.02/sqrt(3) = 0.0618.
INSIDE = (0.22, 3.0)  # vs s (0.17): +0.05 < 0.0618 -> not distinguishable
OUTSIDE = (0.32, 6.0)  # vs m (0.22): +0.10 > 0.0618 and 6 ms << 8 ms -> beats


def _row(number: int, spec: Any, aps: list[float], ms: float, reference: str | None,
         rd: RunDir) -> dict[str, Any]:
    path = save_arch(spec, rd.arch_path(spec.arch_id))
    return {
        "number": number, "status": "COMPLETE", "arch_id": spec.arch_id,
        "ap": statistics.fmean(aps), "ap_seeds": json.dumps(aps), "repeats": len(aps),
        "ap_sd": statistics.stdev(aps) if len(aps) > 1 else None,
        "latency_ms": ms, "lat_cv": 0.02, "latency_stable": True, "params": 1,
        "epochs": 30, "epochs_done": 30, "full_fidelity": True, "feasible": True,
        "reference": reference, "arch_file": str(path.relative_to(rd.path)),
    }  # fmt: skip


def make_hand_run(tmp_path: Path, experiment: dict[str, Any],
                  refs: dict[str, tuple[list[float], float]] | None = None) -> tuple:
    """(RunDir, Experiment, trials DataFrame) of a finished-looking run in tmp_path/run."""
    exp = load_experiment(experiment)
    rd = RunDir.create(tmp_path / "run", exp.name)
    (rd.path / "experiment.yaml").write_text(json.dumps(exp.to_dict()))
    space = exp.space_object()
    specs = space.reference_specs()
    rows = [_row(i, specs[name], aps, ms, name, rd)
            for i, (name, (aps, ms)) in enumerate((refs or REFS).items())]
    rows.append(_row(4, space.sample_random(1), [INSIDE[0]], INSIDE[1], None, rd))
    rows.append(_row(5, space.sample_random(2), [OUTSIDE[0]], OUTSIDE[1], None, rd))
    rd.update_meta(status="finished")
    return rd, exp, rd.write_trials(rows)
