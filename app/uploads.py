"""Reading an uploaded file within its limit (the whole body's limit is enforced while it
streams in, by `app.middleware.BodyLimitMiddleware`)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, UploadFile, status

import renderer.bundle

# Multipart framing (boundaries, part headers, small form fields) on top of the file itself.
MULTIPART_SLACK = 64 * 1024


def too_large(limit: int) -> str:
    return f"upload too large: the limit is {format_bytes(limit)} (GMVIT_MAX_UPLOAD_BYTES)"


def format_bytes(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


async def read_upload(file: UploadFile, limit: int) -> bytes:
    """The whole uploaded file, refused with 413 past `limit` bytes or 400 when empty."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=too_large(limit))
    if not data:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=f"the uploaded file {file.filename!r} is empty"
        )
    return data


@dataclass
class MeshUpload:
    """A mesh as it was sent: one file, or several `file` parts (a .gltf with its .bin and
    images, an OBJ with its .mtl) that the renderer reads as one mesh."""

    source: bytes | dict[str, bytes]
    filename: str | None  # the mesh's file name (the main one of several parts)


async def read_mesh_parts(files: list[UploadFile], limit: int) -> MeshUpload:
    """The `file` parts of a request as one mesh; `limit` bounds each part (the request
    as a whole is bounded by BodyLimitMiddleware)."""
    parts = [(upload.filename, await read_upload(upload, limit)) for upload in files]
    if len(parts) == 1:
        return MeshUpload(parts[0][1], parts[0][0])
    named: dict[str, bytes] = {}
    for number, (filename, data) in enumerate(parts):
        name = renderer.bundle.safe_name(filename or "") or f"file-{number}"
        if name in named:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail=f"two uploaded files are named {name!r}"
            )
        named[name] = data
    return MeshUpload(named, renderer.bundle.main_file(sorted(named)))
