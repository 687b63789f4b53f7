"""``opennac export ARCH --onnx OUT.onnx``: the fused model for deployment, checked at export.

Example:
    $ opennac export runs/demo/variants/s.yaml --checkpoint best.pt --onnx s.onnx --nms
    $ opennac export yolo_nas_s --onnx s.onnx --image-size 640 --fp16
    $ opennac export yolo_nas_pose_n --torchscript pose_n.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nas.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export an architecture (fused) to ONNX, optionally with NMS, or TorchScript",
        description=(
            "Export a preset or a frozen architecture file as the fused (re-parameterized) "
            "network: ONNX (checked against PyTorch in ONNX Runtime at export time), optionally "
            "with post-processing in the graph (ONNX NonMaxSuppression; pose keypoints gathered "
            "with their boxes), and/or TorchScript. Weights: --checkpoint, else the kept "
            "checkpoint a variant file names (provenance.checkpoint), else random (a warning "
            "says so)."
        ),
        epilog=(
            "ONNX input: images [B, 3, H, W], RGB, NCHW, pixels 0-255 as uint8 (--input uint8, "
            "the default) or float32 (--input float; float16 with --fp16), not normalised: the "
            "graph divides by 255. Letterbox outside the graph: longest side scaled to fit, "
            "centred, padded with 114 (detection) or 127 (pose); models.letterbox does it and "
            "maps boxes back. ONNX outputs without --nms: boxes [B, A, 4] (xyxy letterboxed "
            "pixels), scores [B, A, C] (+ keypoints [B, A, K, 3] for pose). With --nms: "
            "batch_index [N], boxes [N, 4], scores [N], labels [N] (+ keypoints [N, K, 3]). "
            "See docs/export.md."
        ),
    )
    parser.add_argument("arch", metavar="ARCH_FILE_OR_NAME", help="preset name or frozen file")
    parser.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="write an ONNX file")
    parser.add_argument(
        "--torchscript", type=Path, metavar="OUT.pt", help="write a TorchScript (traced) file"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="CKPT",
        help="trained weights (opennac-ckpt/1; EMA weights are used when stored); default: "
        "the kept checkpoint named by a variant file",
    )
    parser.add_argument(
        "--image-size",
        type=_image_size,
        default=(640, 640),
        metavar="PIXELS",
        help="input size: 640 or HxW like 384x640, multiples of 32 (default 640)",
    )
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    parser.add_argument(
        "--input",
        choices=("uint8", "float"),
        default="uint8",
        dest="input_type",
        help="element type of the ONNX input, RGB pixels 0-255 either way: uint8 (default) or "
        "float (float32; float16 with --fp16); the graph divides by 255",
    )
    parser.add_argument(
        "--fp16", action="store_true", help="float16 weights, activations and input"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17, min 17)")
    nms = parser.add_argument_group("post-processing in the ONNX graph")
    nms.add_argument("--nms", action="store_true", help="add score threshold, top-k, NMS")
    nms.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold (default 0.7)")
    nms.add_argument(
        "--score", type=float, default=0.25, help="keep scores above this (default 0.25)"
    )
    nms.add_argument(
        "--max-det",
        type=int,
        default=None,
        metavar="N",
        help="detections per image (default 300; 30 for pose)",
    )
    nms.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="candidates before NMS (default 1000; 300 for pose, as the evaluation)",
    )
    q = parser.add_argument_group("INT8 and TensorRT")
    q.add_argument(
        "--int8",
        action="store_true",
        help="also write OUT.int8.onnx: static post-training quantization with ONNX Runtime "
        "(QDQ: int8 convolutions, float decoding/NMS), calibrated on --calib-data; prints the "
        "AP of the FP32 and INT8 models on its validation images",
    )
    q.add_argument(
        "--calib-data",
        metavar="DIR",
        help="calibration images: a COCO-format data set (train images calibrate, val images "
        "score) or a folder of images",
    )
    q.add_argument(
        "--calib-images", type=int, default=64, metavar="N",
        help="calibration images (default 64)",
    )  # fmt: skip
    q.add_argument(
        "--trt",
        type=Path,
        metavar="OUT.engine",
        help="also build a TensorRT engine (FP16, or INT8 from the QDQ model with --int8); "
        "needs the tensorrt package and an NVIDIA GPU",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the ONNX Runtime / TorchScript check"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.commands._common import check_output_file, resolve_arch

    if args.onnx is None and args.torchscript is None:
        raise CliError("nothing to write: give --onnx OUT.onnx and/or --torchscript OUT.pt")
    if args.batch < 1:
        raise CliError(f"--batch: expected a positive integer, got {args.batch}")
    nms_given = [f for f in ("iou", "score", "max_det", "top_k") if _changed(args, f)]
    if nms_given and not args.nms:
        raise CliError(f"--{nms_given[0].replace('_', '-')} needs --nms")
    if args.nms and args.onnx is None:
        raise CliError("--nms applies to --onnx (TorchScript holds the network only)")
    _check_int8_trt(args)
    for flag in ("onnx", "torchscript"):
        if getattr(args, flag) is not None:
            check_output_file(getattr(args, flag), f"--{flag} file")
    spec, name = resolve_arch(args.arch)
    if args.checkpoint is None:
        args.checkpoint = kept_weights(args.arch)
    model = _model(spec, args.checkpoint)
    if args.checkpoint is None:
        print(
            "opennac export: warning: no --checkpoint given; the exported weights are random "
            "(untrained), fine for latency tests only",
            file=sys.stderr,
        )
    if args.onnx is not None:
        _export_onnx(model, args, name)
        onnx_for_trt = args.onnx
        if args.int8:
            from nas.commands._int8 import export_int8

            onnx_for_trt = export_int8(args, model.task)
        if args.trt is not None:
            from nas.commands._int8 import build_trt

            build_trt(onnx_for_trt, args.trt, "int8" if args.int8 else "fp16")
    if args.torchscript is not None:
        _export_torchscript(model, args, name)
    return 0


def _check_int8_trt(args: argparse.Namespace) -> None:
    """Refuse INT8 / TensorRT options that cannot work, before anything is written."""
    if (args.int8 or args.trt is not None) and args.onnx is None:
        raise CliError("--int8 and --trt start from the ONNX model: give --onnx OUT.onnx")
    if args.int8 and args.fp16:
        raise CliError("--int8 quantizes the float32 model: leave out --fp16")
    if args.int8 and not args.calib_data:
        raise CliError("--int8 needs --calib-data DIR (a COCO-format data set or image folder)")
    if args.calib_data and not args.int8:
        raise CliError("--calib-data needs --int8")
    if args.calib_images < 1:
        raise CliError(f"--calib-images: expected a positive count, got {args.calib_images}")
    if args.trt is not None:
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            raise CliError(
                "--trt: TensorRT is not installed (pip install tensorrt, on a machine with an "
                "NVIDIA GPU); the ONNX file works without it, or build an engine elsewhere with "
                "trtexec --onnx=OUT.onnx --saveEngine=OUT.engine --fp16 (--int8 for a QDQ model)"
            )


def kept_weights(arch: str) -> Path | None:
    """The kept checkpoint a frozen file names (`nas.weights`); an error when it is missing."""
    from models.archfile import ArchFileError
    from nas.weights import kept_checkpoint

    try:
        ckpt = kept_checkpoint(arch)
    except ArchFileError as exc:
        raise CliError(str(exc)) from None
    if ckpt is not None and not ckpt.is_file():
        raise CliError(
            f"{arch}: names the kept checkpoint {ckpt}, which does not exist (deleted or moved); "
            "give --checkpoint, or retrain with `opennac train RUN_DIR --variant NAME`"
        )
    return ckpt


def _model(spec: Any, checkpoint: Path | None) -> Any:
    """The network of ``spec``, with the checkpoint's weights when given."""
    from models.build import build_model

    if checkpoint is None:
        return build_model(spec).eval()
    from evaluators.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint

    try:
        doc = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    if doc["spec"].arch_id != spec.arch_id:
        raise CliError(
            f"{checkpoint}: the checkpoint's architecture ({doc['spec'].arch_id[:12]}) is not "
            f"the one given ({spec.arch_id[:12]}); export the checkpoint's own frozen file"
        )
    try:
        model, _ = model_from_checkpoint(doc, use_ema=True)
    except CheckpointError as exc:
        raise CliError(f"{checkpoint}: {exc}") from None
    weights = "EMA" if doc.get("ema_state_dict") is not None else "model"
    print(f"weights: {checkpoint} ({weights} weights, epoch {doc.get('epoch')})")
    return model


def _export_onnx(model: Any, args: argparse.Namespace, name: str) -> None:
    from models.export import ExportError
    from models.export_nms import NmsSettings, export_deployable

    nms = None
    if args.nms:
        try:
            nms = NmsSettings(args.iou, args.score, args.max_det, args.top_k)
        except ValueError as exc:
            raise CliError(f"--{str(exc).split(':')[0].replace('_', '-')}: {exc}") from None
    try:
        report = export_deployable(
            model,
            args.onnx,
            image_size=args.image_size,
            batch=args.batch,
            nms=nms,
            fp16=args.fp16,
            opset=args.opset,
            check=not args.no_check,
            input_type=args.input_type,
        )
    except (ValueError, ExportError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    from models.letterbox import PAD_VALUES

    b, c, h, w = report.input_shape
    dtype = {"uint8": "uint8", "float": "float32", "float16": "float16"}[report.input_type]
    print(f"wrote {report.path} ({name}, opset {report.opset}, fused)")
    print(f"  input  images [{b}, {c}, {h}, {w}] {dtype}: RGB, NCHW, pixels 0-255 (the graph "
          f"divides by 255), letterboxed with pad {PAD_VALUES[model.task]} (models.letterbox)")
    print(f"  outputs {', '.join(report.output_names)}")
    if nms is not None:
        print(
            f"  post-processing: score > {nms.score}, top-k {nms.pre_nms_top_k(model.task)}, "
            f"NMS IoU {nms.iou}, max {nms.max_detections(model.task)} per image"
        )
    if report.network_max_rel_err is None:
        print("  check: skipped (--no-check)")
    else:
        line = f"  check: ONNX Runtime vs PyTorch, relative error {report.network_max_rel_err:.1e}"
        if report.max_box_err is not None:
            line += (
                f"; its {report.detections} detections equal models.postprocess on the same "
                f"network outputs (boxes within {report.max_box_err:.1e} px)"
            )
        print(line)
        if report.note:
            print(f"  note: {report.note}")


def _export_torchscript(model: Any, args: argparse.Namespace, name: str) -> None:
    import warnings

    import torch

    from models.build import fuse
    from models.export import PixelInput, pixel_input

    dtype = torch.float16 if args.fp16 else torch.float32
    fused = PixelInput(fuse(model).cpu().to(dtype))  # pixels 0-255 in, like the ONNX file
    h, w = args.image_size
    x = pixel_input((args.batch, 3, h, w), args.input_type)
    if args.input_type == "float":
        x = x.to(dtype)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(fused, (x,), check_trace=False)
            args.torchscript.parent.mkdir(parents=True, exist_ok=True)
            traced.save(str(args.torchscript))
    except Exception as exc:  # noqa: BLE001 - TorchScript support varies by torch build
        raise CliError(f"--torchscript: tracing failed ({type(exc).__name__}: {exc})") from None
    print(f"wrote {args.torchscript} ({name}, TorchScript, fused, {dtype}, network only; "
          f"input {x.dtype} RGB pixels 0-255, NCHW)")
    if not args.no_check:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            loaded = torch.jit.load(str(args.torchscript))
            want, got = fused(x), loaded(x)
        err = max(float((g - w_).abs().max()) for g, w_ in zip(got, want, strict=True))
        if err > 1e-4 * max(float(w_.abs().max()) for w_ in want):
            raise CliError(f"{args.torchscript}: reloaded TorchScript differs (max error {err})")
        print(f"  check: reloaded TorchScript equals PyTorch (max error {err:.1e})")


def _image_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or any(p < 32 or p % 32 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected a size like 640 or 384x640 (multiples of 32), got {text!r}"
        )
    return parts[0], parts[1]


_DEFAULTS = {"iou": 0.7, "score": 0.25, "max_det": None, "top_k": None}


def _changed(args: argparse.Namespace, field: str) -> bool:
    return getattr(args, field) != _DEFAULTS[field]
