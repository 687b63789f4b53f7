"""Names that become paths stay inside their output folder (nas.safepath).

A catalogue of hostile names goes through every place a user value (or a value read from a
file made elsewhere) becomes a file or folder: the run name, variant labels and names, a
``--variant`` to train, a frozen file's name as ``opennac train``'s default folder. Each is
refused with one line naming the option, and nothing is written anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _tiny import tiny_experiment  # tests/_tiny.py

from models.archfile import save_arch
from models.presets import get_preset
from nas.cli import CliError, main
from nas.experiment import ExperimentError, dump_experiment, load_experiment
from nas.final import variant_file
from nas.rundir import RunDir, trials_frame
from nas.safepath import UnsafeNameError, check_name, check_relative, inside
from nas.variants import VariantsError, update_variants

HOSTILE = [
    "../../etc",
    "..",
    ".",
    "a/b",
    "/tmp/abs",
    "~",
    "~root",
    ".hidden",
    "-rf",
    "a\\b",
    "nul\x00byte",
    "",
    "new\nline",
    "sp ace",
    "x" * 200,
    "C:evil",
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE)
def test_check_name_refuses(name: str) -> None:
    with pytest.raises(UnsafeNameError, match="--thing: "):
        check_name(name, "--thing")


def test_plain_names_pass(tmp_path: Path) -> None:
    for name in ("quickstart", "run-2.1", "n2.5ms_s4ms", "A+B", "x" * 128):
        assert check_name(name, "--name") == name
    assert check_relative("n2.5ms/s", "--variant") == "n2.5ms/s"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)  # a link that leads out
    with pytest.raises(UnsafeNameError, match="leads outside"):
        inside(tmp_path / "out", "link", "x")


@pytest.mark.parametrize("name", HOSTILE[:8])
def test_search_name_refused(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
                             ) -> None:  # fmt: skip
    exp = tmp_path / "e.yaml"
    exp.write_text(yaml.safe_dump(tiny_experiment("e")))
    before = _tree(tmp_path)
    assert main(["search", str(exp), "--output", str(tmp_path / "runs" / "out"), "--name", name,
                 "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--name: " in err[0], err
    assert _tree(tmp_path) == before  # nothing created, inside or outside


@pytest.mark.parametrize("name", ["../x", "a/b", ".."])
def test_experiment_name_refused(name: str) -> None:
    with pytest.raises(ExperimentError, match="name: expected letters"):
        load_experiment(tiny_experiment(name))


@pytest.mark.parametrize("name", HOSTILE[:6])
def test_variant_labels_and_names_refused(tmp_path: Path, name: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rd = RunDir.create(tmp_path / "run", "run")
    exp = load_experiment(tiny_experiment("run"))
    dump_experiment(exp, rd.experiment_yaml)
    before = _tree(tmp_path)
    with pytest.raises(VariantsError, match="variant label"):
        update_variants(rd, exp, trials_frame([]), budgets={"n": 2.0}, label=name or ".")
    with pytest.raises(VariantsError, match="variant name"):
        update_variants(rd, exp, trials_frame([]), budgets={name or ".": 2.0})
    assert main(["variants", str(rd.path), "--budget", f"{name}=2.5"]) == 2
    assert main(["variants", str(rd.path), "--budget", "n=2.5", "--label", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--budget" in err[0] and "--label" in err[1], err
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("variant", ["../../etc/passwd", "../run.json", "n/../../x", "/etc/x"])
def test_variant_to_train_refused(tmp_path: Path, variant: str) -> None:
    with pytest.raises(CliError, match="--variant"):
        variant_file(tmp_path, variant)


def test_frozen_file_name_is_not_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A frozen file from elsewhere names itself ``../../x``: `opennac train` without --out
    would train into runs/train/../../x."""
    from evaluators.synth import make_synthetic

    arch = save_arch(get_preset("yolo_nas_pose_tiny"), tmp_path / "a.yaml", name="../../x")
    data = make_synthetic(tmp_path / "data", "pose", images=8, image_size=64)
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    assert main(["train", str(arch), "--data", str(data), "--epochs", "1",
                 "--image-size", "64"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "the architecture's name (or choose --out)" in err and "'../../x'" in err
    assert _tree(tmp_path) == before


def test_run_json_name_from_elsewhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run directory made elsewhere whose run.json names it ``../../x``: resuming it would
    put Ray Tune's folder outside; every command that opens it refuses."""
    import json

    rd = RunDir.create(tmp_path / "run", "run")
    dump_experiment(load_experiment(tiny_experiment("run")), rd.experiment_yaml)
    rd.update_meta(name="../../x")
    assert json.loads(rd.run_json.read_text())["name"] == "../../x"
    before = _tree(tmp_path)
    for argv in (["resume", str(rd.path), "--quiet"], ["status", str(rd.path)],
                 ["variants", str(rd.path), "--budget", "n=2"]):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "run.json: name: '../../x' is not a plain name" in err, err
    assert _tree(tmp_path) == before
