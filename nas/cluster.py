"""What a sweep checks about the Ray cluster it runs on (see docs/cluster.md).

- `resolve_address`: which Ray the driver joins. An explicit ``--address`` or the experiment's
  ``ray.address`` wins; otherwise ``RAY_ADDRESS`` as Ray sets it for the driver of a Ray job
  (``ray job submit -- opennac search ...`` thus joins the cluster it was submitted to); an
  ``http(s)://`` value is the Jobs API of a client shell, not a cluster, and is ignored.
- `check_shared_dirs`: the run directory (and Ray Tune's storage) must be on storage that
  every node sees at the same path. The driver writes a marker file with a random token and a
  zero-CPU task pinned to each alive node reads it back; a node that does not see it stops
  the sweep before any trial with one line naming the path and the node. One node: nothing
  to check.

Example:
    >>> resolve_address(None, None, {"RAY_ADDRESS": "10.0.0.5:6379"})
    '10.0.0.5:6379'
    >>> resolve_address(None, None, {"RAY_ADDRESS": "http://127.0.0.1:8265"}) is None
    True
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MARKER = ".opennac-shared-check"


class ClusterError(RuntimeError):
    """The cluster cannot run this sweep as set up; the message says what to change."""


def resolve_address(
    explicit: str | None, experiment: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The Ray address the driver joins, or None for a Ray of its own (module docstring)."""
    if explicit:
        return explicit
    if experiment:
        return experiment
    env = (os.environ if environ is None else environ).get("RAY_ADDRESS", "").strip()
    if env and not env.startswith(("http://", "https://")):
        return env
    return None


def _read_marker(path: str) -> tuple[str, str | None]:
    """On one node: (node ip, the marker's token or None when the file is not there)."""
    import ray

    ip = ray.util.get_node_ip_address()
    try:
        return ip, Path(path).read_text()
    except OSError:
        return ip, None


def check_shared_dirs(dirs: Iterable[str | Path], timeout_s: float = 120.0) -> int:
    """Check that every alive node of the connected Ray cluster sees each folder of ``dirs``
    (local paths; URIs such as ``s3://`` are skipped). Returns the number of nodes checked;
    raises `ClusterError` naming the first folder a node does not see."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    folders = [Path(d) for d in dirs if "://" not in str(d)]
    if len(nodes) < 2 or not folders:
        return len(nodes)
    read = ray.remote(num_cpus=0, max_retries=0)(_read_marker)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder.resolve() / MARKER
        token = secrets.token_hex(8)
        marker.write_text(token)
        try:
            _check_nodes(read, nodes, marker, token, timeout_s, NodeAffinitySchedulingStrategy)
        finally:
            marker.unlink(missing_ok=True)
    return len(nodes)


def _check_nodes(read: Any, nodes: list[dict[str, Any]], marker: Path, token: str,
                 timeout_s: float, strategy: Any) -> None:
    import ray

    refs = {
        read.options(scheduling_strategy=strategy(n["NodeID"], soft=False)).remote(str(marker)): n
        for n in nodes
    }
    deadline = time.monotonic() + timeout_s
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1,
                                 timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            break
        node = refs[done[0]]
        try:
            ip, seen = ray.get(done[0])
        except Exception:  # noqa: BLE001 - a node that died meanwhile runs no trial
            if _alive(node["NodeID"]):
                raise
            continue
        if seen != token:
            raise ClusterError(
                f"{marker.parent}: not on storage shared by all nodes (node {ip} does not see "
                f"{marker.name} written by the driver); put the run directory (--output) and "
                f"ray.storage_path on a file system mounted at the same path on every node"
            )
    for ref in pending:
        node = refs[ref]
        if _alive(node["NodeID"]):
            raise ClusterError(
                f"{marker.parent}: node {node.get('NodeManagerAddress')} did not answer the "
                f"shared-storage check within {timeout_s:.0f} s"
            )


def _alive(node_id: str) -> bool:
    import ray

    return any(n["NodeID"] == node_id and n.get("Alive") for n in ray.nodes())


__all__ = ["MARKER", "ClusterError", "check_shared_dirs", "resolve_address"]
