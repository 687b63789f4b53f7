"""Proxy benchmark: how far the quickstart's short training can be trusted.

For the quickstart space (experiments/quickstart.yaml, or ``--experiment FILE`` with ``--set
KEY=VALUE`` overrides) it trains ``--archs`` architectures (the scaled released models first,
then random samples) with ``--seeds`` seeds at the experiment's fidelity and ``--long-seeds``
seeds at ``--long-epochs`` (default 3x the experiment's epochs),
with `nas.calibrate.run_calibration` (the search's own trainable, as Ray tasks), and prints per
fidelity the seed sd of AP, the mean AP and the training wall time, then Kendall tau / Spearman
between short and long AP and the fraction of pairs the short run orders right.

Resumable: every training result is kept under ``benchmarks/out/proxy/jobs/`` (git-ignored);
run it again after an interruption and it continues. It is CPU heavy (the quickstart: about 25
min of two cores at the defaults); run it in the background, e.g.

    nohup nice -n 10 .venv/bin/python benchmarks/proxy.py > benchmarks/out/proxy.log 2>&1 &
    .venv/bin/python benchmarks/proxy.py [--archs 12] [--seeds 2] [--long-epochs 15]
        [--long-seeds 2] [--out benchmarks/out/proxy] [--json OUT]

``--start scratch,inherit,distill`` also scores the short runs warm-started (`nas.parent`):
``inherit`` from a parent (``--parent-arch``, a reference point of the space, trained once for
``--parent-epochs`` into the output folder), ``distill`` inheriting from it and taught by it
(``--distill-weight``). The long runs, from scratch, are the ground truth for every start and
are shared. Each start gets its table rows and its rank agreement with the long runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the packages, not benchmarks/models.py, are `models`


def experiment_for(start: str, args: argparse.Namespace) -> dict[str, Any]:
    """The quickstart experiment with the short runs started as ``start`` says."""
    import yaml

    doc = yaml.safe_load(Path(args.experiment).read_text())
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set: expected KEY=VALUE (dotted key), got {item!r}")
        node = doc
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SystemExit(f"--set {item}: {part!r} is not a mapping in {args.experiment}")
        node[leaf] = yaml.safe_load(value)
    if start != "scratch":
        if args.parent_arch is None:  # the largest released model of the experiment's space
            from nas.experiment import load_experiment

            names = list(load_experiment(doc).space_object().reference_points())
            args.parent_arch = names[-1]
        doc["fidelity"]["init"] = {"parent": "train", "arch": args.parent_arch,
                                   "epochs": args.parent_epochs}
    if start == "distill":
        doc["fidelity"]["distill"] = {"weight": args.distill_weight, "temperature": 1.0}
    return doc


def table(cal: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per fidelity: runs, seed sd of AP, mean AP, training wall time (mean per run,
    the fastest run: on a shared machine the fastest is the closest to an idle one, and
    total)."""
    rows = []
    for kind, epochs, seeds in (("short", cal["short_epochs"], cal["seeds"]),
                                ("long", cal["long_epochs"], cal["long_seeds"])):
        aps = [ap for a in cal["per_arch"] for ap in a[f"{kind}_aps"]]
        times = [t for a in cal["per_arch"] for t in a.get(f"{kind}_train_s") or [] if t]
        runs = cal[f"runs_{kind}"]
        train = cal[f"train_s_{kind}"]
        rows.append({
            "start": cal.get("start", "scratch") if kind == "short" else "scratch",
            "fidelity": f"{kind} ({epochs} epochs)",
            "archs": sum(1 for a in cal["per_arch"] if a[f"{kind}_aps"]),
            "seeds": seeds,
            "runs": runs,
            "seed_sd_ap": cal[f"seed_sd_{kind}"],
            "dof": cal[f"seed_dof_{kind}"],
            "mean_ap": round(statistics.fmean(aps), 4) if aps else None,
            "train_s_per_run": round(train / runs, 1) if runs else None,
            "train_s_fastest": round(min(times), 1) if times else None,
            "train_s_total": train,
        })  # fmt: skip
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "quickstart.yaml"),
                    help="the experiment whose space, data and fidelity are measured")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a key of the experiment (dotted, YAML value), e.g. "
                         "--set fidelity.epochs=10 --set data.synthetic.images=400; repeatable")
    ap.add_argument("--archs", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--long-epochs", type=int, default=None, help="default: 3x the quickstart's")
    ap.add_argument("--long-seeds", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "proxy"))
    ap.add_argument("--json", default=None, help="also write the calibration summary here")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: the table of the trainings finished so far")
    ap.add_argument("--start", default="scratch",
                    help="comma-separated: scratch, inherit, distill (default: scratch)")
    ap.add_argument("--parent-arch", default=None,
                    help="the parent: a reference point of the experiment's space (default: "
                         "its last, the largest released model)")
    ap.add_argument("--parent-epochs", type=int, default=60)
    ap.add_argument("--distill-weight", type=float, default=1.0)
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from nas.calibrate import run_calibration, summary

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    cals = {}
    for start in args.start.split(","):
        if start not in ("scratch", "inherit", "distill"):
            ap.error(f"--start: expected scratch, inherit or distill, got {start!r}")
        cals[start] = run_calibration(
            experiment_for(start, args), args.out, archs=args.archs, seeds=args.seeds,
            long_epochs=args.long_epochs, long_seeds=args.long_seeds,
            train=not args.report_only,
        )  # fmt: skip
    wall = time.perf_counter() - t0
    first = next(iter(cals.values()))
    print(f"\nproxy benchmark, quickstart space ({first['archs']} archs; this session "
          f"{wall:.0f} s, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}):\n")
    rows = [r for i, cal in enumerate(cals.values()) for r in table(cal)
            if i == 0 or r["fidelity"].startswith("short")]  # the long runs once
    print_table(rows)
    print()
    for start, cal in cals.items():
        if cal.get("missing"):
            print(f"({start}: {cal['missing']} trainings not finished yet: partial results)")
        print(f"{start}: short vs long: Kendall tau {cal['kendall_tau']}, Spearman "
              f"{cal['spearman']}, pairs ordered right {cal['pairs_correct']} of {cal['pairs']}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: summary(c) for k, c in cals.items()},
                                              indent=1) + "\n")


if __name__ == "__main__":
    main()
