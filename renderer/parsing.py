"""Bytes of a known format -> validated (vertices, faces) arrays.

This module runs inside the parser worker process (see `renderer.workers`), so a parser
that hangs, segfaults or eats memory takes down only that process. It imports numpy and
trimesh only: nothing here may touch OpenGL.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import trimesh

from renderer.errors import (
    BadFaceIndexError,
    CompressedContentError,
    DegenerateMeshError,
    EmptyMeshError,
    MalformedMeshError,
    MeshError,
    NoFacesError,
    NonFiniteError,
    TooManyFacesError,
    UnsupportedFormatError,
)

_COMPRESSION_EXTENSIONS = (
    "KHR_draco_mesh_compression",
    "EXT_meshopt_compression",
    "KHR_meshopt_compression",
)
# Relative to the squared bounding-box diagonal: below this the mesh has no visible area.
_MIN_RELATIVE_AREA = 1e-12


def parse_mesh(data: bytes, fmt: str, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse `data` as `fmt`; return float64 (N, 3) vertices and int64 (M, 3) faces.

    Scenes are flattened with their node transforms applied. Raises a `MeshError`.
    """
    if fmt == "off":
        vertices, faces = _parse_off(data, max_faces)
    else:
        _check_declared_faces(data, fmt, max_faces)
        if fmt in ("gltf", "glb"):
            _check_gltf(data, fmt)
        vertices, faces = _parse_with_trimesh(data, fmt)
    validate(vertices, faces, max_faces)
    return vertices, faces


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


def _check_declared_faces(data: bytes, fmt: str, max_faces: int) -> None:
    """Refuse a huge face count from the header before the parser allocates for it."""
    declared = None
    if fmt == "stl" and not data.lstrip()[:5].lower() == b"solid" and len(data) >= 84:
        declared = int.from_bytes(data[80:84], "little")
        if 84 + 50 * declared != len(data):
            raise MalformedMeshError(
                f"this binary STL is truncated or damaged: its header promises {declared:,} "
                f"triangles ({84 + 50 * declared:,} bytes) but the file has {len(data):,} bytes"
            )
    elif fmt == "ply":
        header = re.search(rb"element\s+face\s+(\d+)", data[: data.find(b"end_header")])
        declared = int(header.group(1)) if header else None
    if declared is not None and declared > max_faces:
        raise TooManyFacesError(f"the file declares {declared:,} faces; the limit is {max_faces:,}")


def _check_gltf(data: bytes, fmt: str) -> None:
    """Refuse what would parse wrongly: compressed geometry, buffers in other files."""
    try:
        if fmt == "glb":
            length = int.from_bytes(data[12:16], "little")
            document = json.loads(data[20 : 20 + length])
        else:
            document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMeshError(f"the JSON part of this {fmt.upper()} file is damaged") from None
    declared = set(document.get("extensionsUsed", [])) | set(document.get("extensionsRequired", []))
    for mesh in document.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            declared |= set(primitive.get("extensions", {}))
    compressed = sorted(declared.intersection(_COMPRESSION_EXTENSIONS))
    if compressed:
        raise CompressedContentError(
            f"this glTF uses {', '.join(compressed)} compression, which we cannot decode; "
            "export it without mesh compression"
        )
    external = [
        buffer["uri"]
        for buffer in document.get("buffers", [])
        if not str(buffer.get("uri", "data:")).startswith("data:")
    ]
    if external:
        raise UnsupportedFormatError(
            f"this glTF keeps its geometry in other files ({', '.join(external)[:100]}); "
            "send a GLB or a glTF with embedded buffers"
        )


def _parse_with_trimesh(data: bytes, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        scene = trimesh.load_scene(io.BytesIO(data), file_type=fmt, process=False)
        geometries = scene.dump()
    except MeshError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a parser's failure on bad bytes, whatever its type
        raise MalformedMeshError(
            f"this {fmt.upper()} file is truncated or damaged ({type(exc).__name__}: {exc})"[:300]
        ) from None
    meshes = [g for g in geometries if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not meshes:
        count = sum(len(getattr(g, "vertices", ())) for g in geometries)
        if count:
            raise NoFacesError(
                f"the file has {count} vertices but no faces (a point cloud or lines); "
                "views need a surface"
            )
        raise EmptyMeshError("the mesh is empty: it has no vertices")
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.vstack([np.asarray(m.vertices, dtype=np.float64) for m in meshes])
    faces = np.vstack(
        [
            np.asarray(m.faces, dtype=np.int64) + offset
            for m, offset in zip(meshes, offsets, strict=True)
        ]
    )
    return vertices, faces
