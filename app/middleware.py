"""The ASGI middleware of the service, outermost first: a refused start told in one line,
request metrics, security headers, admission to the render pool (503 before a body is
read), and body limits (413 while it streams in, 408 when it trickles in too slowly)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.pool import PoolFull

# Routes whose requests carry a mesh to render: a place in the pool is needed first.
MESH_ROUTES = frozenset({"/classify", "/search", "/shapes"})

_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The interactive API docs load Swagger UI / ReDoc from their CDN.
_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; frame-ancestors 'none'"
)


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class StartupRefusalMiddleware:
    """A start the service refuses (a damaged index, `GMVIT_DEVICE=cuda` without a GPU) is
    reported to the server as `cannot start: <reason>`, one line. Starlette reports a failed
    lifespan with its whole traceback, which uvicorn prints, the reason in its last line.
    Any other failure is reported as Starlette reports it; the exception is raised on
    either way, so an in-process client (TestClient) still sees it."""

    def __init__(self, app: ASGIApp, refusal: type[Exception]) -> None:
        self.app = app
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_startup_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # sent once the exception says what it was
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_startup_failure)
        except self.refusal as exc:
            held = [{"type": "lifespan.startup.failed", "message": f"cannot start: {exc}"}]
            raise
        finally:
            for message in held:
                await send(message)


class RequestMetricsMiddleware:
    """Observe each request's latency under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def record_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            metrics.REQUEST_SECONDS.labels(
                getattr(route, "path", "unmatched"), scope["method"], f"{status_code // 100}xx"
            ).observe(time.perf_counter() - start)


class SecurityHeadersMiddleware:
    """A Content-Security-Policy, nosniff and no framing on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = _DOCS_CSP if scope["path"] in ("/docs", "/redoc") else _CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class AdmissionMiddleware:
    """A request to a mesh route needs a place in the render pool before its body is
    read: when every place is taken it gets 503 with Retry-After at once. The place is
    in `scope["state"]["admission"]` for the route, and ends with the request's work."""

    def __init__(self, app: ASGIApp, pool: Callable[[], object | None]) -> None:
        self.app = app
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self.pool()
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in MESH_ROUTES
            or pool is None
        ):
            await self.app(scope, receive, send)
            return
        try:
            admission = pool.admit()
        except PoolFull as full:
            metrics.POOL_REJECTED.inc()
            await send_json(
                send,
                503,
                str(full),
                {"retry-after": str(full.retry_after_s), "connection": "close"},
            )
            return
        scope.setdefault("state", {})["admission"] = admission
        try:
            await self.app(scope, receive, send)
        finally:
            if not admission.in_use:
                admission.close()


class BodyLimitMiddleware:
    """Refuse request bodies over `limit_for(method, path)` bytes with 413, at once from
    Content-Length or as soon as the streamed count passes it (so an oversized upload never
    reaches the multipart parser in full), and bodies that take longer than `timeout_s` to
    arrive with 408."""

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str, str], tuple[int, str] | None],
        timeout_s: float,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self.limit_for(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        limit, too_large = found
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_json(send, 413, too_large, {"connection": "close"})
            return

        deadline = time.monotonic() + self.timeout_s
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                refused = True
                await send_json(
                    send,
                    408,
                    f"the request body did not arrive within {self.timeout_s:g} s "
                    "(GMVIT_UPLOAD_TIMEOUT_S)",
                    {"connection": "close"},
                )
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await send_json(send, 413, too_large, {"connection": "close"})
                    # The app sees a client that went away and stops parsing.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
