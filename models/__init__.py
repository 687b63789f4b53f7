"""OpenNAC models: architecture specs, the network builder, fusion, complexity, export.

This package imports nothing from ``nas``, ``search_spaces`` or ``evaluators``; a frozen file
plus ``models`` rebuilds a network without Ray or Optuna.
"""

from __future__ import annotations

from models.archfile import (
    ArchFileError,
    ArchRecord,
    load_arch,
    load_arch_record,
    save_arch,
)
from models.build import YoloNAS, build_model, fuse
from models.complexity import Complexity, complexity
from models.export import export_onnx
from models.presets import get_preset, list_presets, preset_name
from models.spec import (
    ArchSpec,
    BackboneSpec,
    DetectionHeadSpec,
    NeckSpec,
    PoseHeadSpec,
    SpecError,
    StageSpec,
)

__all__ = [
    "ArchFileError",
    "ArchRecord",
    "ArchSpec",
    "Complexity",
    "BackboneSpec",
    "DetectionHeadSpec",
    "NeckSpec",
    "PoseHeadSpec",
    "SpecError",
    "StageSpec",
    "YoloNAS",
    "build_model",
    "complexity",
    "export_onnx",
    "fuse",
    "get_preset",
    "list_presets",
    "load_arch",
    "load_arch_record",
    "preset_name",
    "save_arch",
]
