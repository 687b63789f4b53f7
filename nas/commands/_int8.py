"""``opennac export ... --int8`` and ``--trt``: the INT8 model with its AP next to the FP32
one, and a TensorRT engine where TensorRT is installed."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli import CliError


def int8_path(onnx_path: Path) -> Path:
    """``m.onnx`` -> ``m.int8.onnx``."""
    return onnx_path.with_name(f"{onnx_path.stem}.int8{onnx_path.suffix or '.onnx'}")


def export_int8(args: argparse.Namespace, task: str) -> Path:
    """Quantize ``args.onnx`` on ``args.calib_data``; print both APs when it is a data set."""
    from evaluators.onnx_eval import OnnxModel, calibration_images, evaluate_onnx
    from models.quantize import count_qdq, quantize_int8

    fp32 = OnnxModel(args.onnx)
    try:
        images, data = calibration_images(args.calib_data, task, fp32.size, args.calib_images)
    except ValueError as exc:
        raise CliError(f"--calib-data: {exc}") from None
    out = int8_path(args.onnx)
    try:
        quantize_int8(args.onnx, out, images)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's quantizer raises many types
        raise CliError(f"--int8: quantization failed ({type(exc).__name__}: {exc})") from None
    print(f"wrote {out} (INT8, static QDQ: {count_qdq(out)} quantized tensors; calibrated on "
          f"{len(images)} images of {args.calib_data})")
    if data is None:
        print("  AP: not measured (--calib-data is a folder of images, not a data set)")
        return out
    a = evaluate_onnx(args.onnx, data)
    b = evaluate_onnx(out, data)
    print(f"  AP on {a['val_images']} val images (ONNX Runtime, CPU): FP32 {a['ap']:.4f}, "
          f"INT8 {b['ap']:.4f} (change {b['ap'] - a['ap']:+.4f}); AP50 {a['ap50']:.4f} -> "
          f"{b['ap50']:.4f}")
    if a.get("note"):
        print(f"  note: {a['note']}")
    return out


def build_trt(onnx_path: Path, engine_path: Path, precision: str) -> None:
    """Build a serialized TensorRT engine (FP16, or INT8 from a QDQ model).

    Written against the TensorRT 10 Python API and not exercised by the test suite (no
    TensorRT on the machines that run it); the engine's parity with ONNX Runtime is not checked
    here: compare its detections with ``opennac predict OUT.onnx`` on the same images.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CliError(f"--trt: TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise CliError(f"--trt: TensorRT could not build an engine from {onnx_path}")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(engine))
    print(f"wrote {engine_path} (TensorRT {trt.__version__}, {precision}; parity with ONNX "
          "Runtime not checked: compare `opennac predict` outputs)")
