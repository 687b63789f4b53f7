"""Build the search-efficiency table: N architectures of an experiment's space, trained and
measured once (`nas.benchtable` describes the file; benchmarks/sampler.py replays searches on it).

The architectures: the space's reference points first, then distinct random draws
(`SearchSpace.sample_random`, seeds 0, 1, ...), so the table covers the space uniformly and a
replay answers a sampler's proposal with its nearest row. Each is trained ``--repeats`` times
(seeds ``fidelity.seed``, +1, ...) at the experiment's fidelity and data, with the search's own
trainable as Ray tasks (`nas.calibrate.train_archs`: ``budget.concurrency`` at a time); its
latency is measured on the experiment's primary latency target (fused model, the target's
image size, precision and backend) before any training runs; its zero-cost proxy scores
(`evaluators.zerocost`) are added.

Resumable: every finished training is kept in ``--work`` (``jobs/``) and every latency and
proxy score in ``--work``/``measured.json``; run it again after a kill and it continues (a kill
loses at most the trainings that were running). A work folder made with other settings is
refused. The table is written at the end (``--report-only``: from what is finished).

    nohup nice -n 19 .venv/bin/python benchmarks/build_table.py > benchmarks/out/table.log 2>&1 &
    .venv/bin/python benchmarks/build_table.py [--experiment experiments/sampler_bench.yaml]
        [--archs 150] [--repeats 2] [--out benchmarks/data/sampler_table.csv]
        [--work benchmarks/out/sampler_table] [--report-only]

The default experiment, experiments/sampler_bench.yaml, is the quickstart's space and sampler on
a harder synthetic set (``crowd``) at 8 epochs, where AP carries architecture signal; its full
table is about 150 x 2 x 30 s of training at concurrency 2 on two cores (about 75 min), after
about 20 min of latency and zero-cost measurements. ``--experiment experiments/quickstart.yaml
--out benchmarks/data/quickstart_table.csv --work benchmarks/out/table`` built the quickstart's
own table (5 epochs, plain shapes: about 70 min). On a GPU machine set ``resources.gpu`` in a
copy of the experiment.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the packages, not benchmarks/models.py, are `models`


def candidates(exp: Any, n: int) -> list[dict[str, Any]]:
    """``n`` distinct architectures ``{label, arch_id, spec, space_params}``: reference points
    first, then random draws."""
    from search_spaces import RandomTrial

    space = exp.space_object()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, params in space.reference_points().items():
        spec = space.replay(params)
        if len(out) < n and spec.arch_id not in seen:
            seen.add(spec.arch_id)
            out.append({"label": name, "arch_id": spec.arch_id, "spec": spec,
                        "space_params": dict(params)})
    seed = 0
    while len(out) < n and seed < 50 * n:
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        seed += 1
        if spec.arch_id not in seen:
            seen.add(spec.arch_id)
            out.append({"label": "", "arch_id": spec.arch_id, "spec": spec,
                        "space_params": dict(trial.params)})
    return out


def settings_of(exp: Any, repeats: int) -> dict[str, Any]:
    """The header's settings: what the AP and latency of every row were measured with."""
    from evaluators.latency import device_name
    from nas.rundir import code_version, now_iso

    fid = dataclasses.asdict(exp.fidelity)
    lat = exp.latency
    return {
        "experiment": exp.name, "source": exp.source, "task": exp.task,
        "space": {"name": exp.space.name, **exp.space.overrides},
        "data": dataclasses.asdict(exp.data),
        "fidelity": {k: fid[k] for k in ("epochs", "image_size", "batch", "train_images",
                                         "val_images", "lr", "seed", "threads", "recipe")},
        "train_device": "cuda" if exp.resources.gpu > 0 else "cpu",
        "repeats": repeats,
        "latency": {"device": lat.device, "device_name": device_name(lat.device),
                    "backend": lat.backend, "precision": lat.precision, "batch": lat.batch,
                    "image_size": lat.image_size},
        "objectives": dict(exp.objectives),
        "lookup": "1-nearest neighbour, L1 over the normalised encoding (nas.benchtable)",
        "code_version": code_version(), "created": now_iso(),
    }  # fmt: skip


def measure(exp: Any, cands: list[dict[str, Any]], work: Path) -> dict[str, dict[str, Any]]:
    """Latency (primary target) and zero-cost scores per arch, kept in ``measured.json``."""
    from evaluators.latency import measure_latency
    from evaluators.zerocost import list_proxies, score_spec
    from models.complexity import complexity

    path = work / "measured.json"
    done: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    lat = exp.latency
    for i, c in enumerate(cands):
        rec = done.get(c["arch_id"], {})
        if "latency_ms" not in rec:
            r = measure_latency(c["spec"], device=lat.device, precision=lat.precision,
                                batch_size=lat.batch, image_size=lat.image_size,
                                backend=lat.backend, warmup=lat.warmup or 5,
                                iters=lat.iters or 30, cv_threshold=exp.cv_threshold,
                                max_repeats=lat.max_repeats)
            rec["latency_ms"] = round(r.median_ms, 4)
            rec["params"] = int(complexity(c["spec"], image_size=64).params)
        for proxy in list_proxies():
            if f"zc_{proxy}" not in rec:
                rec[f"zc_{proxy}"] = round(score_spec(c["spec"], proxy), 6)
        done[c["arch_id"]] = rec
        path.write_text(json.dumps(done, indent=1) + "\n")
        print(f"[{i + 1}/{len(cands)}] {c['arch_id'][:12]} latency {rec['latency_ms']:.3f} ms")
    return done


def rows_of(cands: list[dict[str, Any]], results: list[dict[str, Any]],
            measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for c in cands:
        mine = [r for r in results if r["arch_id"] == c["arch_id"] and r.get("ap") is not None]
        if not mine:
            continue
        aps = [float(r["ap"]) for r in mine]
        rows.append({
            "arch_id": c["arch_id"], "label": c["label"], **measured[c["arch_id"]],
            "ap_mean": round(statistics.fmean(aps), 6),
            "ap_sd": round(statistics.stdev(aps), 6) if len(aps) > 1 else None,
            "seeds": len(aps), "ap_seeds": ";".join(f"{a:.6f}" for a in aps),
            "train_s": round(statistics.fmean(float(r.get("train_s") or 0) for r in mine), 2),
            "space_params": c["space_params"],
        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "sampler_bench.yaml"),
                    help="its space, fidelity, data and latency settings "
                         "(default: experiments/sampler_bench.yaml)")
    ap.add_argument("--archs", type=int, default=150, help="architectures (default 150)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="training seeds per architecture (AP sd needs >= 2; default 2)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "data" / "sampler_table.csv"))
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "out" / "sampler_table"),
                    help="resumable work folder (jobs, latencies)")
    ap.add_argument("--concurrency", type=int, default=None,
                    help="trainings at once (default: budget.concurrency)")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: write the table of what is finished")
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from nas.benchtable import TableError, write_table
    from nas.calibrate import CalibrationError, train_archs
    from nas.experiment import ExperimentError, load_experiment

    for key, value in (("--archs", args.archs), ("--repeats", args.repeats)):
        if value < 1:
            ap.error(f"{key}: expected an integer >= 1, got {value}")
    try:
        exp = load_experiment(args.experiment)
    except ExperimentError as exc:
        ap.exit(2, f"build_table: {exc}\n")
    t0 = time.perf_counter()
    cands = candidates(exp, args.archs)
    work = Path(args.work)
    try:
        results = train_archs(exp, work, cands, args.repeats, train=False)  # checks the folder
        measured = measure(exp, cands, work)
        if not args.report_only:
            results = train_archs(exp, work, cands, args.repeats,
                                  concurrency=args.concurrency)
        rows = rows_of(cands, results, measured)
        path = write_table(args.out, rows, settings_of(exp, args.repeats))
    except (CalibrationError, TableError) as exc:
        ap.exit(2, f"build_table: {exc}\n")
    missing = sum(1 for r in results if r.get("ap") is None)
    print(f"\n{path}: {len(rows)} of {len(cands)} architectures ({missing} trainings not "
          f"finished), {time.perf_counter() - t0:.0f} s this session")


if __name__ == "__main__":
    main()
