"""A real two-node Ray cluster on this machine, for the cluster tests and docs/cluster.md.

Each node is started by ``ray start`` in a session of its own (``setsid``) with a private temp
dir and ports chosen free at run time, so several clusters (other test runs, other users) can
share the machine. Teardown kills exactly the processes of those sessions, never by name
(``ray stop`` would stop every Ray of this user).

    python tests/cluster/_two_nodes.py up DIR     # prints the addresses; leaves it running
    python tests/cluster/_two_nodes.py down DIR   # kills what `up` started
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
# The same bindings as experiments/cluster/t4-cluster.yaml's head (tests/cluster checks both).
DASHBOARD_HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free right now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TwoNodes:
    """Head (``head_cpus`` CPUs, dashboard on 127.0.0.1) and one worker node (``worker_cpus``
    CPUs and the custom resource ``{"worker_node": 1}``) under ``root``."""

    root: Path
    head_cpus: int = 1
    worker_cpus: int = 1
    dashboard: bool = True
    private: Path | None = None  # a folder the worker node does not see (own mount namespace)
    env: dict[str, str] = field(default_factory=dict)
    sids: list[int] = field(default_factory=list)
    gcs_port: int = 0
    dashboard_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{DASHBOARD_HOST}:{self.dashboard_port}"

    def environ(self) -> dict[str, str]:
        """The environment of every Ray process of this cluster (and of its clients)."""
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        env.update(RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
                   # a lost node is noticed in ~3 s, not the default ~30 s
                   RAY_health_check_period_ms="1000", RAY_health_check_timeout_ms="1000",
                   RAY_health_check_failure_threshold="3")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.env)
        return env

    def _start(self, args: list[str], log: str, private: Path | None = None) -> None:
        cmd = [RAY, "start", *args]
        if private is not None:  # an empty tmpfs over `private`, seen by this node only
            private.mkdir(parents=True, exist_ok=True)
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs opennac-private "$0" && exec "$@"', str(private), *cmd]
        with open(self.root / log, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    env=self.environ(), start_new_session=True)
            self.sids.append(proc.pid)  # its session id: every daemon it starts keeps it
            if proc.wait(timeout=120) != 0:
                raise RuntimeError(f"ray start failed: {(self.root / log).read_text()[-2000:]}")

    def start(self) -> TwoNodes:
        try:
            return self._start_nodes()
        except BaseException:
            self.stop()
            raise

    def _start_nodes(self) -> TwoNodes:
        self.root.mkdir(parents=True, exist_ok=True)
        if "RAY_AUTH_TOKEN" not in self.env:  # token authentication, as the cluster recipe
            self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        common = ["--disable-usage-stats", "--include-log-monitor=false"]
        self._start([
            "--head", f"--port={self.gcs_port}", "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.root / 'head'}", f"--num-cpus={self.head_cpus}", "--num-gpus=0",
            f"--include-dashboard={str(self.dashboard).lower()}",
            f"--dashboard-host={DASHBOARD_HOST}", f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}", *common,
        ], "head.log")
        self._start([
            f"--address={self.address}", "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.root / 'worker'}", f"--num-cpus={self.worker_cpus}",
            "--num-gpus=0", '--resources={"worker_node": 1}',
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}", *common,
        ], "worker.log", self.private)
        (self.root / "cluster.json").write_text(json.dumps(
            {"address": self.address, "dashboard": self.dashboard_url, "sids": self.sids,
             "env": self.env}))
        return self

    def processes(self, which: int | None = None) -> list[psutil.Process]:
        """Live processes of this cluster (``which``: 0 head, 1 worker; None: both)."""
        sids = set(self.sids if which is None else self.sids[which:which + 1])
        found = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) in sids and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except (ProcessLookupError, psutil.Error, PermissionError):
                continue
        return found

    def raylet(self, which: int) -> psutil.Process:
        """The raylet of the head (0) or of the worker node (1)."""
        for p in self.processes(which):
            try:
                if p.name() == "raylet":
                    return p
            except psutil.Error:
                continue
        raise LookupError(f"no raylet in session {self.sids[which]}")

    def trial_workers(self, which: int) -> list[psutil.Process]:
        """Ray worker processes of a node that run a Tune trial (title ``ray::...``)."""
        busy = []
        for p in self.processes(which):
            try:
                title = " ".join(p.cmdline())
            except psutil.Error:
                continue
            if title.startswith("ray::") and "IDLE" not in title and "Func" in title:
                busy.append(p)
        return busy

    def stop(self) -> None:
        """SIGKILL every process of the clusters' sessions (ours only); waits for them."""
        for _ in range(3):
            procs = self.processes()
            if not procs:
                return
            for p in procs:
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.Error:
                    pass
            psutil.wait_procs(procs, timeout=10)
            time.sleep(0.2)


def can_unshare() -> bool:
    """Whether this process may give a node its own mount namespace (root, CAP_SYS_ADMIN)."""
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main(argv: list[str]) -> int:
    """``up DIR`` / ``down DIR`` (see the module docstring)."""
    action, root = argv[0], Path(argv[1])
    if action == "up":
        TwoNodes(root).start()
        print((root / "cluster.json").read_text())
        return 0
    info = json.loads((root / "cluster.json").read_text())
    TwoNodes(root, sids=info["sids"]).stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
