"""Stable identities: arch_id hashes the architecture's meaning, not the dataclass layout.

Golden ids of every preset (computed by main at 99f93e7, before the canonical form existed) and
frozen files written by that main (tests/fixtures/arch_v1_main_*) must keep holding.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from models import get_preset, list_presets, load_arch, load_arch_record, save_arch
from models.archfile import ArchFileError, parse_arch_document
from models.spec import V1_FIELDS, ArchSpec, PoseHeadSpec, StageSpec

GOLDEN = json.loads((Path(__file__).parent / "golden_arch_ids.json").read_text())
FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_golden_covers_every_preset() -> None:
    assert sorted(GOLDEN) == sorted(list_presets())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_preset_arch_id_is_golden(name: str) -> None:
    spec = get_preset(name)
    assert spec.arch_id == GOLDEN[name]
    # A dict round trip (what a frozen file does) keeps the id.
    assert ArchSpec.from_dict(spec.to_dict()).arch_id == GOLDEN[name]


def test_search_space_ids_are_those_main_wrote() -> None:
    """Architectures a run directory holds (trial rows, latency cache, duplicate check) keep
    their ids: params sampled by main 99f93e7, replayed here."""
    from search_spaces import get_space

    golden = json.loads((Path(__file__).parent / "golden_space_arch_ids.json").read_text())
    assert len(golden) == 6
    for row in golden:
        assert get_space(row["space"]).replay(row["params"]).arch_id == row["arch_id"]


def test_v1_layout_is_pinned() -> None:
    """The v1 field set is the one the golden ids were computed over; a new field must not be
    added to it (it would be hashed at its default and move nothing today, but the rule is that
    later fields are omitted at their default)."""
    pinned = {
        "StageSpec": ["depth", "hidden", "kind", "out_channels"],
        "BackboneSpec": ["spp", "spp_kernels", "stages", "stem"],
        "NeckSpec": ["down1", "down2", "up1", "up2"],
        "DetectionHeadSpec": ["inter", "reg_max", "width_mult"],
        "PoseHeadSpec": ["bbox_blocks", "bbox_inter", "pose_blocks", "pose_inter", "reg_max",
                         "shared_stem", "width_mult"],
        "ArchSpec": ["backbone", "head", "neck", "num_classes", "num_keypoints", "task"],
    }
    assert {c.__name__: sorted(f) for c, f in V1_FIELDS.items()} == pinned
    for cls, fields in V1_FIELDS.items():  # every v1 field still exists
        assert fields <= {f.name for f in dataclasses.fields(cls)}, cls.__name__


# -- simulating a layout change: a new defaulted field -----------------------------------------
@dataclasses.dataclass(frozen=True)
class PoseHeadSpecV2(PoseHeadSpec):
    """PoseHeadSpec with one field a later version might add."""

    attention: str = "none"


@dataclasses.dataclass(frozen=True)
class StageSpecV2(StageSpec):
    expansion: float = 1.0


@dataclasses.dataclass(frozen=True)
class ArchSpecV2(ArchSpec):
    input_channels: int = 3


def _upgraded(spec: ArchSpec, **head_extra: object) -> ArchSpec:
    head = PoseHeadSpecV2(**dataclasses.asdict(spec.head), **head_extra)  # type: ignore[arg-type]
    stages = tuple(StageSpecV2(**dataclasses.asdict(s)) for s in spec.backbone.stages)
    backbone = dataclasses.replace(spec.backbone, stages=stages)
    return ArchSpecV2(spec.task, backbone, spec.neck, head, spec.num_classes, spec.num_keypoints)


def test_adding_defaulted_fields_moves_no_id() -> None:
    spec = get_preset("yolo_nas_pose_s")
    v2 = _upgraded(spec)
    assert "attention" in v2.to_dict()["head"]  # the layout did change ...
    assert "attention" not in v2.canonical_dict()["head"]  # ... the canonical form did not
    assert v2.canonical_dict() == spec.canonical_dict()
    assert v2.arch_id == spec.arch_id == GOLDEN["yolo_nas_pose_s"]


def test_new_field_off_its_default_is_a_new_architecture() -> None:
    spec = get_preset("yolo_nas_pose_s")
    other = _upgraded(spec, attention="se")
    assert other.canonical_dict()["head"]["attention"] == "se"
    assert other.arch_id != spec.arch_id


def test_v1_fields_are_hashed_even_at_their_default() -> None:
    """Dropping a v1 default (e.g. reg_max 16) would move today's ids; it stays hashed."""
    spec = get_preset("yolo_nas_tiny")
    assert spec.head.reg_max == 16 and spec.canonical_dict()["head"]["reg_max"] == 16
    assert spec.canonical_dict() == spec.to_dict()


def test_int_and_float_width_are_one_architecture() -> None:
    spec = get_preset("yolo_nas_tiny")
    a = dataclasses.replace(spec, head=dataclasses.replace(spec.head, width_mult=1))
    b = dataclasses.replace(spec, head=dataclasses.replace(spec.head, width_mult=1.0))
    assert a.head.width_mult == 1.0 and isinstance(a.head.width_mult, float)
    assert a.arch_id == b.arch_id


# -- frozen files written by main before the change --------------------------------------------
def test_old_pose_file_loads_with_its_id() -> None:
    path = FIXTURES / "arch_v1_main_pose_s.yaml"
    record = load_arch_record(path)
    assert record.spec == get_preset("yolo_nas_pose_s")
    assert record.spec.arch_id == record.stored_arch_id == GOLDEN["yolo_nas_pose_s"]
    assert record.name == "yolo_nas_pose_s" and record.metrics["ap"]["value"] == 0.5


def test_old_json_file_loads() -> None:
    spec = load_arch(FIXTURES / "arch_v1_main_tiny.json")
    assert spec.arch_id == GOLDEN["yolo_nas_tiny"]


def test_old_file_with_int_width_loads() -> None:
    """main wrote ``width_mult: 1`` with the hash of that int, then refused its own file; the
    id it carries is the hash of its section as written, so the file is accepted."""
    record = load_arch_record(FIXTURES / "arch_v1_main_int_width.yaml")
    assert record.spec.head.width_mult == 1.0
    old = "791d3897b35704c862478012b541970a8e249823ae783a68c42f72668ea2e733"
    assert record.stored_arch_id == old
    assert record.spec.arch_id != record.stored_arch_id


def test_edited_old_file_is_still_refused(tmp_path: Path) -> None:
    text = (FIXTURES / "arch_v1_main_pose_s.yaml").read_text().replace("stem: 48", "stem: 56")
    (tmp_path / "edited.yaml").write_text(text)
    with pytest.raises(ArchFileError, match="edited or damaged"):
        load_arch(tmp_path / "edited.yaml")


def test_file_written_by_a_later_layout_loads_here(tmp_path: Path) -> None:
    """A file of a v2 spec at the new field's default: its architecture section, minus the new
    key (what an older reader would keep), verifies against the same id."""
    v2 = _upgraded(get_preset("yolo_nas_pose_s"))
    path = save_arch(v2, tmp_path / "v2.yaml")
    doc = json.loads(json.dumps(__import__("yaml").safe_load(path.read_text())))
    del doc["architecture"]["head"]["attention"]
    for stage in doc["architecture"]["backbone"]["stages"]:
        del stage["expansion"]
    del doc["architecture"]["input_channels"]
    record = parse_arch_document(doc, "v2.yaml")
    assert record.spec.arch_id == doc["arch_id"] == GOLDEN["yolo_nas_pose_s"]
