"""The search-efficiency table: architectures of a space trained and measured once.

`benchmarks/build_table.py` writes it, `benchmarks/sampler.py` replays searches on it. A table is
a CSV whose first two lines are comments::

    # opennac-bench-table/1
    # settings: {"experiment": ..., "space": {...}, "fidelity": {...}, "latency": {...}, ...}

then one row per architecture: ``arch_id``, ``label`` (a reference point's name or empty),
``params`` (parameter count), ``latency_ms`` (median, fused model, the experiment's primary
latency target), ``ap_mean`` / ``ap_sd`` (over ``seeds`` trainings at the experiment's
fidelity; ``ap_seeds`` lists them, ``;``-separated), ``train_s`` (mean training seconds),
``zc_<proxy>`` (zero-cost proxy scores, `evaluators.zerocost`) and one ``param_<name>`` column
per parameter of the space's encoding (empty where the architecture does not use it).

A replayed sampler proposes parameters through the space's own define-by-run API; `Encoding`
maps any parameter set to a vector and `BenchTable.nearest` answers with the table row at the
smallest distance (1-nearest neighbour): per dimension, integers and numeric choices count
``|a - b| / (high - low)`` (choices by their rank), other choices 0 if equal else 1, a parameter
present in only one of the two sets 1; the distance is the sum (an L1 distance in [0, dims]).
Ties go to the earlier row.

Example:
    >>> from search_spaces import get_space
    >>> enc = Encoding.of(get_space("yolo_nas_pose", width_scale=0.25), samples=8)
    >>> p = enc.space.reference_points()["yolo_nas_pose_n"]
    >>> float(enc.distance(p, [p])[0])
    0.0
"""

from __future__ import annotations

import csv
import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import RandomTrial

FORMAT = "opennac-bench-table/1"
COLUMNS = ("arch_id", "label", "params", "latency_ms", "ap_mean", "ap_sd", "seeds", "ap_seeds",
           "train_s")


class TableError(ValueError):
    """A table that cannot be read or does not fit the space (the message names the file)."""


class _RecordingTrial(RandomTrial):
    """A random trial that also records each parameter's distribution."""

    def __init__(self, seed: int, dists: dict[str, tuple[Any, ...]]) -> None:
        super().__init__(seed=seed)
        self.dists = dists

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int:
        self.dists.setdefault(name, ("int", low, high))
        return super().suggest_int(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        old = self.dists.get(name)
        merged = list(old[1]) if old else []
        merged += [c for c in choices if c not in merged]
        self.dists[name] = ("cat", tuple(merged))
        return super().suggest_categorical(name, choices)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        self.dists.setdefault(name, ("float", low, high))
        return super().suggest_float(name, low, high, step=step, log=log)


@dataclass
class Encoding:
    """The space's parameters as numbers (see the module docstring for the distance)."""

    space: Any
    dists: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, space: Any, samples: int = 256,
           extra: Sequence[Mapping[str, Any]] = ()) -> Encoding:
        """Learn the parameters and their ranges from ``samples`` random draws, the reference
        points and ``extra`` parameter sets (replayed through the space)."""
        dists: dict[str, tuple[Any, ...]] = {}
        for i in range(samples):
            space.sample(_RecordingTrial(i, dists))
        for params in [*space.reference_points().values(), *extra]:
            trial = _RecordingTrial(0, dists)
            trial._given = dict(params)
            space.sample(trial)
        return cls(space, dict(sorted(dists.items())))

    @property
    def names(self) -> list[str]:
        return list(self.dists)

    def _nominal(self, name: str) -> bool:
        d = self.dists[name]
        return d[0] == "cat" and not all(
            isinstance(c, numbers.Real) and not isinstance(c, bool) for c in d[1])

    def vector(self, params: Mapping[str, Any]) -> np.ndarray:
        """``params`` as floats in [0, 1] (ordinal) or a choice index (nominal); NaN absent."""
        out = np.full(len(self.dists), np.nan)
        for i, (name, d) in enumerate(self.dists.items()):
            if name not in params or params[name] is None or params[name] == "":
                continue
            v = params[name]
            if isinstance(v, float) and np.isnan(v):
                continue
            if d[0] == "cat":
                choices = d[1]
                if self._nominal(name):
                    out[i] = _index(choices, v, name)
                else:
                    ranked = sorted(choices)
                    out[i] = _index(ranked, v, name) / max(1, len(ranked) - 1)
            else:
                lo, hi = float(d[1]), float(d[2])
                out[i] = (float(v) - lo) / (hi - lo) if hi > lo else 0.0
        return out

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.stack([self.vector(r) for r in rows]) if rows else np.zeros((0, len(self.dists)))

    def distance(self, params: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] | np.ndarray
                 ) -> np.ndarray:
        """Distances from ``params`` to each of ``rows`` (parameter sets or `matrix` rows)."""
        m = rows if isinstance(rows, np.ndarray) else self.matrix(rows)
        q = self.vector(params)
        nominal = np.array([self._nominal(n) for n in self.dists], dtype=bool)
        diff = np.abs(m - q)
        diff[:, nominal] = (m[:, nominal] != q[nominal]).astype(float)
        qn, mn = np.isnan(q)[None, :], np.isnan(m)
        diff[qn & mn] = 0.0
        diff[qn ^ mn] = 1.0
        return diff.sum(axis=1)


def _index(choices: Sequence[Any], value: Any, name: str) -> int:
    for i, c in enumerate(choices):
        if isinstance(c, bool) == isinstance(value, bool) and (c == value or str(c) == str(value)):
            return i
    raise TableError(f"parameter {name!r}: {value!r} is not one of {list(choices)!r}")


@dataclass
class BenchTable:
    """A loaded table: ``rows`` (dicts, numbers parsed), ``params`` (each row's parameter set),
    ``settings`` (the header), and the lookup (`nearest`) once `bind` gave it the space."""

    rows: list[dict[str, Any]]
    params: list[dict[str, Any]]
    settings: dict[str, Any]
    path: str = ""
    encoding: Encoding | None = None
    _matrix: np.ndarray | None = None

    def bind(self, space: Any, samples: int = 256) -> BenchTable:
        """Learn the space's encoding (and check every row replays in it)."""
        self.encoding = Encoding.of(space, samples, extra=self.params)
        self._matrix = self.encoding.matrix(self.params)
        return self

    def nearest(self, params: Mapping[str, Any]) -> int:
        """The index of the row nearest to ``params`` (first of equals)."""
        if self.encoding is None or self._matrix is None:
            raise TableError(f"{self.path}: bind(space) first")
        return int(np.argmin(self.encoding.distance(params, self._matrix)))

    def seed_aps(self, row: int) -> list[float]:
        """The AP of each training of row ``row`` (``ap_seeds``; ``[ap_mean]`` where the
        table lists none)."""
        return _seed_list(self.rows[row].get("ap_seeds")) or [float(self.rows[row]["ap_mean"])]

    def column(self, name: str) -> np.ndarray:
        return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan
                         for r in self.rows])


def _number(text: str) -> Any:
    if text == "":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def _seed_list(text: str | None) -> list[float]:
    """The numbers of an ``ap_seeds`` cell (``;``-separated; empty: none)."""
    return [float(v) for v in str(text or "").split(";") if v.strip()]


def read_table(path: str | Path) -> BenchTable:
    """Load a table file (TableError names the file and what is wrong)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise TableError(f"{path}: cannot read ({exc.strerror})") from None
    if len(lines) < 3 or lines[0].strip() != f"# {FORMAT}" or \
            not lines[1].startswith("# settings: "):
        raise TableError(f"{path}: not an {FORMAT} table (expected '# {FORMAT}' and "
                         "'# settings: {...}' as the first two lines)")
    settings = json.loads(lines[1].removeprefix("# settings: "))
    reader = csv.DictReader(lines[2:])
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}")
    rows, params = [], []
    for raw in reader:
        row = {k: (raw[k] if k in ("arch_id", "label", "ap_seeds") else _number(raw[k]))
               for k in raw}
        try:
            _seed_list(row["ap_seeds"])
        except ValueError:
            raise TableError(f"{path}: row {len(rows) + 1} ({row['arch_id']}): ap_seeds "
                             f"{row['ap_seeds']!r} is not ';'-separated numbers") from None
        rows.append(row)
        params.append({k[6:]: v for k, v in row.items()
                       if k.startswith("param_") and v is not None})
    return BenchTable(rows, params, settings, str(path))


def write_table(path: str | Path, rows: Sequence[Mapping[str, Any]],
                settings: Mapping[str, Any]) -> Path:
    """Write ``rows`` (each with the `COLUMNS`, ``zc_*`` scores and a ``params`` mapping under
    ``"space_params"``) as a table file; refuses to replace a file that is not a table."""
    path = Path(path)
    if path.exists():
        first = path.read_text().split("\n", 1)[0].strip()
        if first != f"# {FORMAT}":
            raise TableError(f"{path}: exists and is not an {FORMAT} table; choose another "
                             "--out (not overwritten)")
    names = sorted({k for r in rows for k in r["space_params"]})
    zc = sorted({k for r in rows for k in r if k.startswith("zc_")})
    header = [*COLUMNS, *zc, *(f"param_{n}" for n in names)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        fh.write(f"# {FORMAT}\n# settings: {json.dumps(dict(settings), sort_keys=True)}\n")
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            vals = {**{k: r.get(k) for k in (*COLUMNS, *zc)},
                    **{f"param_{k}": v for k, v in r["space_params"].items()}}
            w.writerow(["" if vals.get(c) is None else vals[c] for c in header])
    tmp.replace(path)
    return path


__all__ = ["BenchTable", "COLUMNS", "Encoding", "FORMAT", "TableError", "read_table",
           "write_table"]
