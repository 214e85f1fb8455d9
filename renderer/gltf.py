"""glTF 2.0 as it is shipped: a .glb, or a .gltf with its .bin files, maybe Draco-compressed.

Before trimesh sees a glTF, we rewrite it into a small, self-contained one: its buffers read
from the bundle (or the GLB's binary chunk, or data URIs), Draco-compressed primitives
decoded into plain accessors, materials and images dropped (views are grey), and the node
tree flattened into one node per mesh instance carrying its world matrix. The walk of the
node tree (`renderer.graph.flatten`) bounds depth, nodes and instanced faces, and keeps
trimesh's own scene graph flat: its cost grows very fast with nesting depth (a 200-deep
chain of nodes took it 54 s).
"""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import trimesh

from renderer.bundle import Bundle
from renderer.errors import (
    CompressedContentError,
    MalformedMeshError,
    NoFacesError,
    TooManyFacesError,
    UnsupportedFormatError,
)
from renderer.graph import GraphLimits, flatten

DRACO = "KHR_draco_mesh_compression"
_MESHOPT = ("EXT_meshopt_compression", "KHR_meshopt_compression")
_GLB_JSON, _GLB_BIN = 0x4E4F534A, 0x004E4942
# Triangles per primitive mode: 4 triangles, 5 strip, 6 fan; points and lines have none.
_TRIANGLES_OF_MODE = {4: lambda n: n // 3, 5: lambda n: max(n - 2, 0), 6: lambda n: max(n - 2, 0)}
_FLOAT, _UINT32 = 5126, 5125
_INDEX_TYPES = {5121: "<u1", 5123: "<u2", 5125: "<u4"}


def read_gltf(bundle: Bundle, graph: GraphLimits) -> trimesh.Scene:
    """The bundle's main file (.gltf or .glb) as a trimesh Scene of flat mesh instances."""
    document, binary = _split(bundle.data)
    _check_version(document)
    _check_extensions(document)
    instances = _instances(document, graph)
    buffers = _buffers(document, binary, bundle)
    _rewrite_primitives(document, buffers)
    flat = _flat_document(document, instances, buffers)
    resolver = {f"buffer-{i}.bin": data for i, data in enumerate(buffers)}
    return trimesh.load_scene(
        io.BytesIO(json.dumps(flat).encode()),
        file_type="gltf",
        resolver=resolver,
        skip_materials=True,
        process=False,
    )


def _split(data: bytes) -> tuple[dict, bytes | None]:
    """The JSON document and the binary chunk (GLB) of a glTF file."""
    binary = None
    try:
        if data.startswith(b"glTF"):
            version, length = struct.unpack_from("<II", data, 4)
            if version < 2:
                raise UnsupportedFormatError("glTF 1.0 is not supported; export it as glTF 2.0")
            chunks, offset = {}, 12
            while offset + 8 <= min(length, len(data)):
                size, kind = struct.unpack_from("<II", data, offset)
                chunks.setdefault(kind, data[offset + 8 : offset + 8 + size])
                offset += 8 + size + (-size % 4)
            document = json.loads(chunks[_GLB_JSON])
            binary = chunks.get(_GLB_BIN)
        else:
            document = json.loads(data)
    except (KeyError, struct.error, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnsupportedFormatError):
            raise
        raise MalformedMeshError("the JSON part of this glTF file is damaged") from None
    if not isinstance(document, dict):
        raise MalformedMeshError("the JSON part of this glTF file is not an object")
    return document, binary


def _check_version(document: dict) -> None:
    version = str(_dict(document, "asset").get("version", "2.0"))
    # glTF 1.0 keeps its objects in dictionaries by id; 2.0 in arrays.
    by_id = any(isinstance(document.get(key), dict) for key in ("meshes", "nodes", "accessors"))
    if version.startswith("1") or by_id:
        raise UnsupportedFormatError("glTF 1.0 is not supported; export it as glTF 2.0")
    if not version.startswith("2"):
        raise MalformedMeshError(f"this glTF says it is version {version[:20]!r}, not 2.0")


def _declared_extensions(document: dict) -> set[str]:
    declared = set(_list(document, "extensionsUsed")) | set(_list(document, "extensionsRequired"))
    for mesh in _list(document, "meshes"):
        for primitive in _list(mesh, "primitives"):
            declared |= set(_dict(primitive, "extensions"))
    return {name for name in declared if isinstance(name, str)}


def _check_extensions(document: dict) -> None:
    compressed = sorted(_declared_extensions(document).intersection(_MESHOPT))
    if compressed:
        raise CompressedContentError(
            f"this glTF uses {', '.join(compressed)} compression, which we cannot decode; "
            "export it without meshopt (Draco is fine)"
        )


def _buffers(document: dict, binary: bytes | None, bundle: Bundle) -> list[bytes]:
    buffers = []
    for i, buffer in enumerate(_list(document, "buffers")):
        uri = buffer.get("uri") if isinstance(buffer, dict) else None
        if uri is None:
            if i != 0 or binary is None:
                raise MalformedMeshError(f"buffer {i} of this glTF has no data")
            buffers.append(binary)
        elif not isinstance(uri, str):
            raise MalformedMeshError(f"buffer {i} of this glTF has a URI that is not text")
        elif uri.startswith("data:"):
            try:
                buffers.append(base64.b64decode(uri.partition("base64,")[2], validate=False))
            except ValueError:
                raise MalformedMeshError(f"buffer {i} of this glTF is not valid base64") from None
        else:
            data = bundle.read(uri)
            if data is None:
                raise MalformedMeshError(
                    f"this glTF keeps its geometry in {uri[:100]!r}, which is not beside it; "
                    "send the .gltf with its files (a .zip, or several files) or a .glb"
                )
            buffers.append(data)
    return buffers


class _NewAccessors:
    """Accessors for arrays we make (decoded Draco, fans as triangles), kept in one new
    buffer appended to the document's buffers by `close`."""

    def __init__(self, document: dict, buffers: list[bytes]) -> None:
        self.document, self.buffers = document, buffers
        self.views, self.accessors = _list(document, "bufferViews"), _list(document, "accessors")
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, array: np.ndarray, component: int, kind: str) -> int:
        self.views.append(
            {"buffer": len(self.buffers), "byteOffset": self.size, "byteLength": array.nbytes}
        )
        self.accessors.append(
            {
                "bufferView": len(self.views) - 1,
                "componentType": component,
                "count": len(array),
                "type": kind,
            }
        )
        self.parts.append(array.tobytes() + b"\0" * (-array.nbytes % 4))
        self.size += len(self.parts[-1])
        return len(self.accessors) - 1

    def close(self) -> None:
        if self.parts:
            self.document["bufferViews"], self.document["accessors"] = self.views, self.accessors
            self.buffers.append(b"".join(self.parts))


def _rewrite_primitives(document: dict, buffers: list[bytes]) -> None:
    """Draco-compressed primitives become plain POSITION and index accessors, triangle fans
    (which trimesh skips) become triangles."""
    new = _NewAccessors(document, buffers)
    for mesh in _list(document, "meshes"):
        for primitive in _list(mesh, "primitives"):
            if not isinstance(primitive, dict):
                continue
            if _dict(_dict(primitive, "extensions"), DRACO):
                points, faces = _draco(primitive, document, buffers)
                primitive["attributes"] = {"POSITION": new.add(points, _FLOAT, "VEC3")}
                primitive["indices"] = new.add(faces.reshape(-1), _UINT32, "SCALAR")
                primitive["mode"] = 4
                primitive.pop("extensions", None)
                primitive.pop("targets", None)
            elif primitive.get("mode") == 6:
                fan = _indices_of(primitive, document, buffers)
                if len(fan) < 3:
                    continue
                triangles = np.stack(
                    [np.full(len(fan) - 2, fan[0]), fan[1:-1], fan[2:]], axis=1
                ).astype(np.uint32)
                primitive["indices"] = new.add(triangles.reshape(-1), _UINT32, "SCALAR")
                primitive["mode"] = 4
    new.close()


def _draco(primitive: dict, document: dict, buffers: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    import DracoPy

    draco = _dict(_dict(primitive, "extensions"), DRACO)
    try:
        decoded = DracoPy.decode(_view_bytes(document, buffers, draco["bufferView"]))
        points = np.asarray(decoded.points, dtype=np.float32).reshape(-1, 3)
        faces = np.asarray(decoded.faces, dtype=np.uint32).reshape(-1, 3)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise MalformedMeshError(
            f"a Draco-compressed mesh of this glTF could not be decoded ({exc})"[:200]
        ) from None
    return points, faces


def _indices_of(primitive: dict, document: dict, buffers: list[bytes]) -> np.ndarray:
    """A primitive's vertex indices: its index accessor, or 0..n-1 without one."""
    accessors = _list(document, "accessors")
    try:
        if "indices" not in primitive:
            return np.arange(accessors[primitive["attributes"]["POSITION"]]["count"])
        accessor = accessors[primitive["indices"]]
        dtype = np.dtype(_INDEX_TYPES[accessor["componentType"]])
        data = _view_bytes(document, buffers, accessor["bufferView"])
        start = accessor.get("byteOffset", 0)
        return np.frombuffer(data, dtype, accessor["count"], start).astype(np.int64)
    except (KeyError, IndexError, TypeError, ValueError):
        raise MalformedMeshError("a triangle fan of this glTF has unreadable indices") from None


def _view_bytes(document: dict, buffers: list[bytes], view_index: int) -> bytes:
    view = _list(document, "bufferViews")[view_index]
    start = view.get("byteOffset", 0)
    return buffers[view["buffer"]][start : start + view["byteLength"]]


def _instances(document: dict, graph: GraphLimits) -> list[tuple[int, np.ndarray]]:
    nodes, meshes = _list(document, "nodes"), _list(document, "meshes")
    scenes = _list(document, "scenes")
    if scenes:
        chosen = document.get("scene", 0)
        if not isinstance(chosen, int) or not 0 <= chosen < len(scenes):
            raise MalformedMeshError(f"this glTF's default scene {chosen!r} does not exist")
        roots = _indices(_list(scenes[chosen], "nodes"), len(nodes), "node")
    elif nodes:  # no scene: every node that is nobody's child
        children = {
            child
            for node in nodes
            for child in _indices(_list(node, "children"), len(nodes), "node")
        }
        roots = [i for i in range(len(nodes)) if i not in children]
    else:
        roots = []

    def mesh_of(i: int) -> list[int]:
        mesh = nodes[i].get("mesh") if isinstance(nodes[i], dict) else None
        return [] if mesh is None else _indices([mesh], len(meshes), "mesh")

    instances = flatten(
        roots,
        children=lambda i: _indices(_list(nodes[i], "children"), len(nodes), "node"),
        local=lambda i: _local_matrix(nodes[i]),
        meshes=mesh_of,
        key=lambda i: i,
        limits=graph,
    )
    if not instances:  # a scene without meshes in it: the meshes as they are
        instances = [(i, np.eye(4)) for i in range(len(meshes))]
    faces = [_mesh_faces(document, mesh) for mesh in meshes]
    total = sum(faces[mesh] for mesh, _ in instances)
    if total == 0 and instances:
        raise NoFacesError("this glTF has points or lines but no triangles; views need a surface")
    if total > graph.max_faces:
        raise TooManyFacesError(
            f"the scene places {total:,} faces; the limit is {graph.max_faces:,}"
        )
    return instances


def _mesh_faces(document: dict, mesh: dict) -> int:
    """The triangles a mesh declares (from its accessors' counts), before reading them."""
    accessors = _list(document, "accessors")
    total = 0
    for primitive in _list(mesh, "primitives"):
        triangles = _TRIANGLES_OF_MODE.get(primitive.get("mode", 4))
        # Draco primitives keep their accessors (without data), so they count too.
        source = primitive.get("indices", _dict(primitive, "attributes").get("POSITION"))
        if triangles is None or not isinstance(source, int):
            continue
        if 0 <= source < len(accessors) and isinstance(accessors[source], dict):
            count = accessors[source].get("count", 0)
            total += triangles(count) if isinstance(count, int) else 0
    return total


def _local_matrix(node: dict) -> np.ndarray:
    try:
        if "matrix" in node:
            return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
        x, y, z, w = np.array(node.get("rotation", [0, 0, 0, 1]), dtype=np.float64).reshape(4)
        rotation = trimesh.transformations.quaternion_matrix([w, x, y, z])
        scale = np.diag([*np.array(node.get("scale", [1, 1, 1]), dtype=np.float64), 1.0])
        translation = np.eye(4)
        translation[:3, 3] = np.array(node.get("translation", [0, 0, 0]), dtype=np.float64)
        return translation @ rotation @ scale
    except (TypeError, ValueError):
        raise MalformedMeshError("a glTF node has a transform that is not numbers") from None


def _flat_document(document: dict, instances: list, buffers: list[bytes]) -> dict:
    """A glTF with one root node per instance (its world matrix), geometry only."""
    keys = ("asset", "meshes", "accessors", "bufferViews")
    flat = {key: document[key] for key in keys if key in document}
    flat["buffers"] = [
        {"uri": f"buffer-{i}.bin", "byteLength": len(buffer)} for i, buffer in enumerate(buffers)
    ]
    flat["nodes"] = [
        {"mesh": mesh, "matrix": world.T.reshape(-1).tolist()} for mesh, world in instances
    ]
    flat["scenes"] = [{"nodes": list(range(len(instances)))}]
    flat["scene"] = 0
    for mesh in _list(flat, "meshes"):
        for primitive in _list(mesh, "primitives"):
            if isinstance(primitive, dict):
                primitive.pop("material", None)
    return flat


def _list(owner, key: str) -> list:
    value = owner.get(key, []) if isinstance(owner, dict) else []
    if not isinstance(value, list):
        raise MalformedMeshError(f"this glTF's {key!r} is not a list")
    return value


def _dict(owner, key: str) -> dict:
    value = owner.get(key, {}) if isinstance(owner, dict) else {}
    return value if isinstance(value, dict) else {}


def _indices(values: list, count: int, what: str) -> list[int]:
    for value in values:
        if not isinstance(value, int) or not 0 <= value < count:
            raise MalformedMeshError(f"this glTF refers to {what} {value!r}, which does not exist")
    return values
