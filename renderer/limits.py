"""Bounds on one untrusted load, from the upload's bytes to the faces that reach the renderer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadLimits:
    """`max_bytes` counts the mesh and every file it refers to; `max_memory` caps the
    parser's address space; `max_depth` and `max_nodes` bound a scene's node graph.
    Meshes with more than `render_faces` faces are simplified to that many in the parser
    worker: views of a few hundred pixels cannot show more, and the renderer's time and
    memory grow with what it is given."""

    max_bytes: int = 64 * 2**20
    max_faces: int = 2_000_000
    timeout_s: float = 20.0
    max_memory: int = 4 * 2**30
    max_depth: int = 256
    max_nodes: int = 100_000
    render_faces: int = 200_000
