"""`gmvit render`: one mesh file -> its views, as a labelled grid and/or one PNG per view."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from app.cli import CLIError, existing_file
from renderer import FORMATS, RIGS, load_mesh, normalize, render_views, view_grid

# Depth PNGs are 16-bit: distance in units of 1/10000 of the unit sphere, 0 = background.
DEPTH_PNG_SCALE = 10_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a mesh file into the views GMViT sees",
        description=(
            "Load a mesh, normalise it to the unit sphere and render it from every camera of "
            "a rig. Writes a labelled grid (-o) and/or one PNG per view (--views-dir, "
            "view_00.png, view_01.png, ...). Formats: "
            + ", ".join(fmt.title.split(" (")[0] for fmt in FORMATS)
            + "; or a .zip of a mesh and its files. Files a mesh names (a glTF's .bin) are "
            "read from its folder."
        ),
    )
    parser.add_argument("file", type=Path, help="the mesh file")
    parser.add_argument("--rig", choices=sorted(RIGS), default="circle-12")
    parser.add_argument("--size", type=int, default=224, help="view width and height in pixels")
    parser.add_argument("-o", "--output", type=Path, help="write a labelled grid PNG here")
    parser.add_argument("--views-dir", type=Path, help="write one PNG per view into this folder")
    parser.add_argument(
        "--depth",
        action="store_true",
        help="also write depth: depth_NN.png (16-bit, 1/10000 units, 0 = background) in "
        "--views-dir, and a grid NAME-depth.png next to -o",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output is None and args.views_dir is None:
        raise CLIError("say where to write the views: -o grid.png and/or --views-dir DIR")
    if not 16 <= args.size <= 2048:
        raise CLIError(f"--size must be between 16 and 2048 pixels, not {args.size}")
    mesh = normalize(load_mesh(existing_file(args.file)))
    if args.depth:
        views, depths = render_views(mesh, args.rig, args.size, depth=True)
    else:
        views, depths = render_views(mesh, args.rig, args.size), None
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        view_grid(views).save(args.output)
        if depths is not None:
            depth_grid = args.output.with_name(f"{args.output.stem}-depth.png")
            view_grid(_depth_as_grey(depths)).save(depth_grid)
    if args.views_dir is not None:
        args.views_dir.mkdir(parents=True, exist_ok=True)
        for i, view in enumerate(views):
            Image.fromarray(view).save(args.views_dir / f"view_{i:02d}.png")
        if depths is not None:
            for i, depth in enumerate(depths):
                scaled = np.round(depth * DEPTH_PNG_SCALE).astype(np.uint16)
                Image.fromarray(scaled).save(args.views_dir / f"depth_{i:02d}.png")
    return 0


def _depth_as_grey(depths: np.ndarray) -> np.ndarray:
    """Near = dark, far = light, background white: for people, not for measuring."""
    surface = depths > 0
    near, far = depths[surface].min(), depths[surface].max()
    grey = np.full(depths.shape, 255, dtype=np.uint8)
    grey[surface] = np.round(40 + 180 * (depths[surface] - near) / max(far - near, 1e-9))
    return np.repeat(grey[..., None], 3, axis=-1)
