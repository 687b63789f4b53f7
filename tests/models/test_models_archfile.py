"""Frozen architecture files: round trips keep the arch_id; bad files are refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from models import (
    ArchFileError,
    ArchSpec,
    SpecError,
    build_model,
    get_preset,
    list_presets,
    load_arch,
    load_arch_record,
    save_arch,
)


@pytest.mark.parametrize("name", list_presets())
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_keeps_arch_id(name: str, suffix: str, tmp_path: Path) -> None:
    spec = get_preset(name)
    path = tmp_path / f"{name}{suffix}"
    save_arch(spec, path, metrics={"ap": 0.5}, provenance={"seed": 1}, name=name)
    record = load_arch_record(path)
    assert record.spec == spec and record.spec.arch_id == spec.arch_id
    assert record.name == name and record.metrics["ap"] == 0.5
    assert ArchSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).arch_id == spec.arch_id


def test_rebuild_from_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    save_arch(get_preset("yolo_nas_pose_tiny"), path)
    a = sum(p.numel() for p in build_model(load_arch(path)).parameters())
    assert a == sum(p.numel() for p in build_model(get_preset("yolo_nas_pose_tiny")).parameters())


def _saved(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "arch.yaml"
    save_arch(get_preset("yolo_nas_tiny"), path)
    return path, yaml.safe_load(path.read_text())


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path, doc = _saved(tmp_path)
    doc["architecture"]["backbone"]["stem"] = 24  # edited without updating arch_id
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ArchFileError, match="arch_id") as err:
        load_arch(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda a: a["backbone"].update(colour=1), "backbone.colour"),
        (lambda a: a["backbone"].update(stem="wide"), "backbone.stem"),
        (lambda a: a["neck"]["up1"].update(out_channels=-8), "neck.up1.out_channels"),
        (lambda a: a["head"].update(width_mult=[0.5]), "head.width_mult"),
    ],
)
def test_bad_values_name_file_and_key(edit, key: str, tmp_path: Path) -> None:
    from models.spec import compute_arch_id

    path, doc = _saved(tmp_path)
    edit(doc["architecture"])
    doc["arch_id"] = compute_arch_id(doc["architecture"])  # only the value is wrong
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ArchFileError) as err:
        load_arch(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_spec_validation_names_the_field() -> None:
    with pytest.raises(SpecError, match="out_channels"):
        d = get_preset("yolo_nas_tiny").to_dict()
        d["backbone"]["stages"][0]["out_channels"] = 0
        ArchSpec.from_dict(d)
