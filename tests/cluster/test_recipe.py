"""The cluster recipe as shipped: experiments/cluster/t4-cluster.yaml passes Ray's own cluster
config validation, binds nothing Ray does not need between nodes to all interfaces, uses
token authentication, and installs the Ray the driver is tested with; experiment names and
the Ray address resolve as docs/cluster.md says; resources.max_retries is checked at load."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from _tiny import tiny_experiment
from _two_nodes import DASHBOARD_HOST

from nas.cluster import resolve_address
from nas.experiment import ExperimentError, find_experiment, load_experiment

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "experiments" / "cluster" / "t4-cluster.yaml"


def _launcher() -> dict[str, Any]:
    return yaml.safe_load(LAUNCHER.read_text())


def _commands(cfg: dict[str, Any]) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands",
            "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")
    return [str(c) for k in keys for c in cfg.get(k) or []]


def test_launcher_passes_rays_validation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(_launcher()))  # raises on any schema error


def test_launcher_binds_nothing_public_but_ray_itself() -> None:
    cfg = _launcher()
    text = " ".join(_commands(cfg))
    # no service of ours, and no optional Ray one, on every interface
    assert not re.search(r"0\.0\.0\.0|(?<![\w:])::(?![\w:])|\[::\]", text), text
    assert "--ray-debugger-external" not in text
    (head,) = [c for c in cfg["head_start_ray_commands"] if "ray start" in c]
    args = shlex.split(head)
    assert f"--dashboard-host={DASHBOARD_HOST}" in args  # the Jobs API: head's localhost only
    assert DASHBOARD_HOST == "127.0.0.1"  # and the local two-node tests bind the same


def test_launcher_uses_token_authentication() -> None:
    cfg = _launcher()
    starts = [c for k in ("head_start_ray_commands", "worker_start_ray_commands")
              for c in cfg[k] if "ray start" in c]
    assert len(starts) == 2
    for cmd in starts:
        assert shlex.split(cmd)[0] == "RAY_AUTH_MODE=token", cmd
    # the token created by `ray get-auth-token --generate` reaches every node, readable by its
    # owner only
    assert cfg["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
    assert "chmod 600 ~/.ray/auth_token" in _commands(cfg)


def test_nodes_install_the_drivers_ray() -> None:
    pins = re.findall(r"ray\[([a-z,]+)\]==([\w.]+)", " ".join(_commands(_launcher())))
    assert pins, "no pinned ray[...]==VERSION in the setup commands"
    for extras, version in pins:
        assert {"default", "tune"} <= set(extras.split(","))  # dashboard + Jobs API + Tune
        assert version == ray.__version__, (
            f"{LAUNCHER.name} pins Ray {version}, the tests run Ray {ray.__version__}: "
            f"update the pin (all nodes and the driver need the same Ray)"
        )
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "ray[default,tune]" in cfg["options.extras_require"]["cluster"]


def test_experiment_names_resolve_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `ray job submit --working-dir . -- opennac search coco_pose`: the job runs in a copy of
    # the checkout; names are looked up in ./experiments/ there, then in the installed one.
    (tmp_path / "experiments").mkdir()
    own = tmp_path / "experiments" / "mine.yaml"
    own.write_text(yaml.safe_dump(tiny_experiment("mine")))
    monkeypatch.chdir(tmp_path)
    assert find_experiment("mine") == own.resolve()
    assert load_experiment("mine").name == "mine"
    assert find_experiment("coco_pose").name == "coco_pose.yaml"  # shipped, from elsewhere
    with pytest.raises(ExperimentError, match="nope: no such experiment file"):
        find_experiment("nope")


def test_address_resolution() -> None:
    job = {"RAY_ADDRESS": "10.0.0.5:6379"}  # what Ray sets for a job's driver
    assert resolve_address("auto", None, job) == "auto"
    assert resolve_address(None, "ray://head:10001", job) == "ray://head:10001"
    assert resolve_address(None, None, job) == "10.0.0.5:6379"
    # the Jobs API address of a client shell is no cluster to join: a local Ray
    assert resolve_address(None, None, {"RAY_ADDRESS": "http://127.0.0.1:8265"}) is None
    assert resolve_address(None, None, {}) is None


def test_max_retries_checked_at_load() -> None:
    exp = load_experiment(tiny_experiment("r"))
    assert exp.resources.max_retries == 3
    assert load_experiment(tiny_experiment("r", resources={"max_retries": 0})) \
        .resources.max_retries == 0
    for bad, says in ((-1, "expected an integer >= 0, got -1"),
                      (1.5, "expected an integer, got 1.5")):
        with pytest.raises(ExperimentError) as err:
            load_experiment(tiny_experiment("r", resources={"max_retries": bad}))
        assert str(err.value) == f"<experiment>: resources.max_retries: {says}"
