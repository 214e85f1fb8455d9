"""`gmvit export`: a checkpoint -> ONNX graphs (fp32 and int8) for ONNX Runtime on a CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint as ONNX (fp32 and int8) for ONNX Runtime",
        description=(
            "Write the model as a self-contained ONNX graph (descriptor and logits out, "
            "batch size free, checked against torch) and, unless --no-int8, an int8 copy "
            "calibrated on rendered views. Either file can stand in for the checkpoint: "
            "GMVIT_WEIGHTS=model.onnx runs the service on ONNX Runtime."
        ),
    )
    parser.add_argument("weights", type=Path, help="a gmvit checkpoint (.pt)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="fp32 graph to write, e.g. mini.onnx"
    )
    parser.add_argument(
        "--no-int8", action="store_true", help="skip the int8 copy (OUTPUT with .int8.onnx)"
    )
    parser.add_argument(
        "--calibration-shapes",
        type=int,
        default=3,
        help="synthetic shapes per class rendered to calibrate the int8 ranges",
    )
    parser.set_defaults(func=run)


def int8_path(output: Path) -> Path:
    return output.with_name(output.name.removesuffix(".onnx") + ".int8.onnx")


def run(args: argparse.Namespace) -> int:
    from gmvit.export import export_onnx, quantize_int8, synthetic_calibration

    if args.output.suffix != ".onnx":
        raise CLIError(f"the output must end in .onnx: {args.output}")
    if args.calibration_shapes < 1:
        raise CLIError("--calibration-shapes must be at least 1")
    info = export_onnx(args.weights, args.output)
    print(f"{args.output}: {info.model_id} fp32, {args.output.stat().st_size / 2**20:.1f} MiB")
    if not args.no_int8:
        calibration = synthetic_calibration(info.config, args.calibration_shapes)
        quantized = int8_path(args.output)
        int8 = quantize_int8(args.output, quantized, calibration)
        print(f"{quantized}: {int8.model_id} int8, {quantized.stat().st_size / 2**20:.1f} MiB")
    return 0
