"""Faults benchmark: a tiny sweep hit by one fault, then resumed; what was lost or repeated.

Each row: a fresh run directory, `opennac search` (a separate driver process, on one local Ray
started here) with a fault injected, then `opennac resume` until the sweep finishes. Driver
kills are real SIGKILLs at the `nas.faults` points (``OPENNAC_FAULT``); the worker kill sends
SIGKILL to the process of a running trial (a Ray actor, found among this benchmark's own
descendants) once a trial has trained an epoch.

Columns: sessions run; trials lost (budget minus COMPLETE trials at the end); duplicated (a
number or an architecture twice in the table); epochs retrained (epochs reported twice for
the same trial, from ``OPENNAC_EPOCH_LOG``; a partial epoch cut by a kill is not counted);
trials resumed from a checkpoint; wall time of all sessions (driver start-ups included).

    python benchmarks/faults.py [--epochs 2] [--trials 3] [--only sample,train]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

SPACE = {"name": "yolo_nas_pose", "width_scale": 0.25}


def experiment(name: str, epochs: int, trials: int) -> dict[str, Any]:
    return {
        "name": name, "task": "pose", "space": SPACE, "seed_references": False,
        "data": {"synthetic": {"images": 8, "image_size": 64, "seed": 0}},
        "fidelity": {"epochs": epochs, "image_size": 64, "batch": 4, "seed": 0},
        "latency": {"image_size": 64, "warmup": 1, "iters": 5},
        "sampler": {"type": "random", "seed": 0},
        "budget": {"trials": trials, "concurrency": 2},
    }  # fmt: skip


def _env(fault: str | None, log: Path) -> dict[str, str]:
    env = dict(os.environ, OPENNAC_EPOCH_LOG=str(log))
    env.pop("OPENNAC_FAULT", None)
    if fault:
        env["OPENNAC_FAULT"] = fault
    return env


def _cmd(args: list[str], address: str) -> list[str]:
    return [sys.executable, "-m", "nas", *args, "--address", address, "--quiet"]


def _trial_workers() -> list[Any]:
    """Processes of running trials (Ray actors of the trainable) under this process."""
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            title = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "ray::" in title and ("ImplicitFunc" in title or "run_trial" in title):
            out.append(p)
    return out


def scenario(name: str, fault: str | None, root: Path, address: str, epochs: int,
             trials: int) -> dict[str, Any]:
    import pandas as pd

    folder = root / name
    folder.mkdir()
    exp_file = folder / "exp.yaml"
    exp_file.write_text(yaml.safe_dump(experiment("run", epochs, trials)))
    log = folder / "epochs.log"
    run = folder / "run"
    t0 = time.monotonic()
    sessions = 1
    search = _cmd(["search", str(exp_file), "--output", str(folder)], address)
    if fault == "worker":
        proc = subprocess.Popen(search, env=_env(None, log), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        killed = None
        while proc.poll() is None and killed is None:
            time.sleep(0.2)
            if log.exists() and log.read_text().strip():
                workers = _trial_workers()
                if workers:
                    killed = workers[0].pid
                    os.kill(killed, 9)
        proc.wait(timeout=600)
    else:
        subprocess.run(search, env=_env(fault, log), capture_output=True, timeout=600)
    import json

    for _ in range(3):  # resume until finished
        status = json.loads((run / "run.json").read_text()).get("status")
        if status == "finished":
            break
        sessions += 1
        subprocess.run(_cmd(["resume", str(run)], address), env=_env(None, log),
                       capture_output=True, timeout=600)
    wall = time.monotonic() - t0
    df = pd.read_parquet(run / "trials.parquet")
    lines = [tuple(line.split()) for line in log.read_text().split("\n") if line.strip()]
    counts = Counter(lines)
    resumed = df["resumed_from_epoch"].notna().sum() if "resumed_from_epoch" in df else 0
    return {
        "fault": name,
        "sessions": sessions,
        "trials_lost": trials - int((df["status"] == "COMPLETE").sum()),
        "duplicated": int(len(df) - df["number"].nunique() + len(df) - df["arch_id"].nunique()),
        "epochs_retrained": int(sum(n - 1 for n in counts.values())),
        "resumed": int(resumed),
        "statuses": ",".join(f"{k}:{v}" for k, v in df["status"].value_counts().items()),
        "failures": ",".join(str(x) for x in df["failure"].dropna()) if "failure" in df else "",
        "wall_s": round(wall, 1),
    }


SCENARIOS = {
    "none": None,
    "driver kill during sampling": "sample:1:5",
    "driver kill during training": "train:1:1",
    "driver kill during result write": "write:1",
    "driver kill before table write": "table:1",
    "worker process SIGKILL": "worker",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated words picking scenarios")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    address = ray.get_runtime_context().gcs_address
    rows = []
    words = [w for w in args.only.split(",") if w]
    try:
        with tempfile.TemporaryDirectory(prefix="opennac-faults-") as tmp:
            for name, fault in SCENARIOS.items():
                if words and not any(w in name for w in words):
                    continue
                rows.append(scenario(name.replace(" ", "_"), fault, Path(tmp), address,
                                     args.epochs, args.trials))
                print(rows[-1], flush=True)
    finally:
        ray.shutdown()
    print(f"\n{args.trials} trials x {args.epochs} epochs, 2 at a time, tiny pose space, CPU")
    cols = list(rows[0]) if rows else []
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
