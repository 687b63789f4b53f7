"""The fidelity a trial records before training (so a trial stopped early has it too): image
counts as the trainer's data set selects them."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluators.data import CocoDataset, load_data_config
from evaluators.synth import make_synthetic
from nas.trial import image_count


@pytest.mark.parametrize("subset", [None, 5, 0.5, 1000])
def test_image_count_matches_the_trainers_data_set(tmp_path: Path, subset: object) -> None:
    data = load_data_config(make_synthetic(tmp_path, "detection", images=16, image_size=64),
                            "detection")
    for images, ann_file in ((data.train_images, data.train_annotations),
                             (data.val_images, data.val_annotations)):
        ds = CocoDataset(images, ann_file, "detection", 64, subset=subset, subset_seed=3)
        assert image_count(ann_file, subset, subset_seed=3) == len(ds)


def test_image_count_of_an_unreadable_file_is_unknown(tmp_path: Path) -> None:
    assert image_count(tmp_path / "missing.json", None) is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert image_count(bad, None) is None
