"""A checkpoint whose pickle would run code is refused by every command that loads one.

The hostile files are a real OpenNAC checkpoint and a super-gradients-style file, each with one
extra value whose ``__reduce__`` calls ``exec`` to write a marker file. Full unpickling does
write it (checked first, so the file really is hostile); every command refuses the file with
exit 2 and a line that says why and how to convert it, and the marker never appears.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from _tiny import tiny_experiment  # tests/_tiny.py

from evaluators.checkpoint import save_checkpoint
from models.archfile import save_arch
from models.build import build_model
from models.presets import get_preset
from models.safeload import UnsafeCheckpointError, safe_torch_load
from nas.cli import main


class Payload:
    """Unpickling this runs ``exec``: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``ckpt``: an OpenNAC checkpoint (pose tiny) carrying a payload; ``sg``: a
    super-gradients-style file; ``arch``: its frozen file; ``data``: synthetic pose data;
    ``image``: one picture; ``marker``: where the payload would write."""
    from evaluators.synth import make_synthetic

    root = tmp_path_factory.mktemp("hostile")
    marker = root / "PWNED"
    spec = get_preset("yolo_nas_pose_tiny")
    model = build_model(spec)
    clean = save_checkpoint(root / "clean.pt", spec=spec, model=model, epoch=1)
    doc = torch.load(clean, weights_only=True)
    doc["metrics"] = {"ap": 0.1, "note": Payload(marker)}
    torch.save(doc, root / "hostile.pt")
    sg = {"ema_net": model.state_dict(), "epoch": 3, "processing_params": Payload(marker)}
    torch.save(sg, root / "hostile_sg.pth")
    data = make_synthetic(root / "data", "pose", images=8, image_size=64)
    images = sorted((root / "data").rglob("*.jpg"))
    return {"ckpt": root / "hostile.pt", "sg": root / "hostile_sg.pth", "marker": marker,
            "arch": save_arch(spec, root / "arch.yaml"), "data": Path(data),
            "image": images[0], "root": root}  # fmt: skip


def test_the_files_are_really_hostile(hostile: dict[str, Path]) -> None:
    """Control: full unpickling runs the payload (so a refusal below means something)."""
    for key in ("ckpt", "sg"):
        torch.load(hostile[key], weights_only=False)
        assert hostile["marker"].read_text() == "ran"
        hostile["marker"].unlink()
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec|GLOBAL|exec"):
        safe_torch_load(hostile["ckpt"])
    assert not hostile["marker"].exists()


def _commands(h: dict[str, Path]) -> dict[str, list[str]]:
    out = h["root"] / "out"
    exp = tiny_experiment("parent_hostile",
                          fidelity={"epochs": 1, "image_size": 64, "batch": 4, "seed": 0,
                                    "init": {"parent": str(h["ckpt"])}})  # fmt: skip
    exp_file = h["root"] / "parent_hostile.yaml"
    exp_file.write_text(yaml.safe_dump(exp))
    return {
        "eval": ["eval", str(h["ckpt"]), "--data", str(h["data"]), "--image-size", "64"],
        "export": ["export", str(h["arch"]), "--checkpoint", str(h["ckpt"]),
                   "--onnx", str(out / "m.onnx"), "--image-size", "64"],
        "predict": ["predict", str(h["ckpt"]), str(h["image"]), "--out", str(out / "pred")],
        "train --init": ["train", str(h["arch"]), "--data", str(h["data"]), "--epochs", "1",
                         "--image-size", "64", "--init", str(h["ckpt"]),
                         "--out", str(out / "init")],
        "train --distill": ["train", str(h["arch"]), "--data", str(h["data"]), "--epochs", "1",
                            "--image-size", "64", "--distill", str(h["ckpt"]),
                            "--out", str(out / "distill")],
        "import-weights": ["import-weights", str(h["sg"]), "--arch", "yolo_nas_pose_tiny",
                           "--out", str(out / "imported.pt")],
        "search (fidelity.init.parent)": ["search", str(exp_file), "--output", str(out / "runs"),
                                          "--quiet"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "command",
    ["eval", "export", "predict", "train --init", "train --distill", "import-weights",
     "search (fidelity.init.parent)"],
)  # fmt: skip
def test_every_loading_command_refuses_it(
    hostile: dict[str, Path], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _commands(hostile)[command]
    assert main(argv) == 2, command
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert "weights_only=True" in line and "exec" in line, line  # why
    assert "torch.load(path, weights_only=False)" in line, line  # how to convert it
    assert not hostile["marker"].exists(), f"{command} ran the payload"
    assert not (hostile["root"] / "out" / "imported.pt").exists()
    assert not (hostile["root"] / "out" / "runs" / "parent_hostile").exists()
