"""Batch reindex jobs: state, the runner, and the two ways to run it.

A job walks a folder of meshes (labels from the ModelNet layout's class folders), renders
and embeds each file into a new index generation from `ShapeIndex.rebuild()`, and commits
it atomically at the end. A failed or cancelled job aborts the builder and the old
generation keeps serving.

Job state lives in a `JobStore`: a dict in this process (no Redis) or hashes in Redis, so
an RQ worker on another machine reports progress and sees cancellation. A running job
beats a heartbeat; one whose heartbeat is older than `job_stale_s` (its worker was killed)
is reported as failed.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import renderer
from app import pipeline
from app.settings import Settings
from renderer.formats import FORMATS_BY_EXTENSION

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
MAX_REPORTED_FAILURES = 1000
SPLIT_FOLDERS = {"train", "test"}
RQ_QUEUE = "gmvit"


@dataclass
class Job:
    id: str
    kind: str  # "reindex" or "demo"
    source: str  # the folder, or "upload"
    state: str = QUEUED
    done: int = 0
    total: int = 0
    indexed: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    cancel_requested: bool = False

    def seen_at(self, now: float, stale_s: float) -> Job:
        """This job as a reader should see it: a running job without heartbeat is lost."""
        if self.state == RUNNING and (self.heartbeat_at or 0.0) < now - stale_s:
            return replace(
                self,
                state=FAILED,
                error="the worker running this job stopped (no heartbeat); "
                "the previous index is still serving",
            )
        return self


class JobStore(Protocol):
    def create(self, kind: str, source: str) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def update(self, job_id: str, **fields: Any) -> None: ...
    def add_failure(self, job_id: str, file: str, error: str) -> None: ...
    def request_cancel(self, job_id: str) -> None: ...
    def cancel_requested(self, job_id: str) -> bool: ...
    def recent(self, limit: int = 50) -> list[Job]: ...


class MemoryJobStore:
    """Jobs of this process (no Redis): forgotten on restart, like the threads running them."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self, kind: str, source: str) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind, source=source)
        with self._lock:
            self._jobs[job.id] = job
            return replace(job)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else replace(job, failures=list(job.failures))

    def update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            for name, value in fields.items():
                setattr(job, name, value)

    def add_failure(self, job_id: str, file: str, error: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job.failed += 1
            if len(job.failures) < MAX_REPORTED_FAILURES:
                job.failures.append({"file": file, "error": error})

    def request_cancel(self, job_id: str) -> None:
        self.update(job_id, cancel_requested=True)

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            return self._jobs[job_id].cancel_requested

    def recent(self, limit: int = 50) -> list[Job]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)
            return [replace(job, failures=list(job.failures)) for job in jobs[:limit]]


class RedisJobStore:
    """Jobs in Redis: `gmvit:job:<id>` (a hash of scalars), `...:failures` (a list of JSON),
    `gmvit:jobs` (ids by creation time). Finished jobs expire after a week."""

    KEEP_S = 7 * 24 * 3600

    def __init__(self, redis) -> None:
        self.redis = redis

    @staticmethod
    def _key(job_id: str) -> str:
        return f"gmvit:job:{job_id}"

    def create(self, kind: str, source: str) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind, source=source)
        fields = {k: json.dumps(v) for k, v in asdict(job).items() if k != "failures"}
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key(job.id), mapping=fields)
            pipe.zadd("gmvit:jobs", {job.id: job.created_at})
            pipe.execute()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.redis.pipeline() as pipe:
            pipe.hgetall(self._key(job_id))
            pipe.lrange(self._key(job_id) + ":failures", 0, MAX_REPORTED_FAILURES - 1)
            raw, failures = pipe.execute()
        if not raw:
            return None
        fields = {k.decode(): json.loads(v) for k, v in raw.items()}
        return Job(**fields, failures=[json.loads(item) for item in failures])

    def update(self, job_id: str, **fields: Any) -> None:
        key = self._key(job_id)
        with self.redis.pipeline() as pipe:
            pipe.hset(key, mapping={k: json.dumps(v) for k, v in fields.items()})
            if fields.get("state") in FINISHED:
                pipe.expire(key, self.KEEP_S)
                pipe.expire(key + ":failures", self.KEEP_S)
            pipe.execute()

    def add_failure(self, job_id: str, file: str, error: str) -> None:
        key = self._key(job_id)
        with self.redis.pipeline() as pipe:
            pipe.hincrby(key, "failed", 1)
            pipe.rpush(key + ":failures", json.dumps({"file": file, "error": error}))
            pipe.ltrim(key + ":failures", 0, MAX_REPORTED_FAILURES - 1)
            pipe.execute()

    def request_cancel(self, job_id: str) -> None:
        self.update(job_id, cancel_requested=True)

    def cancel_requested(self, job_id: str) -> bool:
        return json.loads(self.redis.hget(self._key(job_id), "cancel_requested") or "false")

    def recent(self, limit: int = 50) -> list[Job]:
        ids = self.redis.zrevrange("gmvit:jobs", 0, limit - 1)
        jobs = [self.get(job_id.decode()) for job_id in ids]
        return [job for job in jobs if job is not None]


# ------------------------------------------------------------------ folders


class FolderRefused(ValueError):
    """A reindex folder outside the allowed roots, missing, or not a folder."""


def resolve_folder(folder: str | Path, allowed_roots: list[Path]) -> Path:
    """`folder` with symlinks and `..` resolved, if it lies under one of the allowed roots."""
    if not allowed_roots:
        raise FolderRefused(
            "reindexing server-side folders is disabled: set GMVIT_ALLOWED_ROOTS on the server"
        )
    resolved = Path(folder).expanduser().resolve()
    roots = [Path(root).expanduser().resolve() for root in allowed_roots]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise FolderRefused(
            f"{folder} is outside the folders this server may read (GMVIT_ALLOWED_ROOTS)"
        )
    if not resolved.is_dir():
        raise FolderRefused(f"{folder} is not a folder on the server")
    return resolved


def label_for(path: Path, root: Path) -> str | None:
    """The class of a file in the ModelNet layout: `<class>/{train,test}/x.off` or
    `<class>/x.off` under `root`; None for files directly under `root`."""
    parents = path.relative_to(root).parts[:-1]
    if parents and parents[-1] in SPLIT_FOLDERS:
        parents = parents[:-1]
    return parents[-1] if parents else None


def mesh_files(root: Path) -> list[tuple[Path, str | None]]:
    """Mesh files under `root` (by extension, sorted) with their labels."""
    return [
        (path, label_for(path, root))
        for path in sorted(root.rglob("*"))
        if path.suffix.lower() in FORMATS_BY_EXTENSION and path.is_file()
    ]


# ------------------------------------------------------------------ the runner


class Cancelled(Exception):
    pass


@dataclass
class ReindexTarget:
    """What a reindex uses: settings, the model, the index (shared with other processes)."""

    settings: Settings
    embedder: Any  # gmvit.Embedder
    index: Any  # index.ShapeIndex
    threads: int = 1


@dataclass
class _Embedded:
    descriptor: Any
    views: Any
    sha256: str


def _describe_file(path: Path, target: ReindexTarget, inside: list[Path]) -> _Embedded:
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in inside):
        raise renderer.MeshError("a link to a file outside the allowed folders: refused")
    described = pipeline.describe(real, target.embedder, target.settings, filename=path.name)
    return _Embedded(described.descriptor, described.views, pipeline.sha256_of(real))


def _describe_all(
    files: list[tuple[Path, str | None]], target: ReindexTarget, inside: list[Path]
) -> Iterator[tuple[Path, str | None, _Embedded | Exception]]:
    """Describe files on `target.threads` threads, yielding results in order; a file that
    fails yields its MeshError. Few files are in flight at once, so a cancel is quick."""
    window = 2 * target.threads
    with ThreadPoolExecutor(target.threads, thread_name_prefix="reindex") as executor:
        pending: list[tuple[Path, str | None, Future]] = []
        queue = iter(files)
        try:
            while True:
                while len(pending) < window:
                    item = next(queue, None)
                    if item is None:
                        break
                    path, label = item
                    pending.append(
                        (path, label, executor.submit(_describe_file, path, target, inside))
                    )
                if not pending:
                    return
                path, label, future = pending.pop(0)
                try:
                    yield path, label, future.result()
                except (renderer.MeshError, OSError) as exc:
                    yield path, label, exc
        finally:
            for _, _, future in pending:
                future.cancel()


def _heartbeat(store: JobStore, job_id: str, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        store.update(job_id, heartbeat_at=time.time())


def run_reindex(
    store: JobStore,
    job_id: str,
    root: Path,
    target: ReindexTarget,
    *,
    inside: list[Path] | None = None,
    cleanup: bool = False,
) -> None:
    """Index every mesh under `root` into a new generation; commit it when all are done.

    `inside`: folders every file's real path must stay in (symlinks out are refused);
    `cleanup`: delete `root` afterwards (uploaded files). Never raises: the outcome is in
    the job's state.
    """
    settings = target.settings
    job = store.get(job_id)
    source = "demo" if job is not None and job.kind == "demo" else "reindex"
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat,
        args=(store, job_id, stop, max(0.2, settings.job_stale_s / 5)),
        daemon=True,
    )
    store.update(job_id, state=RUNNING, started_at=time.time(), heartbeat_at=time.time())
    beat.start()
    builder = None
    try:
        if store.cancel_requested(job_id):
            raise Cancelled
        files = mesh_files(root)
        if not files:
            raise FolderRefused(
                f"no mesh files ({', '.join(sorted(FORMATS_BY_EXTENSION))}) found in the folder"
            )
        store.update(job_id, total=len(files))
        builder = target.index.rebuild()
        indexed = 0
        seen: dict[str, str] = {}
        results = _describe_all(files, target, [root] if inside is None else inside)
        for done, (path, label, result) in enumerate(results, start=1):
            name = path.relative_to(root).as_posix()
            if isinstance(result, Exception):
                store.add_failure(job_id, name, str(result))
            elif result.sha256 in seen:
                store.add_failure(job_id, name, f"identical to {seen[result.sha256]}: skipped")
            else:
                seen[result.sha256] = name
                record_id = builder.add(
                    result.descriptor, name=name, sha256=result.sha256, source=source, label=label
                )
                pipeline.write_atomic(
                    settings.thumbs_dir / f"{record_id}.png", pipeline.grid_png(result.views)
                )
                indexed += 1
            store.update(job_id, done=done, indexed=indexed)
            if store.cancel_requested(job_id):
                results.close()
                raise Cancelled
        if indexed == 0:
            raise FolderRefused("no file could be indexed (see failures)")
        builder.commit()
        builder = None
        if source == "demo":
            demo_marker(root, target.embedder.model_id).touch()
        store.update(job_id, state=SUCCEEDED, finished_at=time.time())
    except Cancelled:
        store.update(job_id, state=CANCELLED, finished_at=time.time())
    except Exception as exc:
        message = str(exc) if isinstance(exc, FolderRefused) else f"{type(exc).__name__}: {exc}"
        store.update(job_id, state=FAILED, error=message, finished_at=time.time())
    finally:
        if builder is not None:
            builder.abort()
        stop.set()
        beat.join()
        if cleanup:
            shutil.rmtree(root, ignore_errors=True)


def demo_marker(root: Path, model_id: str) -> Path:
    """Written once the demo set is indexed for a model, so it is indexed only once."""
    return root / f".indexed-{model_id}"


# ------------------------------------------------------------------ where jobs run


class InProcessJobs:
    """Jobs on one thread of the server (no Redis): one at a time, in submission order."""

    def __init__(self, target: ReindexTarget) -> None:
        self.target = target
        self.store: JobStore = MemoryJobStore()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="job")

    def submit(
        self, kind: str, source: str, root: Path, *, inside: list[Path], cleanup: bool
    ) -> Job:
        job = self.store.create(kind, source)
        self._executor.submit(
            run_reindex, self.store, job.id, root, self.target, inside=inside, cleanup=cleanup
        )
        return job

    def ping(self) -> None:
        """Nothing to reach: always ready."""

    def close(self) -> None:
        for job in self.store.recent(limit=1000):
            if job.state not in FINISHED:
                self.store.request_cancel(job.id)
        self._executor.shutdown(wait=True, cancel_futures=True)


class RQJobs:
    """Jobs in Redis through RQ, run by `gmvit worker` processes sharing the data dir."""

    def __init__(self, redis_url: str) -> None:
        import redis
        import rq

        self.redis = redis.Redis.from_url(redis_url)
        self.store: JobStore = RedisJobStore(self.redis)
        self.queue = rq.Queue(RQ_QUEUE, connection=self.redis)

    def submit(
        self, kind: str, source: str, root: Path, *, inside: list[Path], cleanup: bool
    ) -> Job:
        job = self.store.create(kind, source)
        self.queue.enqueue(
            rq_reindex,
            job.id,
            str(root),
            [str(path) for path in inside],
            cleanup,
            job_id=job.id,
            job_timeout=-1,  # a reindex of many files runs as long as it needs
        )
        return job

    def ping(self) -> None:
        self.redis.ping()

    def close(self) -> None:
        self.redis.close()


_worker_target: ReindexTarget | None = None


def worker_target() -> ReindexTarget:
    """The model and index of this worker process, loaded once for all its jobs."""
    global _worker_target
    if _worker_target is None:
        from app import model

        settings = Settings()
        embedder = model.load_embedder(settings)
        _worker_target = ReindexTarget(
            settings=settings,
            embedder=embedder,
            index=model.open_index(settings, embedder.model_id),
            threads=settings.workers,
        )
    return _worker_target


def rq_reindex(job_id: str, root: str, inside: list[str], cleanup: bool) -> None:
    """The RQ entry point of a reindex (runs in `gmvit worker`)."""
    import rq

    store = RedisJobStore(rq.get_current_job().connection)
    run_reindex(
        store,
        job_id,
        Path(root),
        worker_target(),
        inside=[Path(path) for path in inside],
        cleanup=cleanup,
    )
