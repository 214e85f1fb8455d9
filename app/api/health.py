"""The service itself: liveness, readiness, metrics, the formats it reads, the web page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import metrics, schemas
from app.service import ShapeService
from renderer.layout import MESH_EXTENSIONS

router = APIRouter(tags=["service"])
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@router.get("/healthz", response_model=schemas.Health)
def healthz() -> schemas.Health:
    """The process answers."""
    return schemas.Health(status="ok")


@router.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}})
def readyz(request: Request, response: Response) -> schemas.Ready:
    """Model loaded, index open; with Redis: reachable, and a `gmvit worker` alive to run
    jobs (503 otherwise, with the reason in `detail`)."""
    service: ShapeService | None = request.app.state.service
    backend = "redis" if request.app.state.settings.redis_url else "in-process"
    if service is None:
        response.status_code = 503
        return schemas.Ready.starting(backend)
    readiness = service.readiness()
    if not readiness.ready:
        response.status_code = 503
    return schemas.Ready(
        ready=readiness.ready,
        model_loaded=True,
        model_id=service.embedder.model_id,
        random_weights=service.random_weights,
        index_open=True,
        shapes=readiness.shapes,
        jobs_backend=backend,
        redis_reachable=readiness.redis_reachable,
        workers=readiness.workers,
        detail=readiness.detail,
    )


@router.get("/formats", response_model=schemas.Formats)
def formats() -> schemas.Formats:
    """The mesh file extensions the service reads."""
    return schemas.Formats(extensions=list(MESH_EXTENSIONS))


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format: request latency per route, stage timings, index size, jobs."""
    service: ShapeService | None = request.app.state.service
    if service is not None:
        metrics.INDEX_SHAPES.set(service.index.count())
        metrics.POOL_ADMITTED.set(service.pool.admitted)
        metrics.JOBS_ACTIVE.set(sum(not job.finished for job in service.recent_jobs()))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
