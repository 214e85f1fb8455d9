"""A load request -> validated, Z-up (vertices, faces), simplified to the face budget.

This module runs inside the parser worker process (see `renderer.workers`), so a parser
that hangs, segfaults or eats memory takes down only that process. It imports numpy,
trimesh and the readers only: nothing here may touch OpenGL.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import trimesh

from renderer.bundle import Bundle, is_3mf, main_file, unzip, zip_names
from renderer.errors import (
    BadFaceIndexError,
    DegenerateMeshError,
    EmptyMeshError,
    MalformedMeshError,
    MeshError,
    NoFacesError,
    NonFiniteError,
    TooManyFacesError,
    UnsupportedFormatError,
)
from renderer.formats import (
    ASSIMP,
    FILE_UP,
    FORMATS_BY_NAME,
    OWN,
    Y_UP,
    ZIP,
    Format,
    detect_format,
    extension_of,
)
from renderer.graph import GraphLimits
from renderer.limits import LoadLimits

# Relative to the squared bounding-box diagonal: below this the mesh has no visible area.
_MIN_RELATIVE_AREA = 1e-12
# Y-up to Z-up: a rotation of +90 degrees about X, (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_AXES = np.eye(3)


@dataclass
class LoadRequest:
    """What the parser worker gets: the main file, where its other files are, the limits."""

    data: bytes
    fmt: str  # a FORMATS name, or ZIP
    limits: LoadLimits
    name: str | None = None  # the main file's name (relative to `folder` or in `files`)
    files: dict[str, bytes] | None = None  # the other files of an upload
    folder: str | None = None  # the folder the main file was read from


def parse_request(request: LoadRequest) -> tuple[np.ndarray, np.ndarray]:
    """Float64 (N, 3) vertices and int64 (M, 3) faces, Z-up, at most
    `limits.render_faces` faces. Scenes are flattened with their node transforms applied.
    Raises a `MeshError`."""
    limits = request.limits
    bundle, fmt = _bundle(request)
    vertices, faces, up = _read(bundle, fmt, limits)
    validate(vertices, faces, limits.max_faces)
    if up is not None:
        vertices = vertices @ up.T
    if len(faces) > limits.render_faces:
        vertices, faces = simplify(vertices, faces, limits.render_faces)
    return vertices, faces


def _bundle(request: LoadRequest) -> tuple[Bundle, Format]:
    data, fmt, name, files = request.data, request.fmt, request.name, request.files
    budget = request.limits.max_bytes
    if fmt == ZIP:
        names = zip_names(data, name or "")
        if is_3mf(names):
            fmt = "3mf"
        else:
            files = unzip(data, budget)
            name = main_file(sorted(files))
            data = files[name]
            fmt = detect_format(data, name)
            if fmt == ZIP:
                raise UnsupportedFormatError("a ZIP archive inside a ZIP archive is not read")
    format_ = FORMATS_BY_NAME[fmt]
    if name is None or extension_of(name) not in format_.extensions:
        # Readers that go by the name (assimp) must be told what the content is.
        stem = name.rsplit(".", 1)[0] if name and "." in name else (name or "mesh")
        name = stem + format_.extension
    return Bundle(name, data, budget, files=files, folder=request.folder), format_


def _read(
    bundle: Bundle, fmt: Format, limits: LoadLimits
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Vertices, faces, and the rotation that makes them Z-up (None: they are)."""
    graph = GraphLimits(limits.max_depth, limits.max_nodes, limits.max_faces)
    up = Y_UP_TO_Z_UP if fmt.up in (Y_UP, FILE_UP) else None
    if fmt.reader == OWN:
        vertices, faces = _parse_off(bundle.data, limits.max_faces)
    elif fmt.reader == ASSIMP:
        from renderer.assimp_reader import read_assimp

        vertices, faces, metadata = read_assimp(bundle, graph)
        if fmt.up == FILE_UP:
            up = _declared_up(metadata)
    else:
        if fmt.declared_faces is not None:
            declared = fmt.declared_faces(bundle.data)
            if declared is not None and declared > limits.max_faces:
                raise TooManyFacesError(
                    f"the file declares {declared:,} faces; the limit is {limits.max_faces:,}"
                )
        vertices, faces = _parse_with_trimesh(bundle, fmt, graph)
    return vertices, faces, up


def _declared_up(metadata: dict[str, int]) -> np.ndarray:
    """The rotation to Z-up from FBX's axis settings (Y-up when they are missing or odd):
    the up axis becomes +Z and the file's right (coord) axis +X."""
    try:
        up = _AXES[metadata["UpAxis"]] * (1 if metadata.get("UpAxisSign", 1) >= 0 else -1)
        right = _AXES[metadata["CoordAxis"]] * (1 if metadata.get("CoordAxisSign", 1) >= 0 else -1)
    except (KeyError, IndexError):
        return Y_UP_TO_Z_UP
    if abs(float(up @ right)) > 0.5:
        return Y_UP_TO_Z_UP
    return np.stack([right, np.cross(up, right), up])


def simplify(vertices: np.ndarray, faces: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `budget` faces of the same shape (quadric edge collapses). Vertices shared
    by several faces are merged first: a triangle soup has no edges to collapse."""
    import fast_simplification

    vertices, inverse = np.unique(vertices, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    faces = faces[
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    ]
    vertices, faces = fast_simplification.simplify(
        vertices, faces.astype(np.int32), target_count=budget, agg=7.0
    )
    faces = faces.astype(np.int64)
    if len(faces) > budget:  # it stopped short of the target: keep the largest faces
        faces = _largest_faces(vertices, faces, budget)
    return vertices, faces


def _largest_faces(vertices: np.ndarray, faces: np.ndarray, count: int) -> np.ndarray:
    triangles = vertices[faces]
    area = np.linalg.norm(
        np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1
    )
    return faces[np.sort(np.argsort(-area, kind="stable")[:count])]


def validate(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> None:
    """Raise the typed error for the first problem that would make the views meaningless."""
    if len(vertices) == 0:
        raise EmptyMeshError("the mesh is empty: it has no vertices")
    if len(faces) == 0:
        raise NoFacesError(
            f"the file has {len(vertices)} vertices but no faces (a point cloud or lines); "
            "views need a surface"
        )
    if len(faces) > max_faces:
        raise TooManyFacesError(f"the mesh has {len(faces):,} faces; the limit is {max_faces:,}")
    finite = np.isfinite(vertices).all(axis=1)
    if not finite.all():
        raise NonFiniteError(
            f"{int((~finite).sum())} of {len(vertices)} vertices have NaN or infinite coordinates"
        )
    low, high = int(faces.min()), int(faces.max())
    if low < 0 or high >= len(vertices):
        bad = low if low < 0 else high
        raise BadFaceIndexError(
            f"a face refers to vertex {bad}, but the file has only {len(vertices)} vertices "
            f"(valid: 0..{len(vertices) - 1})"
        )
    triangles = vertices[faces]
    area = (
        0.5
        * np.linalg.norm(
            np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1
        ).sum()
    )
    used = vertices[np.unique(faces)]
    diagonal = float(np.linalg.norm(used.max(axis=0) - used.min(axis=0)))
    if diagonal == 0.0 or area <= _MIN_RELATIVE_AREA * diagonal**2:
        raise DegenerateMeshError(
            f"all {len(faces)} faces have zero area (the mesh collapses to a point or a line)"
        )


def _parse_off(data: bytes, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMeshError("this OFF file contains non-text bytes") from None
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    # ModelNet glues the counts to the keyword ("OFF490 518 0"): split them off.
    keyword = re.match(r"(?:ST)?C?N?4?n?OFF", lines[0])
    rest = lines[0][keyword.end() :].split()
    body = lines[1:]
    if not rest:
        if not body:
            raise MalformedMeshError("this OFF file ends after its keyword: no counts")
        rest, body = body[0].split(), body[1:]
    try:
        num_vertices, num_faces = int(rest[0]), int(rest[1])
    except (ValueError, IndexError):
        raise MalformedMeshError(
            f"the OFF counts line {' '.join(rest)!r} should be 'vertices faces edges'"
        ) from None
    if num_vertices < 0 or num_faces < 0:
        raise MalformedMeshError("the OFF header has negative counts")
    if num_faces > max_faces:
        raise TooManyFacesError(
            f"the file declares {num_faces:,} faces; the limit is {max_faces:,}"
        )
    if len(body) < num_vertices + num_faces:
        raise MalformedMeshError(
            f"this OFF file is truncated: the header promises {num_vertices} vertices and "
            f"{num_faces} faces, but only {len(body)} data lines follow"
        )
    try:
        vertices = _rows(body[:num_vertices], 3, float)
        faces = _off_faces(body[num_vertices : num_vertices + num_faces])
    except (ValueError, IndexError):
        raise MalformedMeshError(
            "this OFF file has a vertex or face line that is not numbers"
        ) from None
    return vertices, faces


def _rows(lines: list[str], width: int, dtype: type) -> np.ndarray:
    """The first `width` numbers of each line; one vectorised parse when all lines agree."""
    flat = np.array(" ".join(lines).split(), dtype=dtype)
    if flat.size == width * len(lines):
        return flat.reshape(-1, width)
    return np.array([line.split()[:width] for line in lines], dtype=dtype).reshape(-1, width)


def _off_faces(lines: list[str]) -> np.ndarray:
    if not lines:
        return np.zeros((0, 3), dtype=np.int64)
    flat = np.array(" ".join(lines).split(), dtype=np.int64)
    if flat.size == 4 * len(lines) and (flat[::4] == 3).all():
        return flat.reshape(-1, 4)[:, 1:]
    triangles: list[tuple[int, int, int]] = []
    for line in lines:
        numbers = [int(token) for token in line.split()]
        count = numbers[0]
        polygon = numbers[1 : 1 + count]
        if len(polygon) != count:
            raise IndexError(count)
        # A fan triangulates the convex polygons OFF files hold; counts below 3 are lines.
        triangles.extend((polygon[0], polygon[k], polygon[k + 1]) for k in range(1, count - 1))
    return np.array(triangles, dtype=np.int64).reshape(-1, 3)


def _parse_with_trimesh(
    bundle: Bundle, fmt: Format, graph: GraphLimits
) -> tuple[np.ndarray, np.ndarray]:
    try:
        if fmt.name in ("gltf", "glb"):
            from renderer.gltf import read_gltf

            scene = read_gltf(bundle, graph)
        else:
            scene = trimesh.load_scene(io.BytesIO(bundle.data), file_type=fmt.name, process=False)
        geometries = scene.dump()
    except MeshError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a parser's failure on bad bytes, whatever its type
        raise MalformedMeshError(
            f"this {fmt.name.upper()} file is truncated or damaged ({type(exc).__name__}: {exc})"[
                :300
            ]
        ) from None
    meshes = [g for g in geometries if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not meshes:
        count = sum(len(getattr(g, "vertices", ())) for g in geometries)
        return np.zeros((count, 3)), np.zeros((0, 3), dtype=np.int64)
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.vstack([np.asarray(m.vertices, dtype=np.float64) for m in meshes])
    faces = np.vstack(
        [
            np.asarray(m.faces, dtype=np.int64) + offset
            for m, offset in zip(meshes, offsets, strict=True)
        ]
    )
    return vertices, faces
