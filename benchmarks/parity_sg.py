"""Loss parity with super-gradients 3.7.1: identical predictions and targets through both.

For detection (PPYoloELoss, the YOLO-NAS recipe: task-aligned assigner, varifocal, GIoU, DFL)
and pose (YoloNASPoseLoss with the released criterion params), on the fixed inputs of
``tests/training/parity_cases.py``, prints per loss term the value of each implementation, the
relative value difference and the relative gradient difference (max |g_ours - g_ref| over every
prediction tensor, divided by max |g_ref|), for the N/S and M/L weightings; then the assigner's
agreement (positives, max target difference).

The reference runs in its own virtual environment (``../shared/tools/peer-setup.sh`` builds it
at /tmp/sg/venv), as a subprocess fed through a temporary ``torch.save`` file. The reference's
pose targets are filtered as its data pipeline does (``min_visible_keypoints: 1``); ours go in
unfiltered (our loss applies the rule).

``--write-golden PATH`` freezes the reference's numbers (term values, gradient norms, assigned
targets) into the JSON that ``tests/training/test_training_parity.py`` checks, so the test suite
never needs super-gradients.

Example:
    .venv/bin/python benchmarks/parity_sg.py --sg-python /tmp/sg/venv/bin/python
    .venv/bin/python benchmarks/parity_sg.py --sg-python /tmp/sg/venv/bin/python \\
        --write-golden tests/training/golden_parity_sg.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "training"))

import torch  # noqa: E402
from parity_cases import (  # noqa: E402
    NUM_CLASSES,
    checksum,
    grad_summary,
    make_case,
    prediction_keys,
    run_loss,
)

from models.assigner import COCO_SIGMAS  # noqa: E402
from models.losses import DetectionLoss, PoseLoss  # noqa: E402
from models.recipe import Recipe, get_recipe  # noqa: E402

GOLDEN_FORMAT = "opennac-parity-golden/1"
TERMS = {"detection": ("cls", "iou", "dfl"), "pose": ("cls", "iou", "dfl", "pose", "vis")}
# The recipes compared: detection (S, M, L share the loss), pose N/S and pose M/L.
GROUPS = {
    "detection S/M/L": "yolo_nas_s",
    "pose N/S": "yolo_nas_pose_s",
    "pose M/L": "yolo_nas_pose_m",
}

# -- the reference side (runs inside the super-gradients venv) --------------------------------
REFERENCE = r'''
import sys, torch
from torch import nn
from super_gradients.training.losses.ppyolo_loss import PPYoloELoss
from super_gradients.training.losses.yolo_nas_pose_loss import YoloNASPoseLoss

class Recorder(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.scores = None
    def forward(self, *args, **kwargs):
        out = self.inner(*args, **kwargs)
        self.scores = out[2] if isinstance(out, tuple) else out.assigned_scores
        return out

jobs = torch.load(sys.argv[1])
results = []
for job in jobs:
    t, w = job["inputs"], job["weights"]
    leaves = {k: v.clone().requires_grad_(True) for k, v in t["pred"].items()}
    b, a, c = leaves["cls_logits"].shape
    anchor_points, strides = t["anchors"], t["strides"][:, None]
    anchor_boxes = torch.cat([anchor_points - 2.5 * strides, anchor_points + 2.5 * strides], 1)
    distri = leaves["reg_dist"].reshape(b, a, -1)
    if job["task"] == "detection":
        loss = PPYoloELoss(num_classes=c, use_static_assigner=False,
                           classification_loss_weight=w["cls"], iou_loss_weight=w["iou"],
                           dfl_loss_weight=w["dfl"])
        preds = (leaves["cls_logits"], distri, anchor_boxes, anchor_points, t["levels"], strides)
        targets = t["flat"]
    else:
        loss = YoloNASPoseLoss(
            oks_sigmas=t["sigmas"], classification_loss_type="focal",
            regression_iou_loss_type="ciou", classification_loss_weight=w["cls"],
            iou_loss_weight=w["iou"], dfl_loss_weight=w["dfl"], pose_cls_loss_weight=w["vis"],
            pose_reg_loss_weight=w["pose"], pose_classification_loss_type="focal",
            rescale_pose_loss_with_assigned_score=True, assigner_multiply_by_pose_oks=True)
        preds = (None, (leaves["cls_logits"], distri, leaves["kpt_xy"], leaves["kpt_vis_logits"],
                        anchor_boxes, anchor_points, t["levels"], strides))
        targets = (t["flat_boxes"], t["flat_joints"], t["flat_crowd"])
    loss.assigner = Recorder(loss.assigner)
    total, _ = loss(preds, targets)
    total.backward()
    results.append({"value": float(total), "scores": loss.assigner.scores.detach(),
                    "grads": {k: v.grad.detach() for k, v in leaves.items()}})
torch.save(results, sys.argv[2])
'''


def reference_inputs(case: dict[str, Any]) -> dict[str, Any]:
    """The case in the reference's formats (flat targets with a batch index)."""
    levels = [int((case["strides"] == s).sum()) for s in (8.0, 16.0, 32.0)]
    t: dict[str, Any] = {
        "pred": {k: case[k] for k in prediction_keys(case["task"])},
        "anchors": case["anchors"], "strides": case["strides"], "levels": levels,
    }  # fmt: skip
    if case["task"] == "detection":
        rows = []
        for i, (bx, lb) in enumerate(zip(case["boxes"], case["labels"], strict=True)):
            cxcy, wh = (bx[:, :2] + bx[:, 2:]) / 2, bx[:, 2:] - bx[:, :2]
            idx = torch.full((len(bx), 1), float(i))
            rows.append(torch.cat([idx, lb[:, None].float(), cxcy, wh], 1))
        t["flat"] = torch.cat(rows)
        return t
    boxes, joints, crowd = [], [], []
    for i, (bx, kp) in enumerate(zip(case["boxes"], case["keypoints"], strict=True)):
        keep = (kp[..., 2] > 0).sum(-1) >= 1  # the reference's min_visible_keypoints: 1
        bx, kp = bx[keep], kp[keep]
        boxes.append(torch.cat([torch.full((len(bx), 1), float(i)), bx], 1))
        joints.append(torch.cat([torch.full((len(bx), kp.shape[1], 1), float(i)), kp], 2))
        crowd.append(torch.tensor([[float(i), 0.0]] * len(bx)))
    t.update(flat_boxes=torch.cat(boxes), flat_joints=torch.cat(joints),
             flat_crowd=torch.cat(crowd), sigmas=list(COCO_SIGMAS))  # fmt: skip
    return t


def run_reference(sg_python: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        script, inp, out = Path(tmp, "ref.py"), Path(tmp, "in.pt"), Path(tmp, "out.pt")
        script.write_text(REFERENCE)
        torch.save(jobs, inp)
        proc = subprocess.run(
            [sg_python, str(script), str(inp), str(out)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            sys.exit(f"reference run failed:\n{proc.stderr[-3000:]}")
        return torch.load(out, weights_only=False)


# -- our side -----------------------------------------------------------------------------------
def our_loss(task: str, recipe: Recipe) -> DetectionLoss | PoseLoss:
    if task == "detection":
        return DetectionLoss(NUM_CLASSES, cls_weight=recipe.cls_weight,
                             iou_weight=recipe.iou_weight, dfl_weight=recipe.dfl_weight)
    return PoseLoss(
        17, cls_weight=recipe.cls_weight, iou_weight=recipe.iou_weight,
        dfl_weight=recipe.dfl_weight, pose_weight=recipe.pose_weight,
        vis_weight=recipe.vis_weight, oks_area_factor=recipe.oks_area_factor,
        vis_alpha=recipe.vis_alpha, min_visible_keypoints=recipe.min_visible_keypoints,
    )  # fmt: skip


def run_ours(case: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """Value, gradients and assigned targets of our loss under ``recipe``'s weights."""
    return run_loss(case, our_loss(case["task"], recipe))


def one_hot(recipe: Recipe, term: str, task: str) -> Recipe:
    """``recipe`` with weight 1 on ``term`` and 0 on every other (the raw term)."""
    names = {"cls": "cls_weight", "iou": "iou_weight", "dfl": "dfl_weight",
             "pose": "pose_weight", "vis": "vis_weight"}  # fmt: skip
    return dataclasses.replace(
        recipe, **{names[t]: float(t == term) for t in TERMS[task]}
    )  # type: ignore[arg-type]


def weights_of(recipe: Recipe) -> dict[str, float]:
    return {"cls": recipe.cls_weight, "iou": recipe.iou_weight, "dfl": recipe.dfl_weight,
            "pose": recipe.pose_weight, "vis": recipe.vis_weight}  # fmt: skip


# -- comparison ---------------------------------------------------------------------------------
def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def grad_rel(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> float:
    scale = max(float(g.abs().max()) for g in ref.values())
    return max(float((ours[k] - ref[k]).abs().max()) for k in ref) / max(scale, 1e-30)


def _one_line(m: re.Match[str]) -> str:
    return "[" + " ".join(m.group(1).split()) + "]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sg-python", required=True, help="python of the super-gradients 3.7.1 venv")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed inputs")
    p.add_argument("--write-golden", default=None, help="write the reference's numbers here")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = p.parse_args(argv)
    if not Path(args.sg_python).is_file():
        print(f"--sg-python: {args.sg_python} not found (build it with "
              "../shared/tools/peer-setup.sh)", file=sys.stderr)  # fmt: skip
        return 2
    torch.set_num_threads(1)

    jobs, keys = [], []  # one reference run for every (group, term or total)
    cases = {task: make_case(task, args.seed) for task in ("detection", "pose")}
    for group, name in GROUPS.items():
        recipe = get_recipe(name)
        task = recipe.task
        for term in (*TERMS[task], "total"):
            r = recipe if term == "total" else one_hot(recipe, term, task)
            jobs.append({"task": task, "inputs": reference_inputs(cases[task]),
                         "weights": weights_of(r)})  # fmt: skip
            keys.append((group, task, term, r))
    refs = run_reference(args.sg_python, jobs)

    rows, golden_cases, golden_totals = [], {}, {}
    for (group, task, term, r), ref in zip(keys, refs, strict=True):
        ours = run_ours(cases[task], r)
        rows.append({
            "group": group, "term": term, "ours": ours["value"], "reference": ref["value"],
            "value_rel_diff": rel(ours["value"], ref["value"]),
            "grad_rel_diff": grad_rel(ours["grads"], ref["grads"]),
        })  # fmt: skip
        if term == "total":
            golden_totals[GROUPS[group]] = {
                "weights": weights_of(r), "value": ref["value"],
                "grads": grad_summary(ref["grads"]),
            }  # fmt: skip
        elif group != "pose M/L":  # raw terms do not depend on the weighting
            entry = golden_cases.setdefault(task, {"seed": args.seed,
                                                   "checksum": checksum(cases[task]),
                                                   "terms": {}, "grads": {}})  # fmt: skip
            entry["terms"][term] = ref["value"]
            entry["grads"][term] = grad_summary(ref["grads"])
            fg = ref["scores"].sum(-1).flatten().nonzero().flatten()
            entry["assigner"] = {
                "positives": fg.tolist(),
                "scores": [round(float(v), 7) for v in ref["scores"].sum(-1).flatten()[fg]],
            }
            rows.append({
                "group": group, "term": f"assigner ({term})",
                "positives_agree": bool(torch.equal(ours["scores"].sum(-1) > 0,
                                                    ref["scores"].sum(-1) > 0)),
                "targets_max_diff": float((ours["scores"] - ref["scores"]).abs().max()),
            }) if term == TERMS[task][0] else None  # fmt: skip

    print("| setting | term | ours | super-gradients 3.7.1 | value rel. diff | grad rel. diff |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "ours" in row:
            print(f"| {row['group']} | {row['term']} | {row['ours']:.6f} | "
                  f"{row['reference']:.6f} | {row['value_rel_diff']:.1e} | "
                  f"{row['grad_rel_diff']:.1e} |")  # fmt: skip
    print()
    print("| setting | assigner: same positives | max target diff |")
    print("|---|---|---|")
    for row in rows:
        if "positives_agree" in row:
            print(f"| {row['group']} | {row['positives_agree']} | "
                  f"{row['targets_max_diff']:.1e} |")  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=1))
    if args.write_golden:
        doc = {
            "format": GOLDEN_FORMAT,
            "reference": "super-gradients 3.7.1 (PPYoloELoss, YoloNASPoseLoss)",
            "written_by": "benchmarks/parity_sg.py --write-golden",
            "torch": torch.__version__,
            "cases": golden_cases,
            "totals": golden_totals,
        }
        text = json.dumps(doc, indent=1)
        # one line per list of numbers keeps the file short and its diffs readable
        text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", _one_line, text)
        Path(args.write_golden).write_text(text + "\n")
        print(f"wrote {args.write_golden}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
