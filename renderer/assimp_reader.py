"""The formats of the Open Asset Import Library (assimp): FBX, Collada, Blender, 3DS, ...

We use `pyassimp` (the binding that ships with assimp, pinned to the version of Debian's
`libassimp5`) for what it does well: finding the library and describing its structs. We
do not use its `load`: that converts every vertex and face in Python loops (seconds for a
large mesh) and fails on meshes that mix points, lines and triangles. Instead the scene is
imported through assimp's C API with our own file system (`aiFileIO`): assimp asks it for
the main file and every file that one names, and it answers only from the `Bundle`, so a
file that names `/etc/passwd` or `../../x` gets nothing. Arrays are copied out with numpy,
and the node graph is walked here, under the same depth, node and face limits as glTF.

Runs inside the parser worker only (never imported by the service process).
"""

from __future__ import annotations

import ctypes
import itertools
from ctypes import POINTER, c_char_p, c_float, c_int, c_size_t, c_uint, c_void_p

import numpy as np
from pyassimp import structs
from pyassimp.helper import search_library

from renderer.bundle import Bundle
from renderer.errors import MalformedMeshError, MeshError, TooManyFacesError
from renderer.graph import GraphLimits, flatten

_TRIANGULATE = 0x8
_VALIDATE_DATA_STRUCTURE = 0x400
_SORT_BY_PRIMITIVE_TYPE = 0x8000
_IMPORT_FLAGS = _TRIANGULATE | _VALIDATE_DATA_STRUCTURE | _SORT_BY_PRIMITIVE_TYPE
_TRIANGLE = 0x4
_PRIMITIVE_TYPES = 0xF  # the bits above flag how polygons were encoded, not a type
# Skeleton-only files (motion capture) would otherwise get stick figures made up for them.
_PROPERTIES = {b"IMPORT_NO_SKELETON_MESHES": 1, b"IMPORT_FBX_READ_ANIMATIONS": 0}
_FACE = np.dtype([("count", "<u4"), ("pad", "<u4"), ("indices", "<u8")])
_METADATA_INT32 = 1


class _File(ctypes.Structure):
    pass


class _FileIO(ctypes.Structure):
    pass


_ReadProc = ctypes.CFUNCTYPE(c_size_t, POINTER(_File), c_void_p, c_size_t, c_size_t)
_WriteProc = ctypes.CFUNCTYPE(c_size_t, POINTER(_File), c_void_p, c_size_t, c_size_t)
_TellProc = ctypes.CFUNCTYPE(c_size_t, POINTER(_File))
_SeekProc = ctypes.CFUNCTYPE(c_int, POINTER(_File), c_size_t, c_int)
_FlushProc = ctypes.CFUNCTYPE(None, POINTER(_File))
# Callbacks may only return simple types: the aiFile* goes back as an address.
_OpenProc = ctypes.CFUNCTYPE(c_void_p, POINTER(_FileIO), c_char_p, c_char_p)
_CloseProc = ctypes.CFUNCTYPE(None, POINTER(_FileIO), POINTER(_File))
_File._fields_ = [
    ("ReadProc", _ReadProc),
    ("WriteProc", _WriteProc),
    ("TellProc", _TellProc),
    ("FileSizeProc", _TellProc),
    ("SeekProc", _SeekProc),
    ("FlushProc", _FlushProc),
    ("UserData", c_void_p),
]
_FileIO._fields_ = [("OpenProc", _OpenProc), ("CloseProc", _CloseProc), ("UserData", c_void_p)]


def _library() -> ctypes.CDLL:
    dll = search_library()[-1]
    dll.aiImportFileExWithProperties.restype = POINTER(structs.Scene)
    dll.aiImportFileExWithProperties.argtypes = [c_char_p, c_uint, POINTER(_FileIO), c_void_p]
    dll.aiCreatePropertyStore.restype = c_void_p
    dll.aiSetImportPropertyInteger.argtypes = [c_void_p, c_char_p, c_int]
    dll.aiReleasePropertyStore.argtypes = [c_void_p]
    dll.aiReleaseImport.argtypes = [POINTER(structs.Scene)]
    dll.aiGetErrorString.restype = c_char_p
    return dll


_dll = _library()


class _BundleFiles:
    """assimp's file system: files served from a Bundle, read-only, by name from its root."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.open_files: dict[int, tuple[_File, ctypes.Array, list[int]]] = {}
        self.error: MeshError | None = None  # raised after the import: not across C
        self.io = _FileIO(_OpenProc(self._open), _CloseProc(self._close), None)
        self._procs = (
            _ReadProc(self._read),
            _WriteProc(lambda *_: 0),
            _TellProc(lambda file: self._state(file)[2][0]),
            _TellProc(lambda file: len(self._state(file)[1])),
            _SeekProc(self._seek),
            _FlushProc(lambda _: None),
        )
        self._ids = itertools.count(1)

    def _state(self, file) -> tuple[_File, ctypes.Array, list[int]]:
        return self.open_files[file.contents.UserData]

    def _open(self, _io, name: bytes, mode: bytes):
        if b"w" in mode or b"a" in mode or self.error is not None:
            return None
        try:
            data = self.bundle.open(name.decode("utf-8", "surrogateescape"))
        except MeshError as exc:
            self.error = exc
            return None
        if data is None:
            return None
        key = next(self._ids)
        buffer = (ctypes.c_char * len(data)).from_buffer_copy(data)
        file = _File(*self._procs, key)
        self.open_files[key] = (file, buffer, [0])
        return ctypes.addressof(file)

    def _close(self, _io, file) -> None:
        self.open_files.pop(file.contents.UserData, None)

    def _read(self, file, target, size, count) -> int:
        _, buffer, position = self._state(file)
        if size == 0:
            return 0
        items = min(count, (len(buffer) - position[0]) // size)
        ctypes.memmove(target, ctypes.addressof(buffer) + position[0], items * size)
        position[0] += items * size
        return items

    def _seek(self, file, offset, origin) -> int:
        _, buffer, position = self._state(file)
        if offset >= 2**63:  # size_t carries negative offsets for SEEK_CUR/SEEK_END
            offset -= 2**64
        target = (0, position[0], len(buffer))[origin] + offset
        if not 0 <= target <= len(buffer):
            return -1
        position[0] = target
        return 0


def read_assimp(bundle: Bundle, graph: GraphLimits) -> tuple[np.ndarray, np.ndarray, dict]:
    """Import the bundle's main file; float64 vertices, int64 triangles (every mesh
    instance with its node transform applied) and the scene's metadata (ints only)."""
    files = _BundleFiles(bundle)
    store = _dll.aiCreatePropertyStore()
    try:
        for key, value in _PROPERTIES.items():
            _dll.aiSetImportPropertyInteger(store, key, value)
        scene = _dll.aiImportFileExWithProperties(
            bundle.name.encode("utf-8", "surrogateescape"),
            _IMPORT_FLAGS,
            ctypes.byref(files.io),
            store,
        )
    finally:
        _dll.aiReleasePropertyStore(store)
    if files.error is not None:
        if scene:
            _dll.aiReleaseImport(scene)
        raise files.error
    if not scene:
        message = (_dll.aiGetErrorString() or b"").decode("utf-8", "replace").strip()
        raise MalformedMeshError(
            f"this file could not be read ({message or 'the importer gave no reason'})"[:300]
        )
    try:
        return _flatten_scene(scene.contents, graph) + (_metadata(scene.contents),)
    finally:
        _dll.aiReleaseImport(scene)


def _flatten_scene(scene, graph: GraphLimits) -> tuple[np.ndarray, np.ndarray]:
    meshes = [scene.mMeshes[i].contents for i in range(scene.mNumMeshes)]
    triangles = [_triangle_count(mesh) for mesh in meshes]
    point_vertices = sum(
        mesh.mNumVertices for mesh, count in zip(meshes, triangles, strict=True) if not count
    )

    def children(node_pointer):
        node = node_pointer.contents
        return [node.mChildren[i] for i in range(node.mNumChildren)]

    def local(node_pointer):
        matrix = node_pointer.contents.mTransformation
        return np.array(
            [getattr(matrix, f"{row}{col}") for row in "abcd" for col in "1234"], dtype=np.float64
        ).reshape(4, 4)

    def meshes_of(node_pointer):
        node = node_pointer.contents
        return [node.mMeshes[i] for i in range(node.mNumMeshes)]

    if not scene.mRootNode:
        raise MalformedMeshError("this file's scene has no root node")
    instances = flatten(
        [scene.mRootNode],
        children=children,
        local=local,
        meshes=meshes_of,
        key=lambda pointer: ctypes.addressof(pointer.contents),
        limits=graph,
    )
    for mesh_index, _ in instances:
        if not 0 <= mesh_index < len(meshes):
            raise MalformedMeshError(f"a node refers to mesh {mesh_index}, which does not exist")
    total = sum(triangles[mesh_index] for mesh_index, _ in instances)
    if total > graph.max_faces:
        raise TooManyFacesError(
            f"the scene places {total:,} faces; the limit is {graph.max_faces:,}"
        )
    vertex_parts, face_parts, offset = [], [], 0
    for mesh_index, world in instances:
        if not triangles[mesh_index]:
            continue
        vertices, faces = _mesh_arrays(meshes[mesh_index])
        vertex_parts.append(vertices @ world[:3, :3].T + world[:3, 3])
        face_parts.append(faces + offset)
        offset += len(vertices)
    if not vertex_parts:
        return np.zeros((point_vertices, 3)), np.zeros((0, 3), dtype=np.int64)
    return np.vstack(vertex_parts), np.vstack(face_parts)


def _triangle_count(mesh) -> int:
    triangles_only = mesh.mPrimitiveTypes & _PRIMITIVE_TYPES == _TRIANGLE
    return mesh.mNumFaces if triangles_only and mesh.mFaces else 0


def _mesh_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    count = mesh.mNumVertices
    flat = np.ctypeslib.as_array(ctypes.cast(mesh.mVertices, POINTER(c_float)), (count * 3,))
    vertices = flat.reshape(count, 3).astype(np.float64)
    raw = np.ctypeslib.as_array(
        ctypes.cast(mesh.mFaces, POINTER(ctypes.c_uint8)), (mesh.mNumFaces * _FACE.itemsize,)
    )
    faces = raw.view(_FACE)
    if (faces["count"] != 3).any() or not faces["indices"].all():
        raise MalformedMeshError("a triangulated mesh has a face without three indices")
    # Each face's indices are a separate allocation in assimp: gather them in C (map).
    packed = b"".join(map(ctypes.string_at, faces["indices"].tolist(), itertools.repeat(12)))
    return vertices, np.frombuffer(packed, dtype="<u4").astype(np.int64).reshape(-1, 3)


def _metadata(scene) -> dict[str, int]:
    if not scene.mMetadata:
        return {}
    metadata = scene.mMetadata.contents
    found = {}
    for i in range(metadata.mNumProperties):
        key = metadata.mKeys[i]
        value = metadata.mValues[i]
        if value.mType == _METADATA_INT32 and value.mData:
            name = key.data[: key.length].decode("utf-8", "replace")
            found[name] = ctypes.cast(value.mData, POINTER(ctypes.c_int32)).contents.value
    return found
