"""On-disk latency cache: the same architecture is never measured twice in a run.

One JSON file per key (arch_id, device name, backend, precision, batch size, image size) in the
cache directory (``runs/<name>/latency_cache/`` in a run). Files are written atomically; a
per-key file lock makes concurrent trials asking for the same key measure it once.

Example:
    >>> import tempfile
    >>> from models.presets import get_preset
    >>> cache = LatencyCache(tempfile.mkdtemp())
    >>> spec = get_preset("yolo_nas_tiny")
    >>> a = cache.get_or_measure(spec, image_size=64, warmup=1, iters=3)
    >>> b = cache.get_or_measure(spec, image_size=64, warmup=1, iters=3)
    >>> a == b, cache.hits, cache.misses
    (True, 1, 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from evaluators.latency.result import LatencyError, LatencyResult

FORMAT = "opennac-latency/1"
KEY_FIELDS = ("arch_id", "device_name", "backend", "precision", "batch_size", "image_size")


def cache_key(
    arch_id: str,
    device_name: str,
    backend: str = "torch",
    precision: str = "fp32",
    batch_size: int = 1,
    image_size: int = 640,
) -> dict[str, Any]:
    """The key of a cached latency, as a plain dict."""
    return {
        "arch_id": arch_id,
        "device_name": device_name,
        "backend": backend,
        "precision": precision,
        "batch_size": int(batch_size),
        "image_size": int(image_size),
    }


class LatencyCache:
    """Latencies on disk under ``directory``, keyed by architecture and measurement context.

    ``hits`` and ``misses`` count this object's lookups.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.directory / f"{str(key['arch_id'])[:12]}-{digest}.json"

    def get(self, key: dict[str, Any]) -> LatencyResult | None:
        """The cached result of ``key`` (see `cache_key`), or None."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise LatencyError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
            if doc.get("key") != key:
                raise LatencyError("stored key differs from the requested key")
            return LatencyResult.from_dict(doc["result"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"latency cache: ignoring unreadable {path}: {exc}", stacklevel=2)
            return None

    def put(self, result: LatencyResult) -> Path:
        """Store a result under its own context (it must carry an arch_id)."""
        if not result.arch_id:
            raise LatencyError("latency cache: a result without arch_id cannot be cached")
        key = cache_key(
            result.arch_id,
            result.device_name,
            result.backend,
            result.precision,
            result.batch_size,
            result.image_size,
        )
        path = self.path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT, "key": key, "result": result.to_dict()}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1, sort_keys=True, default=str)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def get_or_measure(
        self,
        spec: Any,
        device: str = "cpu",
        backend: str = "torch",
        precision: str = "fp32",
        batch_size: int = 1,
        image_size: int = 640,
        **measure_kwargs: Any,
    ) -> LatencyResult:
        """The cached latency of ``spec`` in this context, measuring it on a miss.

        ``measure_kwargs`` go to `measure_latency` (warmup, iters, num_threads, lock_dir, ...);
        they are not part of the key.
        """
        from evaluators.latency.backends import parse_device
        from evaluators.latency.lock import device_lock
        from evaluators.latency.measure import measure_latency
        from evaluators.latency.telemetry import device_name

        parse_device(device)
        key = cache_key(
            spec.arch_id, device_name(device), backend, precision, batch_size, image_size
        )
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.directory.mkdir(parents=True, exist_ok=True)
        # One process measures a key; the others wait and read its file.
        with device_lock(self.path(key).stem, lock_dir=self.directory / ".locks"):
            found = self.get(key)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            result = measure_latency(
                spec,
                device=device,
                backend=backend,
                precision=precision,
                batch_size=batch_size,
                image_size=image_size,
                **measure_kwargs,
            )
            self.put(result)
        return result

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json")) if self.directory.exists() else 0


__all__ = ["FORMAT", "KEY_FIELDS", "LatencyCache", "cache_key"]
