"""Safe loading of untrusted mesh files, and normalisation to the unit sphere."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import trimesh

from renderer.errors import DegenerateMeshError, FileTooLargeError
from renderer.formats import detect_format
from renderer.workers import parser_pool


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on one untrusted load. `max_memory` caps the parser's address space."""

    max_bytes: int = 64 * 2**20
    max_faces: int = 2_000_000
    timeout_s: float = 20.0
    max_memory: int = 4 * 2**30


def load_mesh(
    source: bytes | str | os.PathLike,
    *,
    filename: str | None = None,
    limits: LoadLimits | None = None,
) -> trimesh.Trimesh:
    """Load a mesh from bytes or a path; the format comes from the content, then the name.

    Parsing runs in a separate worker process under `limits` (size, faces, time, memory).
    Scenes are flattened with their transforms into one mesh; vertices no face uses are
    dropped. Raises a `renderer.MeshError` subclass naming the problem.
    """
    limits = limits or LoadLimits()
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), limits)
    else:
        path = os.fspath(source)
        _check_size(os.stat(path).st_size, limits)
        with open(path, "rb") as file:
            data = file.read(limits.max_bytes + 1)
        _check_size(len(data), limits)
        filename = filename or os.path.basename(path)
    fmt = detect_format(data, filename)
    vertices, faces = parser_pool().parse(
        data, fmt, limits.max_faces, limits.max_memory, limits.timeout_s
    )
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    mesh.remove_unreferenced_vertices()
    return mesh


def _check_size(size: int, limits: LoadLimits) -> None:
    if size > limits.max_bytes:
        raise FileTooLargeError(
            f"the file is {size / 2**20:.1f} MiB; the limit is {limits.max_bytes / 2**20:.1f} MiB"
        )


def normalize(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy centred on its bounding box's centre and scaled so the farthest vertex is at 1."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    centred = vertices - (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    radius = float(np.linalg.norm(centred, axis=1).max()) if len(centred) else 0.0
    if not radius > 0:
        raise DegenerateMeshError("the mesh has no extent: all its vertices coincide")
    return trimesh.Trimesh(vertices=centred / radius, faces=mesh.faces.copy(), process=False)
