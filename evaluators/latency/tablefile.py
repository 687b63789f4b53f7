"""The latency-table file: its JSON document, reading with checks, upgrading older formats.

Format ``opennac-latency-table/2`` (current): ``context`` (space and overrides, device and
device name, backend, precision, batch, image size, warm-up, iterations, threads, ``timing``:
``context`` or ``isolated``, seeds, library versions, date), ``entries`` (block key ->
``block`` path, ``family``, ``ms`` = median of ``obs``, ``cv``, ``gmacs``, ``layers``,
``mact``), ``overhead`` (``intercept_ms``, ``scale``, ``method``, ``points``, ``rmse_ms``),
``estimator`` and ``fit_points`` (``arch_id``, ``keys``, ``blocks_ms``, ``measured_ms``).

Format ``opennac-latency-table/1`` (blocks timed alone; no families, observations or fit-point
keys) is read and upgraded in memory: ``timing`` becomes ``isolated``, each entry's ``obs`` its
one timing; its fitted overhead is kept (a covered spec predicts what it did), and the
unseen-block estimator is refitted (by `LatencyTable.load`) since its layout changed.

Example:
    >>> doc = upgrade_v1({"format": "opennac-latency-table/1", "context": {}, "overhead": {},
    ...                   "entries": {"k": {"block": "neck.up1", "ms": 1.5}}})
    >>> doc["format"], doc["context"]["timing"], doc["entries"]["k"]["obs"]
    ('opennac-latency-table/2', 'isolated', [1.5])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evaluators.latency.result import LatencyError

FORMAT = "opennac-latency-table/2"
FORMAT_V1 = "opennac-latency-table/1"
CONTEXT_KEYS = (
    "device",
    "device_name",
    "backend",
    "precision",
    "batch_size",
    "image_size",
    "space",
)


def table_document(table: Any) -> dict[str, Any]:
    """The JSON document of a `LatencyTable`."""
    return {
        "format": FORMAT,
        "context": table.context,
        "overhead": table.overhead,
        "estimator": table.estimator,
        "fit_points": table.fit_points,
        "entries": table.entries,
    }


def upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A format-1 document as format 2 (a new dict; ``upgraded_from`` says from what)."""
    entries = {
        key: {**e, "obs": [e["ms"]]} if isinstance(e, dict) and "ms" in e else e
        for key, e in doc.get("entries", {}).items()
    }
    return {
        **doc,
        "format": FORMAT,
        "context": {**doc.get("context", {}), "timing": "isolated"},
        "overhead": {"method": "least squares (format 1)", **doc.get("overhead", {})},
        "entries": entries,
        "estimator": {},
        "upgraded_from": FORMAT_V1,
    }


def read_table(path: str | Path) -> dict[str, Any]:
    """The checked (and, if older, upgraded) document of a table file; LatencyError names the
    file and the key for a missing file, bad JSON, an unknown format or a missing key."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LatencyError(f"{path}: no such latency table file") from None
    except (OSError, ValueError) as exc:
        raise LatencyError(f"{path}: not a JSON latency table ({exc})") from None
    got = doc.get("format") if isinstance(doc, dict) else None
    if got not in (FORMAT, FORMAT_V1):
        raise LatencyError(f"{path}: format {got!r}, expected {FORMAT!r} (or {FORMAT_V1!r})")
    for key in ("context", "entries", "overhead"):
        if not isinstance(doc.get(key), dict):
            raise LatencyError(f"{path}: key {key!r} missing or not a mapping")
    for key in CONTEXT_KEYS:
        if key not in doc["context"]:
            raise LatencyError(f"{path}: key 'context.{key}' missing")
    for key, entry in doc["entries"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("ms"), (int, float)):
            raise LatencyError(f"{path}: key 'entries.{key}.ms' missing or not a number")
        for feature in ("block", "gmacs", "layers", "mact"):
            if feature not in entry:
                raise LatencyError(f"{path}: key 'entries.{key}.{feature}' missing")
    for key in ("intercept_ms", "scale"):
        if not isinstance(doc["overhead"].get(key), (int, float)):
            raise LatencyError(f"{path}: key 'overhead.{key}' missing or not a number")
    if got == FORMAT_V1:
        doc = upgrade_v1(doc)
    if doc["context"].get("timing") not in ("context", "isolated"):
        raise LatencyError(
            f"{path}: key 'context.timing' is {doc['context'].get('timing')!r}, expected "
            "'context' or 'isolated'"
        )
    return doc


__all__ = ["CONTEXT_KEYS", "FORMAT", "FORMAT_V1", "read_table", "table_document", "upgrade_v1"]
