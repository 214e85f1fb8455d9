"""Rendering cost per view at 224x224: our reused per-thread renderer vs the naive way.

Naive = a new pyrender OffscreenRenderer (a new GL context) for every call, which is what
code that does not keep one per thread pays. Both render the same scene the same way;
the only difference is the renderer's lifetime. Also: the cost of one load through the
parser worker (pipe round trip) against parsing in-process.

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m bench.render
"""

from __future__ import annotations

import argparse
import math
import os
import time

import trimesh

from renderer import get_rig, load_mesh, normalize, release_renderer, render_views
from renderer.parsing import parse_mesh

TARGET_FACES = (1_000, 10_000, 100_000, 1_000_000)
SIZE = 224
RIG = "circle-12"


def sphere_with_about(faces: int) -> trimesh.Trimesh:
    # A UV sphere with k x k segments has about 4 k^2 triangles.
    k = max(4, round(math.sqrt(faces / 4)))
    return normalize(trimesh.creation.uv_sphere(count=[k, k]))


def ms_per_view(mesh: trimesh.Trimesh, calls: int) -> tuple[float, float]:
    """(reused, naive) ms per view; the two kinds of call alternate so that load from
    other processes on the machine falls on both alike."""
    views = get_rig(RIG).num_views
    render_views(mesh, RIG, SIZE)  # warm: this thread's renderer exists
    reused = naive = 0.0
    for _ in range(calls):
        start = time.perf_counter()
        render_views(mesh, RIG, SIZE)
        reused += time.perf_counter() - start
        start = time.perf_counter()
        release_renderer()
        render_views(mesh, RIG, SIZE)
        naive += time.perf_counter() - start
    return 1000 * reused / (calls * views), 1000 * naive / (calls * views)


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
    args = parser.parse_args()

    platform = os.environ.get("PYOPENGL_PLATFORM", "osmesa")
    print(f"rig {RIG}, {SIZE}x{SIZE}, PYOPENGL_PLATFORM={platform}\n")
    print(
        "| faces | reused renderer (ms/view) | new renderer per call (ms/view) | naive / reused |"
    )
    print("|---:|---:|---:|---:|")
    for target in TARGET_FACES:
        mesh = sphere_with_about(target)
        calls = 2 if target >= 1_000_000 else args.calls
        reused, naive = ms_per_view(mesh, calls)
        print(f"| {len(mesh.faces):,} | {reused:.2f} | {naive:.2f} | {naive / reused:.2f}x |")

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
