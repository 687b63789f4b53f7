"""A real two-node Ray cluster on this machine (``ray start --head`` + ``ray start --address``,
each with its own temp dir, ports and session; token authentication as the cluster recipe).

- a run directory the worker node does not see is refused before any trial, in one line;
- the documented workflow (`ray job submit --working-dir`, the driver joining the cluster by
  itself) runs a sweep over both nodes; the worker node's raylet is SIGKILLed while it runs a
  trial: the sweep completes its budget, no trial is lost or duplicated, and Ray Tune ran the
  interrupted trial again (same trial, same architecture).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from _tiny import tiny_experiment
from _two_nodes import RAY, TwoNodes, can_unshare

OPENNAC = str(Path(RAY).with_name("opennac"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoNodes]:
    root = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))  # short: Ray's socket paths
    nodes = TwoNodes(root, private=root / "private" if can_unshare() else None)
    try:
        yield nodes.start()
    finally:
        nodes.stop()
        shutil.rmtree(root, ignore_errors=True)


def _experiment(folder: Path, name: str, **changes: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exp = tiny_experiment(name, ray={}, **changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def _ray(cluster: TwoNodes, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = cluster.environ()
    env["RAY_ADDRESS"] = cluster.dashboard_url  # the Jobs API, as through `ray dashboard`
    return subprocess.run([RAY, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_jobs_api_on_localhost_and_token_only(cluster: TwoNodes) -> None:
    # bound as experiments/cluster/t4-cluster.yaml binds it: the head's 127.0.0.1 only
    listening = {
        (c.laddr.ip, c.laddr.port)
        for p in cluster.processes(0)
        for c in _listening(p)
    }
    dashboard = {ip for ip, port in listening if port == cluster.dashboard_port}
    assert dashboard == {"127.0.0.1"}, listening
    url = f"{cluster.dashboard_url}/api/jobs/"
    with pytest.raises(urllib.error.HTTPError) as err:  # no token: refused
        urllib.request.urlopen(url, timeout=30)
    assert err.value.code == 401
    token = cluster.env["RAY_AUTH_TOKEN"]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def _listening(proc: Any) -> list[Any]:
    import psutil

    try:
        return [c for c in proc.net_connections(kind="inet") if c.status == "LISTEN"]
    except psutil.Error:
        return []


@pytest.mark.slow
def test_run_dir_not_shared_is_refused(cluster: TwoNodes) -> None:
    if cluster.private is None:
        pytest.skip("needs `unshare --mount` (root) to hide a folder from one node")
    exp = _experiment(cluster.root / "job", "unshared")
    env = cluster.environ()
    proc = subprocess.run(
        [OPENNAC, "search", str(exp), "--output", str(cluster.private), "--address",
         cluster.address, "--quiet"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "not on storage shared by all nodes" in err[0]
    assert str(cluster.private / "unshared") in err[0]
    assert not (cluster.private / "unshared").exists()  # failed before its first trial


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_worker_node_killed_mid_sweep(cluster: TwoNodes) -> None:
    trials = 3
    job = cluster.root / "job"
    _experiment(job / "experiments", "twonodes", budget={"trials": trials, "concurrency": 2})
    shared = cluster.root / "shared"
    sub = _ray(cluster, "job", "submit", "--no-wait", "--submission-id", "twonodes",
               "--working-dir", str(job), "--", "opennac", "search", "twonodes",
               "--output", str(shared))
    assert sub.returncode == 0, sub.stdout + sub.stderr
    t0 = time.monotonic()

    # Wait for a trial to be well under way on the worker node, then SIGKILL its raylet.
    raylet = cluster.raylet(1)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        busy = [p for p in cluster.trial_workers(1) if time.time() - p.create_time() > 3]
        victim = busy[0] if busy else None
        time.sleep(0.2)
    assert victim is not None, "no trial ran on the worker node"
    raylet.send_signal(signal.SIGKILL)
    t_kill = time.monotonic()

    logs = _ray(cluster, "job", "logs", "--follow", "twonodes", timeout=200)
    status = _ray(cluster, "job", "status", "twonodes")
    assert "succeeded" in status.stdout.lower(), logs.stdout[-3000:] + logs.stderr
    print(f"killed at {t_kill - t0:.1f} s, job done at {time.monotonic() - t0:.1f} s")
    print(logs.stdout[-3000:])

    run = shared / "twonodes"
    df = pd.read_parquet(run / "trials.parquet")
    assert sorted(df["number"]) == list(range(trials))  # the budget; nothing lost or repeated
    assert set(df["status"]) == {"COMPLETE"}, df[["number", "status", "error"]]
    assert df["arch_id"].is_unique
    assert json.loads((run / "run.json").read_text())["status"] == "finished"

    # Ray Tune ran the interrupted trial again: the same Ray trial (same config and Optuna
    # number), one failure recorded, and it finished.
    failures = _tune_failures(run)
    assert sum(failures.values()) >= 1, failures
    for number, n in failures.items():
        if n:
            row = df[df["number"] == number].iloc[0]
            assert row["status"] == "COMPLETE" and row["epochs_done"] == row["epochs"]


def _tune_failures(run: Path) -> dict[int, int]:
    """Optuna number -> failures Ray Tune recorded for its trial (experiment state file)."""
    out: dict[int, int] = {}
    for state in sorted((run / "ray").glob("*/experiment_state-*.json")):
        for trial_json, runtime_json in json.loads(state.read_text())["trial_data"]:
            number = int(json.loads(trial_json)["config"]["number"])
            out[number] = out.get(number, 0) + int(json.loads(runtime_json)["num_failures"])
    return out
