"""The HTTP API (FastAPI). `create_app()` builds it; `gmvit serve` runs it under uvicorn.

Every route is typed (OpenAPI at /docs); errors are JSON `{"detail": "..."}`. The mesh
work of a request (render, embed) runs on the bounded `RenderPool`; index calls (which
may wait on another process's write lock) run on threads, never on the event loop. The
index is shared safely by threads and by other processes (RQ workers committing rebuilds,
see `index.shape_index`): the server sees their commits on its next call.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import numpy as np
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

import gmvit
import index as shape_index
import renderer
from app import jobs, metrics, model, pipeline, schemas
from app.auth import require_read, require_write
from app.pool import PoolFull, RenderPool
from app.settings import Settings
from app.uploads import MULTIPART_SLACK, BodyLimitMiddleware, format_bytes, read_upload

log = logging.getLogger("gmvit.app")

STATIC_DIR = Path(__file__).parent / "static"
TOP_CLASSES = 5
PREVIEW_PX = 512
DEFAULT_NEIGHBORS = 5
JSON_BODY_LIMIT = 1 * 2**20


@dataclass
class Service:
    """Everything a request needs, made once at startup."""

    settings: Settings
    embedder: gmvit.Embedder
    index: Any  # index.ShapeIndex
    add_lock: threading.Lock  # makes "no shape has this sha256, so add it" one step
    pool: RenderPool
    jobs: jobs.InProcessJobs | jobs.RQJobs
    random_weights: bool

    def close(self) -> None:
        self.jobs.close()
        self.pool.shutdown()
        self.index.close()


def open_service(settings: Settings) -> Service:
    weights = model.weights_path(settings)
    embedder = gmvit.Embedder(weights, threads=settings.threads)
    index = model.open_index(settings, embedder.model_id)
    if settings.redis_url:
        job_runner: jobs.InProcessJobs | jobs.RQJobs = jobs.RQJobs(settings.redis_url)
    else:
        # In-process jobs die with the process: whatever a crash left behind is garbage.
        shutil.rmtree(settings.jobs_dir, ignore_errors=True)
        job_runner = jobs.InProcessJobs(jobs.ReindexTarget(settings, embedder, index, threads=1))
    return Service(
        settings=settings,
        embedder=embedder,
        index=index,
        add_lock=threading.Lock(),
        pool=RenderPool(settings.workers, settings.queue),
        jobs=job_runner,
        random_weights=weights == model.random_weights_path(settings),
    )


def start_demo(service: Service) -> jobs.Job | None:
    """On the first start for a model, index a small synthetic set so search answers.

    `DATA_DIR/demo/shapes/<class>/train/*.off` are indexed (labels from the folders);
    `DATA_DIR/demo/examples/<class>_NNNN.off`, one held-out shape per class, are left out
    for trying classify and search.
    """
    settings = service.settings
    root = settings.data_path / "demo"
    shapes = root / "shapes"
    empty = service.index.count() == 0
    marker = jobs.demo_marker(shapes, service.embedder.model_id)
    if not settings.demo or not empty or marker.exists():
        return None
    if not root.is_dir():
        from gmvit.data import synth

        staging = settings.data_path / f".demo-{uuid.uuid4().hex}"
        synth.generate(
            staging / "shapes",
            seed=0,
            train_per_class=settings.demo_per_class,
            test_per_class=1,
            progress=False,
        )
        (staging / "examples").mkdir()
        for held_out in sorted((staging / "shapes").glob("*/test/*")):
            held_out.rename(staging / "examples" / held_out.name)
            held_out.parent.rmdir()
        staging.rename(root)
    log.info("indexing the synthetic demo set in %s (a background job)", shapes)
    metrics.JOBS_SUBMITTED.labels("demo").inc()
    return service.jobs.submit(
        "demo",
        "demo",
        shapes,
        inside=[shapes],
        cleanup=False,
        since_id=service.index.next_shape_id(),
    )


# ------------------------------------------------------------------ helpers


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def thumbnail_url(shape_id: int) -> str:
    return f"/shapes/{shape_id}/thumbnail.png"


def shape_out(record: Any) -> schemas.Shape:
    return schemas.Shape(
        id=record.id,
        name=record.name,
        label=record.label,
        sha256=record.sha256,
        source=record.source,
        model_id=record.model_id,
        added_at=record.added_at,
        updated_at=record.updated_at,
        thumbnail_url=thumbnail_url(record.id),
    )


def hit_out(hit: Any) -> schemas.Hit:
    return schemas.Hit(
        id=hit.id,
        name=hit.record.name,
        label=hit.record.label,
        score=round(float(hit.score), 6),
        thumbnail_url=thumbnail_url(hit.id),
    )


async def describe_on_pool(
    service: Service,
    data: bytes,
    filename: str | None,
    timings: dict[str, float],
    *,
    preview_px: int | None = None,
) -> tuple[pipeline.Described, bytes | None]:
    """Render and embed a mesh on the bounded pool (503 when full); with `preview_px`, also
    the views as one PNG at most that wide (a thumbnail, or the page's picture). `queue`
    in the timings is the wait for a free pool thread."""

    admitted = time.perf_counter()

    def work() -> tuple[pipeline.Described, bytes | None]:
        waited = time.perf_counter() - admitted
        metrics.STAGE_SECONDS.labels("queue").observe(waited)
        timings["queue"] = round(waited * 1000.0, 2)
        described = pipeline.describe(
            data, service.embedder, service.settings, filename=filename, timings=timings
        )
        if preview_px is None:
            return described, None
        with metrics.stage("preview", timings):
            return described, pipeline.grid_png(described.views, max_px=preview_px)

    try:
        return await service.pool.run(work)
    except PoolFull:
        metrics.POOL_REJECTED.inc()
        raise


async def read_mesh(service: Service, file: UploadFile, timings: dict[str, float]) -> bytes:
    with metrics.stage("read", timings):
        return await read_upload(file, service.settings.max_upload_bytes)


def add_unless_present(
    service: Service,
    described: pipeline.Described,
    thumbnail: bytes,
    *,
    name: str,
    sha256: str,
    label: str | None,
) -> tuple[Any, bool]:
    """(the new shape, False), or (the shape with this sha256, True) if one exists."""
    with service.add_lock:
        existing = service.index.find_sha256(sha256)
        if existing is not None:
            return existing, True
        record = service.index.add(
            described.descriptor, name=name, sha256=sha256, source="upload", label=label
        )
    pipeline.write_atomic(service.settings.thumbs_dir / f"{record.id}.png", thumbnail)
    return record, False


def neighbor_vote(service: Service, vector: np.ndarray, k: int) -> schemas.NeighborVote:
    """The k nearest labelled shapes and the label most of them carry (ties: higher
    summed score)."""
    candidates = service.index.search(vector, k=min(4 * k, 400))
    labelled = [hit for hit in candidates if hit.record.label is not None][:k]
    votes = Counter(hit.record.label for hit in labelled)
    scores: Counter[str] = Counter()
    for hit in labelled:
        scores[hit.record.label] += float(hit.score)
    winner = max(votes, key=lambda name: (votes[name], scores[name])) if votes else None
    return schemas.NeighborVote(
        label=winner, votes=dict(votes), k=k, shapes=[hit_out(hit) for hit in labelled]
    )


def top_classes(service: Service, probabilities: np.ndarray) -> list[schemas.ClassProbability]:
    order = np.argsort(-probabilities)[:TOP_CLASSES]
    return [
        schemas.ClassProbability(
            label=service.embedder.class_names[i], probability=round(float(probabilities[i]), 6)
        )
        for i in order
    ]


def upload_path(index: int, filename: str | None) -> PurePosixPath:
    """A safe relative path for an uploaded file of a batch: its folders kept (they carry
    the labels), `..`, absolute parts and empty names dropped."""
    parts = [
        part
        for part in PurePosixPath((filename or "").replace("\\", "/")).parts
        if part not in ("", ".", "..", "/")
    ]
    return PurePosixPath(*parts) if parts else PurePosixPath(f"file-{index:05d}")


def save_upload(root: Path, number: int, filename: str | None, data: bytes) -> None:
    """Store file `number` of an uploaded batch under `root` (never outside it)."""
    target = root / upload_path(number, filename)
    while target.exists():
        target = target.with_name(f"{number}-{target.name}")
    pipeline.write_atomic(target, data)


def job_out(service: Service, job: jobs.Job) -> schemas.JobOut:
    seen = job.seen_at(time.time(), service.settings.job_stale_s, lambda: service.jobs.waiting(job))
    if seen.state != job.state:
        # Its worker died: recorded, so that no piece still queued commits it later.
        service.jobs.store.update(
            job.id, state=seen.state, error=seen.error, finished_at=time.time()
        )
        shutil.rmtree(jobs.job_folder(service.settings, job.id), ignore_errors=True)
    return schemas.JobOut(
        id=seen.id,
        kind=seen.kind,
        source=seen.source,
        state=seen.state,
        done=seen.done,
        total=seen.total,
        indexed=seen.indexed,
        failed=seen.failed,
        failures=[schemas.JobFailure(**failure) for failure in seen.failures],
        error=seen.error,
        created_at=seen.created_at,
        started_at=seen.started_at,
        finished_at=seen.finished_at,
    )


def not_found(what: str) -> HTTPException:
    return HTTPException(404, detail=f"{what} not found")


# ------------------------------------------------------------------ routes

ERRORS = {
    401: {"model": schemas.ErrorOut, "description": "missing or wrong X-API-Key"},
    413: {"model": schemas.ErrorOut, "description": "upload over the size limit"},
    422: {"model": schemas.ErrorOut, "description": "the file is not a mesh we can render"},
    503: {"model": schemas.ErrorOut, "description": "every render worker busy; Retry-After"},
}
READ = [Depends(require_read)]
WRITE = [Depends(require_write)]
MeshFile = Annotated[UploadFile, File(description="a mesh: OFF, OBJ, STL, PLY, glTF/GLB, 3MF")]

api = APIRouter()


@api.post(
    "/classify",
    response_model=schemas.ClassifyOut,
    dependencies=READ,
    responses=ERRORS,
    tags=["shapes"],
)
async def classify(
    service: ServiceDep,
    file: MeshFile,
    top_k: Annotated[int, Form(ge=1, le=100, description="neighbours in the vote")] = (
        DEFAULT_NEIGHBORS
    ),
) -> schemas.ClassifyOut:
    """The class of a mesh: the network head's top 5 and a vote of the k nearest labelled
    shapes in the index, with the rendered views and per-stage timings."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = await read_mesh(service, file, timings)
    described, views_png = await describe_on_pool(
        service, data, file.filename, timings, preview_px=PREVIEW_PX
    )
    with metrics.stage("search", timings):
        neighbors = await asyncio.to_thread(neighbor_vote, service, described.descriptor, top_k)
    timings["total"] = round((time.perf_counter() - start) * 1000.0, 2)
    probabilities = top_classes(service, described.probabilities)
    return schemas.ClassifyOut(
        label=probabilities[0].label,
        probabilities=probabilities,
        neighbors=neighbors,
        model_id=service.embedder.model_id,
        views_png=pipeline.png_data_url(views_png),
        timings_ms=timings,
    )


@api.post(
    "/search",
    response_model=schemas.SearchOut,
    dependencies=READ,
    responses=ERRORS,
    tags=["shapes"],
)
async def search(
    service: ServiceDep,
    file: Annotated[UploadFile | None, File(description="a mesh to search with")] = None,
    shape_id: Annotated[int | None, Form(description="or: an indexed shape's id")] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    label: Annotated[str | None, Form(description="only shapes with this label")] = None,
) -> schemas.SearchOut:
    """The nearest indexed shapes to an uploaded mesh or to an indexed shape (which is
    left out of its own results)."""
    if (file is None) == (shape_id is None):
        raise HTTPException(400, detail="send either a mesh as `file` or a `shape_id`, not both")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    exclude = None
    if file is not None:
        data = await read_mesh(service, file, timings)
        described, _ = await describe_on_pool(service, data, file.filename, timings)
        vector = described.descriptor
    else:
        vector = await asyncio.to_thread(service.index.vector, shape_id)
        if vector is None:
            raise not_found(f"shape {shape_id}")
        exclude = shape_id
    with metrics.stage("search", timings):
        hits = await asyncio.to_thread(
            service.index.search, vector, top_k, label=label or None, exclude=exclude
        )
    timings["total"] = round((time.perf_counter() - start) * 1000.0, 2)
    return schemas.SearchOut(results=[hit_out(hit) for hit in hits], timings_ms=timings)


@api.post(
    "/shapes",
    response_model=schemas.ShapeCreated,
    status_code=201,
    dependencies=WRITE,
    responses={**ERRORS, 200: {"model": schemas.ShapeCreated, "description": "a duplicate"}},
    tags=["shapes"],
)
async def add_shape(
    service: ServiceDep,
    response: Response,
    file: MeshFile,
    name: Annotated[str | None, Form(description="defaults to the file name")] = None,
    label: Annotated[str | None, Form(description="the shape's class, if known")] = None,
) -> schemas.ShapeCreated:
    """Index a mesh. An identical file (same sha256) already indexed is not added again:
    the answer is that shape with `duplicate: true` (status 200 instead of 201)."""
    timings: dict[str, float] = {}
    data = await read_mesh(service, file, timings)
    sha256 = pipeline.sha256_of(data)
    record = await asyncio.to_thread(service.index.find_sha256, sha256)
    duplicate = record is not None
    if not duplicate:
        described, thumbnail = await describe_on_pool(
            service, data, file.filename, timings, preview_px=pipeline.THUMBNAIL_PX
        )
        # The same file may have been added by another request while this one rendered.
        record, duplicate = await asyncio.to_thread(
            add_unless_present,
            service,
            described,
            thumbnail,
            name=name or file.filename or sha256[:12],
            sha256=sha256,
            label=label or None,
        )
    if duplicate:
        response.status_code = 200
    return schemas.ShapeCreated(id=record.id, duplicate=duplicate, shape=shape_out(record))


@api.get("/shapes", response_model=schemas.ShapePage, dependencies=READ, tags=["shapes"])
def list_shapes(
    service: ServiceDep,
    label: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> schemas.ShapePage:
    """Indexed shapes, oldest first, optionally only those with `label`."""
    records = service.index.list(label=label or None, offset=offset, limit=limit)
    total = service.index.count(label=label or None)
    return schemas.ShapePage(
        total=total, offset=offset, limit=limit, shapes=[shape_out(r) for r in records]
    )


@api.get(
    "/shapes/{shape_id}",
    response_model=schemas.Shape,
    dependencies=READ,
    tags=["shapes"],
    responses={404: {"model": schemas.ErrorOut}},
)
def get_shape(service: ServiceDep, shape_id: int) -> schemas.Shape:
    record = service.index.get(shape_id)
    if record is None:
        raise not_found(f"shape {shape_id}")
    return shape_out(record)


@api.get(
    "/shapes/{shape_id}/thumbnail.png",
    dependencies=READ,
    tags=["shapes"],
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": schemas.ErrorOut}},
)
def get_thumbnail(service: ServiceDep, shape_id: int) -> FileResponse:
    """A small PNG of the shape's rendered views."""
    path = service.settings.thumbs_dir / f"{shape_id}.png"
    record = service.index.get(shape_id)
    if record is None or not path.is_file():
        raise not_found(f"thumbnail of shape {shape_id}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


@api.delete(
    "/shapes/{shape_id}",
    response_model=schemas.Deleted,
    dependencies=WRITE,
    tags=["shapes"],
    responses={401: ERRORS[401], 404: {"model": schemas.ErrorOut}},
)
def delete_shape(service: ServiceDep, shape_id: int) -> schemas.Deleted:
    removed = service.index.remove(shape_id)
    if not removed:
        raise not_found(f"shape {shape_id}")
    (service.settings.thumbs_dir / f"{shape_id}.png").unlink(missing_ok=True)
    return schemas.Deleted(id=shape_id, deleted=True)


@api.post(
    "/reindex",
    response_model=schemas.JobOut,
    status_code=202,
    dependencies=WRITE,
    tags=["jobs"],
    responses={
        401: ERRORS[401],
        403: {"model": schemas.ErrorOut},
        413: ERRORS[413],
        400: {"model": schemas.ErrorOut},
    },
)
async def reindex(
    service: ServiceDep,
    folder: Annotated[
        str | None, Form(description="a folder on the server, under GMVIT_ALLOWED_ROOTS")
    ] = None,
    files: Annotated[
        list[UploadFile] | None,
        File(description="or: mesh files; their folder names (class/x.off) become labels"),
    ] = None,
) -> schemas.JobOut:
    """Rebuild the index from a folder in the ModelNet layout (`<class>/[train|test/]x.off`,
    labels from the class folders) or from uploaded files, as a background job. The new
    index replaces the old one atomically when the job succeeds; until then, and if it
    fails or is cancelled, the old one serves."""
    settings = service.settings
    if (folder is None) == (not files):
        raise HTTPException(400, detail="send either a server-side `folder` or `files`")
    # Disk and Redis work runs on threads: the event loop keeps serving meanwhile.
    if folder is not None:
        try:
            root = await asyncio.to_thread(jobs.resolve_folder, folder, settings.allowed_roots)
        except jobs.FolderRefused as exc:
            raise HTTPException(403, detail=str(exc)) from None
        inside = [Path(r).expanduser().resolve() for r in settings.allowed_roots]
        source, cleanup, job_id = str(root), False, None
    else:
        # Inside the job's own folder: removed with it, however the job ends.
        job_id = jobs.new_job_id()
        root = jobs.job_folder(settings, job_id) / "files"
        try:
            for number, upload in enumerate(files):
                data = await read_upload(upload, settings.max_upload_bytes)
                await asyncio.to_thread(save_upload, root, number, upload.filename, data)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, root, True)
            raise
        inside, source, cleanup = [root], "upload", True
    since_id = await asyncio.to_thread(service.index.next_shape_id)
    job = await asyncio.to_thread(
        service.jobs.submit,
        "reindex",
        source,
        root,
        inside=inside,
        cleanup=cleanup,
        since_id=since_id,
        job_id=job_id,
    )
    metrics.JOBS_SUBMITTED.labels("reindex").inc()
    return await asyncio.to_thread(job_out, service, job)


@api.get("/jobs", response_model=schemas.JobList, dependencies=READ, tags=["jobs"])
def list_jobs(service: ServiceDep) -> schemas.JobList:
    """The 50 most recent jobs, newest first."""
    return schemas.JobList(jobs=[job_out(service, job) for job in service.jobs.store.recent()])


@api.get(
    "/jobs/{job_id}",
    response_model=schemas.JobOut,
    dependencies=READ,
    tags=["jobs"],
    responses={404: {"model": schemas.ErrorOut}},
)
def get_job(service: ServiceDep, job_id: str) -> schemas.JobOut:
    job = service.jobs.store.get(job_id)
    if job is None:
        raise not_found(f"job {job_id}")
    return job_out(service, job)


@api.delete(
    "/jobs/{job_id}",
    response_model=schemas.JobOut,
    dependencies=WRITE,
    tags=["jobs"],
    responses={401: ERRORS[401], 404: {"model": schemas.ErrorOut}},
)
def cancel_job(service: ServiceDep, job_id: str) -> schemas.JobOut:
    """Cancel a queued or running job; the index it was building is thrown away."""
    job = service.jobs.store.get(job_id)
    if job is None:
        raise not_found(f"job {job_id}")
    if job.state not in jobs.FINISHED:
        service.jobs.store.request_cancel(job_id)
        if job.state == jobs.QUEUED:
            service.jobs.store.update(job_id, state=jobs.CANCELLED, finished_at=time.time())
        job = service.jobs.store.get(job_id)
    return job_out(service, job)


@api.get("/healthz", response_model=schemas.Health, tags=["service"])
def healthz() -> schemas.Health:
    """The process answers."""
    return schemas.Health(status="ok")


@api.get(
    "/readyz",
    response_model=schemas.Ready,
    tags=["service"],
    responses={503: {"model": schemas.Ready}},
)
def readyz(request: Request, response: Response) -> schemas.Ready:
    """Model loaded, index open, Redis reachable when configured (503 otherwise)."""
    service: Service | None = getattr(request.app.state, "service", None)
    settings: Settings = request.app.state.settings
    redis_ok = None
    detail = None
    shapes = None
    if service is not None:
        shapes = service.index.count()
        if settings.redis_url:
            try:
                service.jobs.ping()
                redis_ok = True
            except Exception as exc:
                redis_ok = False
                detail = f"redis unreachable: {exc}"
    ready = service is not None and redis_ok is not False
    if not ready:
        response.status_code = 503
    return schemas.Ready(
        ready=ready,
        model_loaded=service is not None,
        model_id=service.embedder.model_id if service else None,
        random_weights=bool(service and service.random_weights),
        index_open=service is not None,
        shapes=shapes,
        jobs_backend="redis" if settings.redis_url else "in-process",
        redis_reachable=redis_ok,
        detail=detail if service is not None else "starting: loading the model and index",
    )


@api.get(
    "/metrics",
    tags=["service"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format: request latency per route, stage timings, index size, jobs."""
    service: Service | None = getattr(request.app.state, "service", None)
    if service is not None:
        metrics.INDEX_SHAPES.set(service.index.count())
        metrics.POOL_ADMITTED.set(service.pool.admitted)
        metrics.JOBS_ACTIVE.set(
            sum(job.state not in jobs.FINISHED for job in service.jobs.store.recent())
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@api.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


# ------------------------------------------------------------------ the app


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

        async def record_status(message) -> None:
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

    @app.exception_handler(shape_index.ShapeIndexError)
    async def index_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)


class StartupRefused(RuntimeError):
    """The service will not start on this data dir or model (the message says why)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service. Model, index and job runner are opened at startup (lifespan)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            service = await asyncio.to_thread(open_service, settings)
        except (shape_index.ShapeIndexError, gmvit.GMViTError) as exc:
            log.error("cannot start: %s", exc)
            raise StartupRefused(str(exc)) from None
        app.state.service = service
        try:
            await asyncio.to_thread(start_demo, service)
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
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(RequestMetricsMiddleware)
    return app
