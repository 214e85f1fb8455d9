"""Safe loading of untrusted mesh files, and normalisation to the unit sphere."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, QhullError

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
    """A copy centred and scaled by a rule that a rotation about +Z does not change.

    Centre: in z, the middle of the z range; in x and y, the centre of the smallest circle
    that encloses the vertices seen from above. Scale: the farthest vertex from that centre
    lands on the unit sphere. Both follow the mesh when it is turned about the up axis (and
    mirrored, scaled or moved), so a shape turned by a multiple of 30 degrees renders as a
    permutation of its circle-12 views. (A bounding box's centre moves when the shape
    turns, and the scale with it.) For a footprint symmetric in x and y, such as an
    axis-aligned box, the centre is the bounding box's.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if not len(vertices):
        raise DegenerateMeshError("the mesh has no extent: all its vertices coincide")
    low_z, high_z = vertices[:, 2].min(), vertices[:, 2].max()
    centre = np.append(enclosing_circle(vertices[:, :2])[0], (low_z + high_z) / 2)
    centred = vertices - centre
    radius = float(np.linalg.norm(centred, axis=1).max())
    if not radius > 0:
        raise DegenerateMeshError("the mesh has no extent: all its vertices coincide")
    return trimesh.Trimesh(vertices=centred / radius, faces=mesh.faces.copy(), process=False)


def enclosing_circle(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, radius) of the smallest circle enclosing 2D points (N, 2).

    Welzl's randomised incremental algorithm over the points of the convex hull, in an order
    fixed by a seeded shuffle, so the answer is deterministic.
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) > 3:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # all on one line: the two ends decide the circle
            direction = points[-1] - points[0]
            along = points @ direction
            points = points[[along.argmin(), along.argmax()]]
    points = points[np.random.default_rng(0).permutation(len(points))]
    scale = max(float(np.abs(points).max()), 1e-300)
    tolerance = 1e-12 * scale

    def inside(centre: np.ndarray, radius: float, p: np.ndarray) -> bool:
        return float(np.linalg.norm(p - centre)) <= radius + tolerance

    centre, radius = points[0], 0.0
    for i in range(1, len(points)):
        if inside(centre, radius, points[i]):
            continue
        centre, radius = points[i], 0.0
        for j in range(i):
            if inside(centre, radius, points[j]):
                continue
            centre = (points[i] + points[j]) / 2
            radius = float(np.linalg.norm(points[i] - centre))
            for k in range(j):
                if not inside(centre, radius, points[k]):
                    centre, radius = _circumcircle(points[i], points[j], points[k])
    return centre, radius


def _circumcircle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """The circle through three points; for (nearly) collinear ones, the circle on the two
    farthest apart as diameter."""
    ab, ac = b - a, c - a
    det = 2.0 * (ab[0] * ac[1] - ab[1] * ac[0])
    if abs(det) <= 1e-14 * max(float(ab @ ab), float(ac @ ac), 1e-300):
        pairs = ((a, b), (a, c), (b, c))
        p, q = max(pairs, key=lambda pq: float(np.linalg.norm(pq[0] - pq[1])))
        return (p + q) / 2, float(np.linalg.norm(p - q)) / 2
    offset = (
        np.array([ac[1] * (ab @ ab) - ab[1] * (ac @ ac), ab[0] * (ac @ ac) - ac[0] * (ab @ ab)])
        / det
    )
    return a + offset, float(np.linalg.norm(offset))
