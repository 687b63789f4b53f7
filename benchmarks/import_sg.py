"""Import check against super-gradients 3.7.1 itself: its real models, our `import-weights`.

For each model: super-gradients builds it (random initialisation, no download), every BatchNorm
gets non-trivial statistics (eval mode would otherwise hide a wrong running mean), every neck
upsampling ConvTranspose a non-zero bias; the state_dict is saved as a training checkpoint
({"net", "ema_net", "epoch"}) and super-gradients' own eval-mode forward on a fixed input is
recorded, in float64 and float32. Then `opennac import-weights` converts the file (the real
command path: torch.load(weights_only=True), ema_net, the bias fold) and our model runs on the
same input. The table prints the largest absolute difference of each output (pose keypoint
visibility compared after the sigmoid, as both report it).

The reference runs in its own virtual environment (``../shared/tools/peer-setup.sh`` builds it
at /tmp/sg/venv), as a subprocess; nothing is downloaded. ``--write-golden PATH`` also writes
the names and shapes hash per released model that tests/models/test_sg_import.py checks.

Example:
    .venv/bin/python benchmarks/import_sg.py --sg-python /tmp/sg/venv/bin/python
    .venv/bin/python benchmarks/import_sg.py --sg-python /tmp/sg/venv/bin/python \\
        --models yolo_nas_s yolo_nas_pose_n --write-golden tests/models/golden_sg_keys.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

from evaluators.checkpoint import model_from_checkpoint  # noqa: E402
from models.presets import RELEASED  # noqa: E402
from nas.cli import main as opennac  # noqa: E402

# -- the reference side (runs inside the super-gradients venv) --------------------------------
REFERENCE = r'''
import sys, torch
from torch import nn
from super_gradients.training import models

names, image, out_dir = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
x = torch.rand(2, 3, image, image)  # pixels / 255, as both models take them
result = {"x": x, "models": {}}
for name in names:
    pose = "pose" in name
    torch.manual_seed(1)
    model = models.get(name, num_classes=17 if pose else 80)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
            if isinstance(m, nn.ConvTranspose2d):
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
    model.eval()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = f"{out_dir}/{name}.pth"
    torch.save({"net": sd, "ema_net": sd, "epoch": 0}, ckpt)
    outs = {}
    for dtype in (torch.float64, torch.float32):
        m = model.to(dtype)
        with torch.no_grad():
            dec = m(x.to(dtype))[0]
        outs[str(dtype)] = [t.double() for t in dec]
    momenta = sorted({m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)})
    shapes = {k: list(v.shape) for k, v in sd.items()}
    result["models"][name] = {"ckpt": ckpt, "outs": outs, "shapes": shapes, "momenta": momenta}
torch.save(result, f"{out_dir}/result.pt")
'''


def run_reference(sg_python: str, names: list[str], image: int, tmp: Path) -> dict[str, Any]:
    script = tmp / "ref.py"
    script.write_text(REFERENCE)
    env = dict(os.environ, SG_LOGS_DIR=str(tmp / "sg_logs"), MPLCONFIGDIR=str(tmp / "mpl"),
               CRASH_HANDLER="FALSE")  # fmt: skip
    proc = subprocess.run([sg_python, str(script), ",".join(names), str(image), str(tmp)],
                          capture_output=True, text=True, env=env)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"reference run failed:\n{proc.stderr[-3000:]}")
    return torch.load(tmp / "result.pt", weights_only=False)


def our_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Ours in super-gradients' output order: boxes, scores (+ keypoint xy, visibility)."""
    with torch.no_grad():
        outs = model(x)
    if len(outs) == 2:
        return [t.double() for t in outs]
    boxes, scores, kpts = outs
    return [t.double() for t in (boxes, scores, kpts[..., :2], kpts[..., 2])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sg-python", required=True, help="python of the super-gradients venv")
    parser.add_argument("--models", nargs="+", default=["yolo_nas_s", "yolo_nas_pose_n"],
                        choices=RELEASED, help="default: yolo_nas_s yolo_nas_pose_n")
    parser.add_argument("--image-size", type=int, default=320, help="input pixels (default 320)")
    parser.add_argument("--write-golden", type=Path, metavar="PATH",
                        help="write the names/shapes hashes (all released models needed)")
    args = parser.parse_args()
    from _sg_fixture import key_digest

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    with tempfile.TemporaryDirectory(prefix="opennac-import-sg-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        ref = run_reference(args.sg_python, args.models, args.image_size, tmp)
        print(f"super-gradients side: {time.perf_counter() - started:.1f} s, input "
              f"{tuple(ref['x'].shape)}")  # fmt: skip
        head = ("model", "tensors", "BN momentum", "dtype", "boxes", "scores", "kpt xy",
                "kpt vis", "|boxes| max")  # fmt: skip
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        golden: dict[str, Any] = {}
        for name in args.models:
            r = ref["models"][name]
            out = tmp / f"{name}.pt"
            if opennac(["import-weights", r["ckpt"], "--arch", name, "--out", str(out)]) != 0:
                sys.exit(f"{name}: import-weights failed")
            model, _ = model_from_checkpoint(out)
            for dtype in (torch.float64, torch.float32):
                want = r["outs"][str(dtype)]
                got = our_outputs(model.to(dtype), ref["x"].to(dtype))
                diffs = [f"{(a - b).abs().max().item():.1e}" for a, b in zip(got, want,
                                                                               strict=True)]
                diffs += ["-"] * (4 - len(diffs))
                size = want[0].abs().max().item()
                print(f"| {name} | {len(r['shapes'])} | {r['momenta']} | "
                      f"{str(dtype).removeprefix('torch.')} | {' | '.join(diffs)} | "
                      f"{size:.0f} |")  # fmt: skip
            golden[name] = {"tensors": len(r["shapes"]), "sha256": key_digest(r["shapes"])}
    if args.write_golden:
        if sorted(golden) != sorted(RELEASED):
            sys.exit("--write-golden needs every released model: --models " + " ".join(RELEASED))
        doc = {"format": "opennac-sg-keys/1",
               "source": "super-gradients 3.7.1: models.get(name, num_classes=80 (detection) "
                         "or 17 (pose)).state_dict(), names and shapes; written by "
                         "benchmarks/import_sg.py --write-golden",
               "presets": {n: golden[n] for n in RELEASED}}  # fmt: skip
        args.write_golden.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.write_golden}")


if __name__ == "__main__":
    main()
