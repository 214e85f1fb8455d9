"""`gmvit dataset synth|render|info`: make, render and inspect data sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dataset", help="make, render and inspect data sets")
    commands = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    synth = commands.add_parser(
        "synth",
        help="write a procedural synthetic set (ModelNet class names) in the ModelNet layout",
    )
    synth.add_argument("--out", required=True, type=Path, help="folder to write meshes into")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--train-per-class", type=int, default=100)
    synth.add_argument("--test-per-class", type=int, default=30)
    synth.add_argument("--format", default="off", choices=("off", "obj", "stl", "ply"))
    synth.add_argument(
        "--classes",
        default="modelnet10",
        help="a class set (modelnet10, modelnet40, held-out: families that are none of the "
        "forty, for open-set tests only) or a comma list of class names",
    )
    synth.set_defaults(func=_synth)

    render = commands.add_parser(
        "render", help="render every mesh of <root>/<class>/{train,test}/ into a view store"
    )
    render.add_argument("root", type=Path, help="mesh folder in the ModelNet layout")
    render.add_argument("-o", "--out", required=True, type=Path, help="view store folder")
    render.add_argument("--rig", default="circle-12", help="circle-12 or dodecahedron-20")
    render.add_argument("--size", type=int, default=224, help="image side in pixels")
    render.add_argument(
        "--jobs", type=int, default=1, help="render processes (each with its own renderer)"
    )
    render.add_argument(
        "--augment",
        type=int,
        default=0,
        metavar="K",
        help="also render K perturbed copies of every training mesh (turned about +Z by any "
        "angle, maybe mirrored, re-tessellated, noisy), recorded in the manifest",
    )
    render.add_argument("--augment-seed", type=int, default=0, help="seed of the copies")
    render.set_defaults(func=_render)

    info = commands.add_parser("info", help="summarise a view store or a PNG view set")
    info.add_argument("path", type=Path)
    info.set_defaults(func=_info)


def _synth(args: argparse.Namespace) -> int:
    from gmvit.data import synth

    if args.train_per_class < 0 or args.test_per_class < 0:
        raise CLIError("--train-per-class and --test-per-class must be zero or more")
    try:
        classes = synth.resolve_classes(args.classes)
    except ValueError as error:
        raise CLIError(f"--classes: {error}") from None
    paths = synth.generate(
        args.out,
        seed=args.seed,
        train_per_class=args.train_per_class,
        test_per_class=args.test_per_class,
        fmt=args.format,
        classes=classes,
    )
    print(f"wrote {len(paths)} meshes of {len(classes)} classes to {args.out}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from gmvit.data.store import render_store

    if args.jobs < 1:
        raise CLIError("--jobs must be at least 1")
    if args.augment < 0:
        raise CLIError("--augment must be 0 or more")
    manifest = render_store(
        args.root,
        args.out,
        rig=args.rig,
        size=args.size,
        jobs=args.jobs,
        augment=args.augment,
        augment_seed=args.augment_seed,
    )
    counts = ", ".join(f"{n} {split}" for split, n in manifest["counts"].items())
    print(f"rendered {counts} meshes into {args.out} ({manifest['failed']} failed)")
    for shape in manifest["shapes"]:
        if shape["status"] == "failed":
            print(f"  failed: {shape['source']}: {shape['error']}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from gmvit.data.datasets import open_split

    summary = {}
    for split in ("train", "test"):
        views = open_split(args.path, split)
        summary[split] = {c: int((views.labels == i).sum()) for i, c in enumerate(views.classes)}
        summary |= {"rig": views.rig, "num_views": views.num_views, "size": views.size}
    print(json.dumps(summary, indent=1))
    return 0
