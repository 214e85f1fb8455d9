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
_AREA_CHUNK = 1 << 16
# Vertex clustering starts on a grid this fine (cells per side of the bounding cube): at
# most a fraction of a pixel in views of 224 px, where the unit sphere is 200 px wide.
_FINEST_GRID = 1024
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


def parse_mesh(data: bytes, fmt: str, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """`parse_request` for bytes alone, in this process (what the worker runs)."""
    return parse_request(LoadRequest(data, fmt, LoadLimits(max_faces=max_faces)))


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
    """At most `budget` faces of the same shape, by vertex clustering: vertices in one cell
    of a grid over the bounding cube become one (their mean), faces that collapse or
    repeat go. The grid starts finer than a view's pixels and is coarsened until the faces
    fit. Linear in the mesh's size (a sort aside), so the time limit holds for the largest
    legal mesh."""
    low = vertices.min(axis=0)
    extent = float((vertices.max(axis=0) - low).max())
    resolution = _FINEST_GRID
    while True:
        cluster = _cluster(vertices, low, extent, resolution)
        # A surface has about two faces per vertex: guess the grid that fits the budget.
        estimate = 2 * (int(cluster.max()) + 1)
        if estimate > budget and resolution > 2:
            shrink = max(min((budget / estimate) ** 0.5, 0.7), 0.1)
            resolution = max(int(resolution * shrink), 2)
            continue
        clustered = _unique_faces(cluster[faces])
        if len(clustered) <= budget or resolution <= 2:
            break
        resolution = max(int(resolution * 0.7), 2)
    counts = np.bincount(cluster)
    means = np.stack(
        [np.bincount(cluster, weights=vertices[:, k]) / counts for k in range(3)], axis=1
    )
    return means, clustered[:budget]


def _cluster(vertices: np.ndarray, low: np.ndarray, extent: float, resolution: int) -> np.ndarray:
    """The grid cell of every vertex, numbered 0..cells-1."""
    cells = np.minimum((vertices - low) * (resolution / extent), resolution - 1).astype(np.int64)
    keys = (cells[:, 0] * resolution + cells[:, 1]) * resolution + cells[:, 2]
    return np.unique(keys, return_inverse=True)[1].reshape(-1)


def _unique_faces(faces: np.ndarray) -> np.ndarray:
    """Faces that kept three corners, each once (in its first winding)."""
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
                  & (faces[:, 0] != faces[:, 2])]  # fmt: skip
    faces = _canonical_rows(faces)
    if len(faces) and faces.max() < 1 << 21:  # three indices in one int64: a fast 1-D sort
        _, first = np.unique(
            (faces[:, 0] << 42) | (faces[:, 1] << 21) | faces[:, 2], return_index=True
        )
    else:
        _, first = np.unique(faces, axis=0, return_index=True)
    return faces[np.sort(first)]


def _canonical_rows(faces: np.ndarray) -> np.ndarray:
    """Each face rotated to start at its smallest index (winding kept), so a face met twice
    is the same row."""
    first = faces.argmin(axis=1)
    order = (first[:, None] + np.arange(3)) % 3
    return np.take_along_axis(faces, order, axis=1)


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
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.reshape(-1)] = True
    corners = vertices[used]
    diagonal = float(np.linalg.norm(corners.max(axis=0) - corners.min(axis=0)))
    if diagonal == 0.0 or not _area_exceeds(vertices, faces, _MIN_RELATIVE_AREA * diagonal**2):
        raise DegenerateMeshError(
            f"all {len(faces)} faces have zero area (the mesh collapses to a point or a line)"
        )


def _area_exceeds(vertices: np.ndarray, faces: np.ndarray, threshold: float) -> bool:
    """Whether the faces' total area passes `threshold`, summed in chunks that stop as
    soon as it does (the first chunk, for any real mesh)."""
    total = 0.0
    for start in range(0, len(faces), _AREA_CHUNK):
        corners = vertices[faces[start : start + _AREA_CHUNK]]
        edges = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        total += 0.5 * float(np.linalg.norm(edges, axis=1).sum())
        if total > threshold:
            return True
    return False


def _parse_off(data: bytes, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    fast = _parse_plain_off(data, max_faces)
    if fast is not None:
        return fast
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


_PLAIN_OFF_HEADER = re.compile(rb"OFF(\d*)")


def _parse_plain_off(data: bytes, max_faces: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The common large case in one pass over the tokens: no comments, XYZ vertices,
    triangles only. None when the file is anything else (the line parser reads it)."""
    if b"#" in data or not data.isascii():
        return None
    tokens = data.split()
    header = _PLAIN_OFF_HEADER.fullmatch(tokens[0]) if tokens else None
    if header is None:
        return None
    counts = ([header.group(1)] if header.group(1) else []) + tokens[1:3]
    try:
        num_vertices, num_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        return None
    if num_faces > max_faces:
        raise TooManyFacesError(
            f"the file declares {num_faces:,} faces; the limit is {max_faces:,}"
        )
    body = tokens[(3 if header.group(1) else 4) :]
    if num_vertices < 0 or num_faces < 0 or len(body) != 3 * num_vertices + 4 * num_faces:
        return None
    try:
        vertices = np.array(body[: 3 * num_vertices], dtype=np.float64).reshape(-1, 3)
        faces = np.array(body[3 * num_vertices :], dtype=np.int64).reshape(-1, 4)
    except ValueError:
        return None
    if not (faces[:, 0] == 3).all():
        return None
    return vertices, faces[:, 1:]


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
