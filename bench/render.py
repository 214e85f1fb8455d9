"""Rendering cost per view at 224x224: all views in one pass against one render per view.

One pass (`render_views`): one instanced draw into a layered framebuffer, one read.
Per view (`render_views_per_view`, the renderer before it): pyrender renders and reads
each view. Both reuse this thread's GL context. Under OSMesa they give the same bytes
(checked on every mesh: the last column); under EGL pyrender's own path is multisampled
and the one-pass renderer is not, so there they differ on edges by design. Also: the cost
of one load through the parser worker (pipe round trip) against parsing in-process.

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m bench.render
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass

import trimesh

from renderer import get_rig, load_mesh, normalize, render_views
from renderer.parsing import parse_mesh
from renderer.render import render_views_per_view

TARGET_FACES = (1_000, 10_000, 100_000, 1_000_000)
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


def cost_per_view(mesh: trimesh.Trimesh, calls: int) -> tuple[Cost, Cost, bool]:
    """(one pass, per view, same bytes); the two kinds of call alternate so that load from
    other processes on the machine falls on both alike. CPU time is the steadier measure on
    a shared machine: other processes lengthen the wall time, not this process's CPU time."""
    views = get_rig(RIG).num_views
    one_pass = render_views(mesh, RIG, SIZE)  # warm: this thread's context exists
    same = one_pass.tobytes() == render_views_per_view(mesh, RIG, SIZE).tobytes()
    totals = {render_views: [0.0, 0.0], render_views_per_view: [0.0, 0.0]}
    for _ in range(calls):
        for render, total in totals.items():
            wall, cpu = time.perf_counter(), time.process_time()
            render(mesh, RIG, SIZE)
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
    fast, slow = (Cost(*(1000 * t / (calls * views) for t in total)) for total in totals.values())
    return fast, slow, same


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
        "| faces | one pass ms/view (CPU ms) | per view ms/view (CPU ms) "
        "| per view / one pass: wall (CPU) | same bytes |"
    )
    print("|---:|---:|---:|---:|---|")
    for target in TARGET_FACES:
        mesh = sphere_with_about(target)
        calls = 2 if target >= 1_000_000 else args.calls
        fast, slow, same = cost_per_view(mesh, calls)
        print(
            f"| {len(mesh.faces):,} | {fast.wall_ms:.2f} ({fast.cpu_ms:.2f}) "
            f"| {slow.wall_ms:.2f} ({slow.cpu_ms:.2f}) "
            f"| {slow.wall_ms / fast.wall_ms:.2f}x ({slow.cpu_ms / fast.cpu_ms:.2f}x) "
            f"| {'yes' if same else 'no'} |"
        )

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
