"""CPU latency measurements never overlap this machine's trainings (two real processes)."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from evaluators.latency.quiet import QuietCpu
from nas.experiment import LatencySection
from nas.targets import quiet_cpu

pytest.importorskip("fcntl")


def _train(lock_dir: str, epochs: int, epoch_s: float, out: mp.Queue) -> None:
    quiet = QuietCpu(lock_dir)
    windows = []
    with quiet.training() as slot:
        for _ in range(epochs):
            start = time.time()
            time.sleep(epoch_s)  # one "epoch" of work, inside the shared slot
            windows.append((start, time.time()))
            slot.breathe()
    out.put(windows)


def _measure(lock_dir: str, delay: float, out: mp.Queue) -> None:
    time.sleep(delay)
    quiet = QuietCpu(lock_dir)
    asked = time.time()
    with quiet.measuring():
        start = time.time()
        time.sleep(0.3)
        out.put((asked, start, time.time()))


def test_measurement_waits_for_an_epoch_boundary_and_trainings_pause(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    q_train, q_meas = ctx.Queue(), ctx.Queue()
    trainers = [ctx.Process(target=_train, args=(str(tmp_path), 8, 0.15, q_train))
                for _ in range(2)]
    for p in trainers:
        p.start()
    meas = ctx.Process(target=_measure, args=(str(tmp_path), 0.4, q_meas))
    meas.start()
    windows = [w for _ in trainers for w in q_train.get(timeout=30)]
    asked, start, end = q_meas.get(timeout=30)
    for p in [*trainers, meas]:
        p.join(timeout=30)
    # no training epoch overlaps the measurement window
    assert all(e <= start + 1e-3 or s >= end - 1e-3 for s, e in windows), (windows, start, end)
    # the measurement waited about one epoch at most (not for the whole trainings)
    assert start - asked < 0.15 * 2 + 0.25
    # and the trainings went on after it
    assert any(s >= end - 1e-3 for s, _ in windows)


def test_quiet_cpu_setting(tmp_path: Path) -> None:
    assert quiet_cpu(LatencySection(device="cpu"), tmp_path).room.parent == tmp_path
    assert quiet_cpu(LatencySection(device="cuda")) is None
    assert quiet_cpu(LatencySection(device="cpu", exclusive=False)) is None
    assert quiet_cpu(LatencySection(device="cuda", exclusive=True), tmp_path) is not None
