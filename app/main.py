"""The FastAPI application: `create_app()` builds it; `gmvit serve` runs it under uvicorn.

The app opens a `ShapeService` at startup (the model, the index, the job backend) and
closes it at shutdown; routes (in `app.api`) only translate HTTP to service calls. Errors
are JSON `{"detail": "..."}` everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import gmvit
import renderer
from app import schemas
from app.api import health, jobs, search, shapes
from app.api.deps import READ_SCHEME
from app.api.health import STATIC_DIR
from app.middleware import (
    AdmissionMiddleware,
    BodyLimitMiddleware,
    RequestMetricsMiddleware,
    SecurityHeadersMiddleware,
    StartupRefusalMiddleware,
)
from app.pool import PoolFull
from app.service import ShapeService
from app.settings import Settings, load_settings
from app.uploads import MULTIPART_SLACK, format_bytes
from index import ShapeIndexError

log = logging.getLogger("gmvit.app")
JSON_BODY_LIMIT = 1 * 2**20


class StartupRefused(RuntimeError):
    """The service will not start on this data dir or model (the message says why)."""


def body_limits(settings: Settings):
    mesh_limit = settings.max_upload_bytes + MULTIPART_SLACK
    mesh_message = (
        f"upload too large: the limit is {format_bytes(settings.max_upload_bytes)} per mesh "
        "(GMVIT_MAX_UPLOAD_BYTES)"
    )
    batch_message = (
        f"upload too large: the limit is {format_bytes(settings.max_batch_upload_bytes)} per "
        "reindex request (GMVIT_MAX_BATCH_UPLOAD_BYTES); reindex a server-side folder instead"
    )

    def limit_for(method: str, path: str) -> tuple[int, str] | None:
        if method != "POST":
            return JSON_BODY_LIMIT, "request body too large"
        if path == "/reindex":
            return settings.max_batch_upload_bytes + MULTIPART_SLACK, batch_message
        return mesh_limit, mesh_message

    return limit_for


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg"))
    return "; ".join(parts) or "invalid request"


def add_error_handlers(app: FastAPI) -> None:
    import redis

    @app.exception_handler(renderer.MeshError)
    async def mesh_error(_: Request, exc: renderer.MeshError) -> JSONResponse:
        code = 413 if isinstance(exc, renderer.FileTooLargeError) else 422
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(PoolFull)
    async def pool_full(_: Request, exc: PoolFull) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after_s)}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(ShapeIndexError)
    async def index_error(_: Request, exc: ShapeIndexError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def redis_away(_: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis is unreachable: %s", exc)
        return JSONResponse(
            {"detail": "the job queue (Redis) is unreachable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )


def document_as_served(app: FastAPI) -> None:
    """Make the app's OpenAPI document say what the service does, where FastAPI's defaults
    would not: every 422 is an `ErrorOut` sentence (`invalid_request`), not FastAPI's list
    of validation errors; a read's key is optional (needed only where GMVIT_READ_KEY is set).
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()  # FastAPI's, kept in app.openapi_schema: changed in place
            error = {"$ref": "#/components/schemas/ErrorOut"}
            for path in schema["paths"].values():
                for operation in path.values():
                    invalid = operation["responses"].get("422", {}).get("content", {})
                    if "application/json" in invalid:
                        invalid["application/json"]["schema"] = error
                    if {READ_SCHEME: []} in operation.get("security", []):
                        operation["security"].append({})
            components = schema["components"]["schemas"]
            components.setdefault("ErrorOut", schemas.ErrorOut.model_json_schema())
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
        return app.openapi_schema

    app.openapi = openapi


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service. Model, index and job backend are opened at startup (lifespan)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            service = await asyncio.to_thread(ShapeService.open, settings)
        except (ShapeIndexError, gmvit.GMViTError) as exc:
            raise StartupRefused(str(exc)) from None
        app.state.service = service
        try:
            await asyncio.to_thread(service.start_demo)
            yield
        finally:
            app.state.service = None
            await asyncio.to_thread(service.close)

    app = FastAPI(
        title="gmvit",
        version="0.1.0",
        summary="3D shape classification and retrieval: upload a mesh, get its class and "
        "the nearest indexed shapes.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = None
    for module in (search, shapes, jobs, health):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_error_handlers(app)
    document_as_served(app)

    def pool():
        return app.state.service.pool if app.state.service is not None else None

    app.add_middleware(
        BodyLimitMiddleware, limit_for=body_limits(settings), timeout_s=settings.upload_timeout_s
    )
    app.add_middleware(AdmissionMiddleware, pool=pool)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(StartupRefusalMiddleware, refusal=StartupRefused)
    return app
