"""Upload limits enforced while the body streams in, before anything is parsed or stored.

`BodyLimitMiddleware` counts the bytes of every request body against a per-route limit
and answers 413 as soon as the count passes it (or at once, from Content-Length), so an
oversized upload never reaches the multipart parser's temporary files in full.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import HTTPException, UploadFile, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Multipart framing (boundaries, part headers, small form fields) on top of the file itself.
MULTIPART_SLACK = 64 * 1024


def too_large(limit: int) -> str:
    return f"upload too large: the limit is {format_bytes(limit)} (GMVIT_MAX_UPLOAD_BYTES)"


def format_bytes(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


class BodyLimitMiddleware:
    """Refuse request bodies over `limit_for(method, path)` bytes with 413 (None: no limit)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], tuple[int, str] | None]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self.limit_for(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        limit, message = found

        async def refuse() -> None:
            body = json.dumps({"detail": message}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status.HTTP_413_CONTENT_TOO_LARGE,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await refuse()
            return

        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await refuse()
                    # The app sees a client that went away and stops parsing.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


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
