"""Rendering cost per view at 224x224: all views in one pass against pyrender, one view at a time.

One pass (`render_views`): the surface pass draws the mesh once, instanced, a layer per
view; the shading pass lights each pixel once; one read brings every view back.
pyrender per view (`render_views_per_view(two_sided=False)`): the renderer as it was when
one pass was asked for: the mesh uploaded once, then a render and a read per view. Both
reuse this thread's GL context.

The views are compared with the two-sided reference (`render_views_per_view`, pyrender
per view with each view's faces turned towards its camera): depth bit for bit, and how
many colour values differ and by how much (pyrender interpolates three copies of a face's
normal, the one-pass renderer uses the face's own: at most one grey level, here and
there). So on the timed spheres, and on real meshes of `bench.corpus` (`--real`, when
`scripts/setup.sh --bench` has fetched them). Under EGL pyrender's own path is
multisampled and the one-pass renderer is not, so there the colours differ on edges by
design. Also: the cost of one load through the parser worker (pipe round trip) against
parsing in-process.

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m bench.render
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import trimesh

from bench import corpus
from renderer import LoadLimits, get_rig, load_mesh, normalize, render_views
from renderer.parsing import parse_mesh
from renderer.render import render_views_per_view

# The service simplifies a mesh of more than LoadLimits.render_faces before it renders it;
# the 1M row is the renderer alone.
TARGET_FACES = (1_000, 10_000, 100_000, LoadLimits().render_faces, 1_000_000)
SIZE = 224
RIG = "circle-12"


def sphere_with_about(faces: int) -> trimesh.Trimesh:
    # A UV sphere with k x k segments has about 4 k^2 triangles.
    k = max(4, round(math.sqrt(faces / 4)))
    return normalize(trimesh.creation.uv_sphere(count=[k, k]))


@dataclass
class Cost:
    wall_ms: float  # per view
    cpu_ms: float  # per view, this process's threads (llvmpipe's included)


@dataclass
class Agreement:
    """One pass against the two-sided reference, over one mesh or many."""

    meshes: int
    depth_differs: int  # meshes whose depth differs anywhere
    values_differing: int  # colour values (pixel x channel) that differ
    values: int
    max_difference: int  # grey levels

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(
            self.meshes + other.meshes,
            self.depth_differs + other.depth_differs,
            self.values_differing + other.values_differing,
            self.values + other.values,
            max(self.max_difference, other.max_difference),
        )

    def markdown(self) -> str:
        depth = "the same" if not self.depth_differs else f"differs on {self.depth_differs}"
        return (
            f"depth {depth}; colour: {self.values_differing:,} of {self.values:,} values "
            f"differ, by at most {self.max_difference}"
        )


def agreement(mesh: trimesh.Trimesh, rig: str = RIG, size: int = SIZE) -> Agreement:
    views, depths = render_views(mesh, rig, size, depth=True)
    reference, reference_depths = render_views_per_view(mesh, rig, size, depth=True)
    difference = np.abs(views.astype(np.int16) - reference)
    return Agreement(
        1,
        int(depths.tobytes() != reference_depths.tobytes()),
        int(np.count_nonzero(difference)),
        difference.size,
        int(difference.max()),
    )


# Real meshes are compared at both rigs and two sizes, taking turns.
REAL_SETTINGS = (("circle-12", 224), ("dodecahedron-20", 96))


def agreement_on_real_meshes(count: int, data: Path) -> Agreement:
    """`agreement` summed over `count` meshes drawn (seed 0) from bench.corpus."""
    corpus_dir, manifest = corpus.load(data)
    meshes = manifest["meshes"]
    picked = np.random.default_rng(0).choice(len(meshes), min(count, len(meshes)), replace=False)
    total = Agreement(0, 0, 0, 0, 0)
    for turn, index in enumerate(picked):
        rig, size = REAL_SETTINGS[turn % len(REAL_SETTINGS)]
        mesh = normalize(load_mesh(corpus_dir / meshes[index]["file"]))
        total += agreement(mesh, rig, size)
    return total


def cost_per_view(mesh: trimesh.Trimesh, calls: int) -> tuple[Cost, Cost]:
    """(one pass, pyrender per view); the two kinds of call alternate so that load from
    other processes on the machine falls on both alike. CPU time is the steadier measure on
    a shared machine: other processes lengthen the wall time, not this process's CPU time."""
    views = get_rig(RIG).num_views
    renders = (render_views, partial(render_views_per_view, two_sided=False))
    for render in renders:
        render(mesh, RIG, SIZE)  # warm: this thread's context and programs exist
    totals = [[0.0, 0.0] for _ in renders]
    for _ in range(calls):
        for render, total in zip(renders, totals, strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            render(mesh, RIG, SIZE)
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
    one_pass, per_view = (Cost(*(1000 * t / (calls * views) for t in total)) for total in totals)
    return one_pass, per_view


def ms_per_load(data: bytes, calls: int, *, in_process: bool) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        if in_process:
            parse_mesh(data, "off", 2_000_000)
        else:
            load_mesh(data)
    return 1000 * (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=5, help="calls of each kind per mesh (1M faces: 2)"
    )
    parser.add_argument(
        "--real", type=int, default=120, help="real meshes to compare with the reference (0: none)"
    )
    parser.add_argument("--data", type=Path, default=corpus.DEFAULT_DATA, help="bench data")
    args = parser.parse_args()

    platform = os.environ.get("PYOPENGL_PLATFORM", "osmesa")
    print(f"rig {RIG}, {SIZE}x{SIZE}, PYOPENGL_PLATFORM={platform}\n")
    print(
        "| faces | one pass ms/view (CPU ms) | pyrender per view ms/view (CPU ms) "
        "| pyrender / one pass: wall (CPU) | against the two-sided reference |"
    )
    print("|---:|---:|---:|---:|---|")
    for target in TARGET_FACES:
        mesh = sphere_with_about(target)
        calls = 2 if target >= 1_000_000 else args.calls
        one_pass, per_view = cost_per_view(mesh, calls)
        same = agreement(mesh)
        print(
            f"| {len(mesh.faces):,} | {one_pass.wall_ms:.2f} ({one_pass.cpu_ms:.2f}) "
            f"| {per_view.wall_ms:.2f} ({per_view.cpu_ms:.2f}) "
            f"| {per_view.wall_ms / one_pass.wall_ms:.2f}x "
            f"({per_view.cpu_ms / one_pass.cpu_ms:.2f}x) "
            f"| {same.markdown()} |",
            flush=True,
        )

    if args.real:
        try:
            real = agreement_on_real_meshes(args.real, args.data)
        except corpus.MissingDataError as error:
            print(f"\nreal meshes: not compared ({error})")
        else:
            settings = " and ".join(f"{rig} at {size} px" for rig, size in REAL_SETTINGS)
            print(f"\n{real.meshes} real meshes of bench.corpus ({settings}, taking turns):")
            print(real.markdown())

    data = sphere_with_about(1_000).export(file_type="off").encode()
    load_mesh(data)  # the worker is started once, outside the timing
    calls = 200
    worker = ms_per_load(data, calls, in_process=False)
    local = ms_per_load(data, calls, in_process=True)
    print("\n| load of a 1k-face OFF | ms/load |")
    print("|---|---:|")
    print(f"| parser worker (pipe round trip, reused process) | {worker:.2f} |")
    print(f"| in-process parse (no isolation) | {local:.2f} |")
    print(f"| worker overhead | {worker - local:.2f} ms ({worker / local:.2f}x) |")


if __name__ == "__main__":
    main()
