"""`gmvit convert`: a published GMViT state_dict (`model.t7`) -> our checkpoint format."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from app.cli import CLIError, existing_file
from gmvit import load_reference, save_checkpoint
from gmvit.model import TEACHER_CNNS, VARIANTS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a published GMViT checkpoint (model.t7) into a gmvit checkpoint",
        description=(
            "Read a state_dict saved by the authors' GMViT code (with or without a "
            "DataParallel 'module.' prefix) and write one gmvit checkpoint file holding the "
            "weights, the config, the class names and the model id."
        ),
    )
    parser.add_argument("source", type=Path, help="the published state_dict, e.g. model.t7")
    parser.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--views", type=int, choices=(12, 20), required=True)
    parser.add_argument("--classes", type=int, required=True, help="number of classes")
    parser.add_argument(
        "--class-names",
        type=Path,
        help="text file with one class name per line, in label order "
        "(default: class_0, class_1, ...)",
    )
    parser.add_argument("--cnn", choices=TEACHER_CNNS, default="resnet18", help="teacher only")
    parser.add_argument("--group-bins", type=int, default=12)
    parser.add_argument(
        "--image-size", type=int, default=224, help="view size the model was trained on"
    )
    parser.set_defaults(func=run)


def _class_names(path: Path | None, num_classes: int) -> list[str]:
    if path is None:
        return [f"class_{i}" for i in range(num_classes)]
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name]
    if len(names) != num_classes:
        raise CLIError(f"{path} names {len(names)} classes, but --classes is {num_classes}")
    return names


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    existing_file(args.source)
    class_names = _class_names(args.class_names, args.classes)
    model = load_reference(
        args.source,
        args.variant,
        args.views,
        args.classes,
        cnn=args.cnn,
        group_bins=args.group_bins,
        image_size=args.image_size,
    )
    meta = {
        "source": "published GMViT checkpoint",
        "source_file": os.path.basename(args.source),
        "source_sha256": _sha256(args.source),
    }
    model_id = save_checkpoint(args.output, model, class_names, meta)
    print(f"{args.output}: {model_id}")
    return 0
