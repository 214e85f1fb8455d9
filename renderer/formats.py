"""Which mesh format a file is, from its content first and its name second.

Content wins because uploads arrive with wrong or missing names; the name decides only
when the content says nothing (an OBJ without vertex lines near the top, a truncated file).
Known non-meshes (images, archives, documents) are named in the error, so a person knows
what they sent.
"""

from __future__ import annotations

import io
import os
import re
import zipfile

from renderer.errors import EmptyMeshError, MalformedMeshError, UnsupportedFormatError

FORMATS_BY_EXTENSION: dict[str, str] = {
    ".off": "off",
    ".obj": "obj",
    ".stl": "stl",
    ".ply": "ply",
    ".glb": "glb",
    ".gltf": "gltf",
    ".3mf": "3mf",
}
SUPPORTED = "OFF, OBJ, STL, PLY, glTF/GLB or 3MF"

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
_OFF_KEYWORD = re.compile(rb"\s*(?:ST)?C?N?4?n?OFF")
_OBJ_LINE = re.compile(rb"(?m)^[ \t]*(?:v|f)[ \t]+[-+.\d]")
_THREEMF_MODEL = "3d/3dmodel.model"
_SNIFF_BYTES = 1 << 16


def detect_format(data: bytes, filename: str | None = None) -> str:
    """Return one of FORMATS_BY_EXTENSION's values, or raise UnsupportedFormatError."""
    if not data:
        raise EmptyMeshError("the file is empty (0 bytes)")
    head = data[:_SNIFF_BYTES]
    extension = os.path.splitext(filename)[1].lower() if filename else ""

    if head.startswith(b"glTF"):
        return "glb"
    if re.match(rb"ply\r?\n", head):
        return "ply"
    if _OFF_KEYWORD.match(head):
        return "off"
    if len(data) >= 84 and 84 + 50 * int.from_bytes(data[80:84], "little") == len(data):
        return "stl"
    if re.match(rb"\s*solid\b", head):
        return "stl"
    if head.lstrip().startswith(b"{") and b'"asset"' in head:
        return "gltf"
    if head.startswith(b"PK\x03\x04"):
        return _detect_zip(data, extension)
    for magic, what in _NOT_MESHES:
        if head.startswith(magic):
            raise UnsupportedFormatError(f"this is {what}, not a mesh; send {SUPPORTED}")
    if b"\x00" not in head and _OBJ_LINE.search(head):
        return "obj"
    if extension in FORMATS_BY_EXTENSION:
        return FORMATS_BY_EXTENSION[extension]
    if extension:
        raise UnsupportedFormatError(
            f"the {extension} format is not supported and the content is not recognised; "
            f"send {SUPPORTED}"
        )
    raise UnsupportedFormatError(f"the content is not a mesh format we know; send {SUPPORTED}")


def _detect_zip(data: bytes, extension: str) -> str:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        if extension == ".3mf":
            raise MalformedMeshError("this 3MF file is truncated or damaged") from None
        raise UnsupportedFormatError(
            f"this is a damaged ZIP archive, not a mesh; send {SUPPORTED}"
        ) from None
    if any(name.lower().lstrip("/") == _THREEMF_MODEL for name in names):
        return "3mf"
    raise UnsupportedFormatError(
        f"this is a ZIP archive without a 3MF model, not a mesh; send {SUPPORTED}"
    )
