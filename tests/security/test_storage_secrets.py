"""Secrets in the Optuna storage URL never land on disk or on the console (nas.secrets).

The sweep test runs a real tiny sweep whose storage URL carries two secrets that SQLite
accepts (its driver ignores query arguments): a literal ``password=`` and a ``token=`` read
from an environment variable (``${NAME}``). It then reads every file of the run directory
(binary ones too, Ray Tune's included), the report and the console output, and finds neither.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from _tiny import tiny_experiment  # tests/_tiny.py

from nas.cli import main
from nas.experiment import ExperimentError, dump_experiment, load_experiment
from nas.progress import Progress
from nas.rundir import RunDir
from nas.secrets import expand_env, mask, mask_text, storage_url

LITERAL = "Hunter2-literal-pw"
FROM_ENV = "Env-token-7c1f"


def _files_holding(root: Path, *secrets: str) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://nac:s3cr3t@db:5432/nac", "postgresql://nac:***@db:5432/nac"),
        ("postgresql+psycopg2://nac:p@ss:w/rd@db/nac", "postgresql+psycopg2://nac:***@db/nac"),
        ("mysql://u:pw@h/db?charset=utf8&password=x1", "mysql://u:***@h/db?charset=utf8&password=***"),
        ("error: could not open storage 'redis://:tok@h:6379'", "error: could not open storage 'redis://:***@h:6379'"),
        ("sqlite:////tmp/s.db", "sqlite:////tmp/s.db"),
        ("ray://head:10001", "ray://head:10001"),
        ("postgresql://nac@db/nac", "postgresql://nac@db/nac"),
        ("host=db user=nac password=abc dbname=x", "host=db user=nac password=*** dbname=x"),
    ],
)  # fmt: skip
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked
    assert mask({"a": [text, 1]}) == {"a": [masked, 1]}


def test_env_references(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENNAC_T_PW", "pw-from-env-42")
    assert expand_env("postgresql://u:${OPENNAC_T_PW}@h/db", "x") == (
        "postgresql://u:pw-from-env-42@h/db")
    assert storage_url("postgresql://u:${OPENNAC_T_PW}@db.internal/db", None, "") == (
        "postgresql://u:pw-from-env-42@db.internal/db")
    assert mask_text("bare pw-from-env-42 in a driver message") == "bare *** in a driver message"
    assert mask_text("host db.internal") == "host db.internal"  # not a secret
    monkeypatch.delenv("OPENNAC_T_MISSING", raising=False)
    with pytest.raises(ValueError, match="exp.yaml: storage: environment variable "
                                         "OPENNAC_T_MISSING is not set"):  # fmt: skip
        storage_url("postgresql://u:${OPENNAC_T_MISSING}@h/db", None, "exp.yaml: ")
    with pytest.raises(ValueError, match="storage_env: environment variable OPENNAC_T_MISSING"):
        storage_url(None, "OPENNAC_T_MISSING", "")
    monkeypatch.setenv("OPENNAC_T_URL", "postgresql://u:whole-url-pw@h/db")
    assert storage_url(None, "OPENNAC_T_URL", "") == "postgresql://u:whole-url-pw@h/db"
    assert "whole-url-pw" not in mask_text("password authentication: whole-url-pw")
    with pytest.raises(ValueError, match="password was masked"):
        storage_url("postgresql://u:***@h/db", None, "")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"storage": "sqlite:///a.db", "storage_env": "X"}, "not both"),
        ({"storage_env": "not a name"}, "storage_env: expected an environment variable name"),
        ({"storage": "postgresql://u:${bad name}@h/db"}, "expected an environment variable"),
    ],
)
def test_bad_storage_sections(section: dict[str, str], message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        load_experiment(tiny_experiment("s", **section))


def test_every_writer_masks_a_literal_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run directory's writers, the progress lines and the CLI's error line, fed a URL
    with a literal password (a PostgreSQL URL: no server is needed to write files)."""
    url = f"postgresql://nac:{LITERAL}@db.example:5432/nac"
    exp = load_experiment(tiny_experiment("w", storage=url))
    rd = RunDir.create(tmp_path / "w", "w")
    dump_experiment(exp, rd.experiment_yaml)
    assert yaml.safe_load(rd.experiment_yaml.read_text())["storage"] == (
        "postgresql://nac:***@db.example:5432/nac")
    rd.update_meta(storage=url, sessions=[{"error": f"cannot open {url}"}])
    rd.write_trials([{"number": 0, "status": "FAIL", "error": f"storage {url} refused"}])
    Progress(3).say(f"storage {url}")
    # A storage that cannot be opened: the sweep's error line names the URL, masked.
    exp_file = tmp_path / "input" / "pg.yaml"  # the user's file, not one OpenNAC writes
    exp_file.parent.mkdir()
    exp_file.write_text(yaml.safe_dump(tiny_experiment("pg", storage=url)))
    assert main(["search", str(exp_file), "--output", str(tmp_path / "runs"), "--quiet"]) == 2
    out = capsys.readouterr()
    assert "nac:***@db.example" in out.err and "nac:***@db.example" in out.out
    assert LITERAL not in out.out + out.err
    assert _files_holding(rd.path, LITERAL) == []
    assert _files_holding(tmp_path / "runs", LITERAL) == []
    assert not (tmp_path / "runs" / "pg").exists()  # failed before its first trial: no trace
    # Such a run directory cannot give the password back: resuming says what to do.
    again = load_experiment(rd.experiment_yaml)
    with pytest.raises(ExperimentError, match="masked.*storage_env"):
        again.storage_url()


@pytest.mark.slow
def test_sweep_leaves_no_trace_of_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import optuna

    from nas.search import run_search

    monkeypatch.setenv("OPENNAC_TEST_STUDY_TOKEN", FROM_ENV)
    db = tmp_path / "shared" / "study.db"
    db.parent.mkdir()
    storage = f"sqlite:///{db}?password={LITERAL}&token=${{OPENNAC_TEST_STUDY_TOKEN}}"
    exp = tiny_experiment("secret", storage=storage, budget={"trials": 2, "concurrency": 2},
                          variants={"budgets": {"n": 1000.0}})  # no reference to measure
    run = Path(run_search(exp, output=tmp_path / "runs", progress=True))
    assert main(["status", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    console = capfd.readouterr()
    # The storage was used (both trials are in it) and the run directory does name it...
    real = f"sqlite:///{db}?password={LITERAL}&token={FROM_ENV}"
    assert len(optuna.load_study(study_name="secret", storage=real).trials) == 2
    written = yaml.safe_load((run / "experiment.yaml").read_text())["storage"]
    assert written == f"sqlite:///{db}?password=***&token=${{OPENNAC_TEST_STUDY_TOKEN}}"
    assert (run / "ray").is_dir() and (run / "report" / "report.md").is_file()
    # ... but no file (Ray Tune's pickles and JSON included) holds either secret.
    assert _files_holding(run, LITERAL, FROM_ENV) == []
    assert LITERAL not in console.out + console.err
    assert FROM_ENV not in console.out + console.err
    assert os.environ["OPENNAC_TEST_STUDY_TOKEN"] == FROM_ENV
