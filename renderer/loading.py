"""Safe loading of untrusted mesh files, and normalisation to the unit sphere."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import trimesh

from renderer.bundle import main_file, safe_name
from renderer.errors import DegenerateMeshError, FileTooLargeError
from renderer.formats import detect_format
from renderer.limits import LoadLimits
from renderer.parsing import LoadRequest
from renderer.workers import parser_pool


def load_mesh(
    source: bytes | str | os.PathLike,
    *,
    filename: str | None = None,
    limits: LoadLimits | None = None,
) -> trimesh.Trimesh:
    """Load a mesh from bytes or a path; the format comes from the content, then the name.

    From a path, the files it refers to (a glTF's .bin, an OBJ's .mtl) are read from its
    folder and nowhere else. Bytes may be a ZIP holding a mesh and its files. Parsing runs
    in a separate worker process under `limits` (size, faces, time, memory, scene graph).
    Scenes are flattened with their transforms into one Z-up mesh, simplified past
    `limits.render_faces` faces; vertices no face uses are dropped. Raises a
    `renderer.MeshError` subclass naming the problem.
    """
    limits = limits or LoadLimits()
    folder = None
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
        folder = os.path.dirname(os.path.realpath(path))
    name = os.path.basename(filename) if filename else None
    return _load(LoadRequest(data, detect_format(data, name), limits, name=name, folder=folder))


def load_bundle(
    files: Mapping[str, bytes], main: str | None = None, *, limits: LoadLimits | None = None
) -> trimesh.Trimesh:
    """Load a mesh sent as several files (a .gltf with its .bin and images, an OBJ with its
    .mtl): `files` by name, `main` the mesh among them (default: the only file with a mesh
    extension). The mesh reads its other files from `files` only; the size limit applies
    to all of them together. Otherwise as `load_mesh`."""
    limits = limits or LoadLimits()
    named = {
        safe_name(name) or f"file-{i}": bytes(data) for i, (name, data) in enumerate(files.items())
    }
    _check_size(sum(len(data) for data in named.values()), limits)
    name = main_file(sorted(named), main)
    data = named[name]
    return _load(LoadRequest(data, detect_format(data, name), limits, name=name, files=named))


def _load(request: LoadRequest) -> trimesh.Trimesh:
    vertices, faces = parser_pool().parse(request)
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
