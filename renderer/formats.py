"""Every mesh format we read, one table entry each, and which one a file is.

One `Format` holds all we know of a format: its names, how its content is recognised
(magic bytes), which reader parses it, which way is up in it, and whether its header
declares a face count we can check before parsing. The README's format table, the CLI help
and the extensions the service and page accept are all derived from `FORMATS`.

A file's format comes from its content first and its name second: uploads arrive with wrong
or missing names, and the name decides only when the content says nothing (an OBJ without
vertex lines near the top, a format without magic bytes). Known non-meshes (images,
archives, documents) are named in the error, so a person knows what they sent.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from renderer.errors import EmptyMeshError, MalformedMeshError, UnsupportedFormatError

# Readers: our own OFF parser, trimesh, the Open Asset Import Library (assimp).
OWN, TRIMESH, ASSIMP = "gmvit", "trimesh", "assimp"
# Up axes: "z" is what the rigs expect; "y" is rotated to Z-up after loading; "file" reads
# the axis the file declares (FBX's GlobalSettings), Y-up when it declares none.
Z_UP, Y_UP, FILE_UP = "z", "y", "file"

_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    extensions: tuple[str, ...]
    reader: str
    up: str
    sniff: Callable[[bytes], bool] | None = None  # on the whole content
    declared_faces: Callable[[bytes], int | None] | None = None  # from the header, if any
    note: str = ""  # why this reader, what the axis means: shown in the README table
    # A sniff that other formats' content can pass too (OBJ's "v 1 2 3" lines also start
    # NFF and other text formats): a known extension decides before it.
    weak_sniff: bool = False

    @property
    def extension(self) -> str:
        """The extension a reader is told when the file came without a usable name."""
        return self.extensions[0]


def _starts(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda data: data.startswith(magics)


def _text_starts(pattern: bytes) -> Callable[[bytes], bool]:
    regex = re.compile(pattern)
    return lambda data: regex.match(data[:_SNIFF_BYTES]) is not None


def _xml_root(tag: bytes) -> Callable[[bytes], bool]:
    """An XML document whose root element is `tag` (after the prolog and comments)."""
    prolog = rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<"
    regex = re.compile(prolog + tag, re.S | re.I)
    return lambda data: regex.match(data[:_SNIFF_BYTES]) is not None


def _stl(data: bytes) -> bool:
    if len(data) >= 84 and 84 + 50 * int.from_bytes(data[80:84], "little") == len(data):
        return True  # binary: the header's triangle count matches the length exactly
    return re.match(rb"\s*solid\b", data[:_SNIFF_BYTES]) is not None


def _stl_declared_faces(data: bytes) -> int | None:
    if data.lstrip()[:5].lower() == b"solid" or len(data) < 84:
        return None
    declared = int.from_bytes(data[80:84], "little")
    if 84 + 50 * declared != len(data):
        raise MalformedMeshError(
            f"this binary STL is truncated or damaged: its header promises {declared:,} "
            f"triangles ({84 + 50 * declared:,} bytes) but the file has {len(data):,} bytes"
        )
    return declared


def _ply_declared_faces(data: bytes) -> int | None:
    header = re.search(rb"element\s+face\s+(\d+)", data[: data.find(b"end_header")])
    return int(header.group(1)) if header else None


_OBJ_LINE = re.compile(rb"(?m)^[ \t]*(?:v|f)[ \t]+[-+.\d]")


def _obj(data: bytes) -> bool:
    head = data[:_SNIFF_BYTES]
    return b"\x00" not in head and _OBJ_LINE.search(head) is not None


def _gltf_json(data: bytes) -> bool:
    head = data[:_SNIFF_BYTES]
    return head.lstrip().startswith(b"{") and b'"asset"' in head


def _lightwave(data: bytes) -> bool:
    return data[:4] == b"FORM" and data[8:12] in (b"LWO2", b"LWOB", b"LXOB")


def _blender(data: bytes) -> bool:
    if data.startswith(b"\x1f\x8b"):  # Blender saves compressed files as gzip
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:4096], 7)
        except zlib.error:
            return False
    return data.startswith(b"BLENDER")


def _fbx(data: bytes) -> bool:
    return data.startswith(b"Kaydara FBX Binary") or re.match(rb"\s*;\s*FBX", data) is not None


# What assimp does with the axes, checked on its test models (a figure must stand): most
# importers hand over Y-up scenes (turning Z-up formats themselves), a few pass the file's
# Z-up coordinates through.
_TURNED = "Z-up in the file; assimp turns it Y-up"
_RAW_Z = "Z-up; assimp passes it through as it is"

# Detection order matters where one format's signature could appear in another's content:
# binary magics first, then text formats with a distinctive first line, OBJ's loose
# "v 1 2 3" test last.
FORMATS: tuple[Format, ...] = (
    Format(
        "glb",
        "glTF 2.0, binary",
        (".glb",),
        TRIMESH,
        Y_UP,
        _starts(b"glTF"),
        note="Y-up by the glTF specification",
    ),
    Format(
        "ply",
        "PLY (ASCII and binary)",
        (".ply",),
        TRIMESH,
        Z_UP,
        _text_starts(rb"ply\r?\n"),
        _ply_declared_faces,
    ),
    Format(
        "off",
        "OFF (also COFF, NOFF, ModelNet's glued header)",
        (".off",),
        OWN,
        Z_UP,
        _text_starts(rb"\s*(?:ST)?C?N?4?n?OFF"),
        note="our parser: ModelNet's `OFF490 518 0` header, polygons fanned",
    ),
    Format("stl", "STL (ASCII and binary)", (".stl",), TRIMESH, Z_UP, _stl, _stl_declared_faces),
    Format(
        "gltf",
        "glTF 2.0, JSON (with its .bin and images)",
        (".gltf",),
        TRIMESH,
        Y_UP,
        _gltf_json,
        note="Y-up by the glTF specification",
    ),
    Format("3mf", "3MF", (".3mf",), TRIMESH, Z_UP, note="Z-up by the 3MF specification"),
    Format(
        "fbx",
        "Autodesk FBX (binary and ASCII)",
        (".fbx",),
        ASSIMP,
        FILE_UP,
        _fbx,
        note="up axis from the file's GlobalSettings",
    ),
    Format(
        "dae",
        "Collada",
        (".dae",),
        ASSIMP,
        Y_UP,
        _xml_root(rb"COLLADA"),
        note="assimp applies the file's <up_axis>",
    ),
    Format("blend", "Blender (also compressed)", (".blend",), ASSIMP, Z_UP, _blender, note=_RAW_Z),
    Format("3ds", "3D Studio", (".3ds",), ASSIMP, Y_UP, note=_TURNED),
    Format("x", "DirectX", (".x",), ASSIMP, Y_UP, _starts(b"xof 0")),
    Format("lwo", "LightWave object", (".lwo", ".lxo"), ASSIMP, Y_UP, _lightwave),
    Format(
        "lws", "LightWave scene (with its .lwo files)", (".lws",), ASSIMP, Y_UP, _starts(b"LWSC")
    ),
    Format("ac", "AC3D", (".ac", ".acc", ".ac3d"), ASSIMP, Y_UP, _starts(b"AC3D")),
    Format(
        "ase",
        "3ds Max ASCII scene",
        (".ase", ".ask"),
        ASSIMP,
        Y_UP,
        _text_starts(rb"\s*\*3DSMAX_ASCIIEXPORT"),
    ),
    Format(
        "dxf",
        "AutoCAD DXF",
        (".dxf",),
        ASSIMP,
        Y_UP,
        _text_starts(rb"\s*0\s*\r?\n\s*SECTION\b"),
        note=_TURNED,
    ),
    Format("ifc", "IFC (STEP)", (".ifc",), ASSIMP, Y_UP, _starts(b"ISO-10303-21;"), note=_TURNED),
    Format("md2", "Quake II model", (".md2",), ASSIMP, Y_UP, _starts(b"IDP2")),
    Format("md3", "Quake III model", (".md3",), ASSIMP, Y_UP, _starts(b"IDP3")),
    Format("md5mesh", "Doom 3 model", (".md5mesh",), ASSIMP, Y_UP, _text_starts(rb"\s*MD5Version")),
    Format(
        "mdl",
        "Quake / 3D GameStudio / Half-Life model",
        (".mdl",),
        ASSIMP,
        Y_UP,
        _starts(b"IDPO", b"MDL7", b"MDL5", b"MDL4", b"MDL3", b"MDL2", b"IDST"),
    ),
    Format("mdc", "Return to Castle Wolfenstein model", (".mdc",), ASSIMP, Y_UP, _starts(b"IDPC")),
    Format(
        "hmp",
        "3D GameStudio terrain",
        (".hmp",),
        ASSIMP,
        Z_UP,
        _starts(b"HMP4", b"HMP5", b"HMP7"),
        note=_RAW_Z,
    ),
    Format("ms3d", "Milkshape 3D", (".ms3d",), ASSIMP, Y_UP, _starts(b"MS3D000000")),
    Format("b3d", "Blitz3D", (".b3d",), ASSIMP, Y_UP, _starts(b"BB3D")),
    Format(
        "cob",
        "Caligari TrueSpace",
        (".cob", ".scn"),
        ASSIMP,
        Z_UP,
        _starts(b"Caligari "),
        note=_RAW_Z,
    ),
    Format(
        "q3o",
        "Quick3D",
        (".q3o", ".q3s"),
        ASSIMP,
        Z_UP,
        _starts(b"quick3Do", b"quick3Ds"),
        note=_RAW_Z,
    ),
    Format("iqm", "Inter-Quake Model", (".iqm",), ASSIMP, Y_UP, _starts(b"INTERQUAKEMODEL\x00")),
    Format(
        "amf",
        "Additive Manufacturing File",
        (".amf",),
        ASSIMP,
        Z_UP,
        _xml_root(rb"amf\b"),
        note="Z-up by the AMF specification",
    ),
    Format("x3d", "X3D (XML)", (".x3d",), ASSIMP, Y_UP, _xml_root(rb"X3D\b")),
    Format("xgl", "XGL / ZGL", (".xgl", ".zgl"), ASSIMP, Y_UP, _xml_root(rb"WORLD\b")),
    Format("irrmesh", "Irrlicht mesh", (".irrmesh",), ASSIMP, Y_UP, _xml_root(rb"mesh\b")),
    Format(
        "irr",
        "Irrlicht scene (with its meshes)",
        (".irr",),
        ASSIMP,
        Y_UP,
        _xml_root(rb"irr_scene\b"),
    ),
    Format("ogex", "OpenGEX", (".ogex",), ASSIMP, Y_UP),
    Format("smd", "Valve SMD", (".smd", ".vta"), ASSIMP, Z_UP, note=_RAW_Z),
    Format("nff", "Neutral File Format", (".nff", ".enff"), ASSIMP, Y_UP),
    Format("3d", "Unreal (with its _a/_d files)", (".3d", ".uc"), ASSIMP, Y_UP),
    Format("ter", "Terragen terrain", (".ter",), ASSIMP, Y_UP, _starts(b"TERRAGENTERRAIN ")),
    Format("raw", "raw triangles (PovRay)", (".raw",), ASSIMP, Y_UP),
    Format("sib", "Silo", (".sib",), ASSIMP, Y_UP),
    Format(
        "obj",
        "Wavefront OBJ",
        (".obj",),
        TRIMESH,
        Z_UP,
        _obj,
        note="no axis in the file: taken as written",
        weak_sniff=True,
    ),
)
FORMATS_BY_NAME: dict[str, Format] = {fmt.name: fmt for fmt in FORMATS}
FORMATS_BY_EXTENSION: dict[str, Format] = {
    extension: fmt for fmt in FORMATS for extension in fmt.extensions
}
# A ZIP is a 3MF or an upload of a mesh with its files; the parser worker tells which.
# Collada's .zae is such a ZIP.
ZIP = "zip"
ZIP_EXTENSIONS = (".zip", ".zae")
SUPPORTED = "a 3D mesh (OFF, OBJ, STL, PLY, glTF/GLB, 3MF, FBX, Collada, Blender, 3DS, ... )"

_NOT_MESHES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (WebP image or audio)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"PK\x05\x06", "an empty ZIP archive"),
)


def accepted_extensions() -> list[str]:
    """Every file extension we read (lower case, with the dot, sorted), ZIPs included."""
    return sorted([*FORMATS_BY_EXTENSION, *ZIP_EXTENSIONS])


_READER_NAMES = {OWN: "gmvit (own parser)", TRIMESH: "trimesh", ASSIMP: "assimp"}
_UP_NAMES = {Z_UP: "Z", Y_UP: "Y, turned Z-up", FILE_UP: "the file's, turned Z-up"}


def _by_content(fmt: Format) -> str:
    if fmt.name == "3mf":
        return "yes (a ZIP with 3D/3dmodel.model)"
    return "yes" if fmt.sniff is not None else "name only"


def markdown_table() -> str:
    """The README's format table, one row per `FORMATS` entry."""
    rows = [
        "| format | extensions | by content | reader | up axis | note |",
        "|---|---|---|---|---|---|",
    ]
    for fmt in sorted(FORMATS, key=lambda f: (f.reader != OWN, f.reader != TRIMESH, f.title)):
        rows.append(
            f"| {fmt.title} | {' '.join(fmt.extensions)} | "
            f"{_by_content(fmt)} | {_READER_NAMES[fmt.reader]} | "
            f"{_UP_NAMES[fmt.up]} | {fmt.note} |"
        )
    rows.append(
        "| ZIP of a mesh and its files | .zip .zae | yes | the mesh's | the mesh's | "
        "a 3MF if it holds 3D/3dmodel.model |"
    )
    return "\n".join(rows)


def extension_of(filename: str | None) -> str:
    return os.path.splitext(filename)[1].lower() if filename else ""


def detect_format(data: bytes, filename: str | None = None) -> str:
    """The name of the file's format (a `FORMATS` entry) or `ZIP`; or a typed error."""
    if not data:
        raise EmptyMeshError("the file is empty (0 bytes)")
    extension = extension_of(filename)
    if data.startswith(b"PK\x03\x04"):
        return ZIP
    for fmt in FORMATS:
        if fmt.sniff is not None and not fmt.weak_sniff and fmt.sniff(data):
            return fmt.name
    for magic, what in _NOT_MESHES:
        if data.startswith(magic):
            raise UnsupportedFormatError(f"this is {what}, not a mesh; send {SUPPORTED}")
    if extension in FORMATS_BY_EXTENSION:
        return FORMATS_BY_EXTENSION[extension].name
    for fmt in FORMATS:
        if fmt.sniff is not None and fmt.weak_sniff and fmt.sniff(data):
            return fmt.name
    if extension in ZIP_EXTENSIONS:
        raise MalformedMeshError("this ZIP archive is damaged")
    if extension:
        raise UnsupportedFormatError(
            f"the {extension} format is not supported and the content is not recognised; "
            f"send {SUPPORTED}"
        )
    raise UnsupportedFormatError(f"the content is not a mesh format we know; send {SUPPORTED}")
