"""Frozen architecture files: YAML or JSON with ``format: opennac-arch/1``.

A file holds the architecture section, its ``arch_id`` (sha256 of the architecture's canonical
form, `ArchSpec.canonical_dict`), an optional ``name``, and optional ``metrics`` (each with its
fidelity and measurement context) and ``provenance`` (run, trial, seed, code version). Loading
checks the format version and the hash. A file whose ``arch_id`` is the hash of its architecture
section exactly as written (the rule of older OpenNAC versions, before defaulted fields were left
out of the hash and ``width_mult`` was stored as a number) is accepted too: it was not edited, only
hashed under an older canonical form; its record carries the id it was written with.

Example:
    >>> import tempfile, pathlib
    >>> from models import get_preset, save_arch, load_arch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
    >>> save_arch(get_preset("yolo_nas_s"), path, name="yolo_nas_s")
    >>> load_arch(path) == get_preset("yolo_nas_s")
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.spec import ArchSpec, SpecError, compute_arch_id

FORMAT_NAME = "opennac-arch"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
_TOP_KEYS = ("format", "name", "arch_id", "architecture", "metrics", "provenance")


class ArchFileError(ValueError):
    """A frozen file that cannot be loaded; the message names the file and the key."""


@dataclass(frozen=True)
class ArchRecord:
    """Everything a frozen file holds."""

    spec: ArchSpec
    name: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    stored_arch_id: str | None = None  # the id in the file (older files: may differ from spec's)


def arch_document(
    spec: ArchSpec,
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The dictionary written by `save_arch` (useful for embedding in other files)."""
    arch = spec.to_dict()
    doc: dict[str, Any] = {"format": FORMAT}
    if name:
        doc["name"] = name
    doc["arch_id"] = spec.arch_id
    doc["architecture"] = arch
    if metrics:
        doc["metrics"] = _plain(metrics)
    if provenance:
        doc["provenance"] = _plain(provenance)
    return doc


def save_arch(
    spec: ArchSpec,
    path: str | Path,
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    name: str | None = None,
) -> Path:
    """Write a frozen file; ``.json`` suffix writes JSON, anything else YAML."""
    path = Path(path)
    doc = arch_document(spec, metrics, provenance, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".json":
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    else:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    tmp.replace(path)
    return path


def load_arch(path: str | Path) -> ArchSpec:
    """Load and verify a frozen file; returns its ArchSpec."""
    return load_arch_record(path).spec


def load_arch_record(path: str | Path) -> ArchRecord:
    """Load and verify a frozen file with its name, metrics and provenance."""
    path = Path(path)
    if not path.is_file():
        raise ArchFileError(f"{path}: no such architecture file")
    text = path.read_text()
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ArchFileError(f"{path}: not valid YAML/JSON ({exc})") from None
    return parse_arch_document(doc, str(path))


def parse_arch_document(doc: Any, source: str = "<document>") -> ArchRecord:
    """Verify a loaded document (format, keys, hash) and build its record."""
    if not isinstance(doc, dict):
        raise ArchFileError(f"{source}: expected a mapping with 'format' and 'architecture'")
    unknown = sorted(set(doc) - set(_TOP_KEYS))
    if unknown:
        raise ArchFileError(
            f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(_TOP_KEYS)})"
        )
    fmt = doc.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_NAME + "/"):
        raise ArchFileError(f"{source}: format: expected {FORMAT!r}, got {fmt!r}")
    version = fmt.split("/", 1)[1]
    if version != str(FORMAT_VERSION):
        raise ArchFileError(
            f"{source}: format: version {version!r} is not supported by this OpenNAC "
            f"(reads {FORMAT!r})"
        )
    if "architecture" not in doc:
        raise ArchFileError(f"{source}: architecture: missing required key")
    try:
        spec = ArchSpec.from_dict(doc["architecture"], where="architecture")
    except SpecError as exc:
        raise ArchFileError(f"{source}: {exc}") from None
    actual = spec.arch_id
    stored = doc.get("arch_id")
    if stored is None:
        raise ArchFileError(f"{source}: arch_id: missing required key")
    if stored != actual and stored != _verbatim_id(doc["architecture"]):
        raise ArchFileError(
            f"{source}: arch_id: {stored!r} does not match the architecture section "
            f"(its hash is {actual!r}); the file was edited or damaged"
        )
    for key in ("metrics", "provenance"):
        if key in doc and not isinstance(doc[key], dict):
            raise ArchFileError(f"{source}: {key}: expected a mapping")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise ArchFileError(f"{source}: name: expected a string, got {name!r}")
    metrics = dict(doc.get("metrics") or {})
    return ArchRecord(spec, name, metrics, dict(doc.get("provenance") or {}), stored)


def _verbatim_id(section: Any) -> str | None:
    """The hash of an architecture section exactly as written (the pre-canonical-form rule)."""
    try:
        return compute_arch_id(section)
    except (TypeError, ValueError):
        return None


def _plain(obj: Any) -> Any:
    """Make nested data YAML-safe (tuples -> lists, numpy scalars -> Python numbers)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj
