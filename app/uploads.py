"""Reading an uploaded file within its limit (the whole body's limit is enforced while it
streams in, by `app.middleware.BodyLimitMiddleware`)."""

from __future__ import annotations

from fastapi import HTTPException, UploadFile, status

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
