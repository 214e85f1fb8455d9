"""Batch reindex jobs: state, the runner, and the two ways to run it.

A job walks a folder of meshes (labels from the ModelNet layout's class folders), renders
and embeds each file, and adds them all to a new index generation from
`ShapeIndex.rebuild()`, committed atomically at the end. A failed or cancelled job aborts
the builder and the old generation keeps serving. On Redis the files are cut into chunks
that any number of RQ workers share (see "the runner" below).

Job state lives in a `JobStore`: a dict in this process (no Redis) or hashes in Redis, so
an RQ worker on another machine reports progress and sees cancellation. A running job
beats a heartbeat; one whose heartbeat is older than `job_stale_s` (its worker was killed)
is reported as failed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

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
    pieces: list[str] = field(default_factory=list)  # its RQ job ids
    # The index's next shape id when the job was submitted: its commit keeps every shape
    # added since (acknowledged while the job ran), see ShapeIndex.rebuild.
    since_id: int | None = None

    def seen_at(self, now: float, stale_s: float, waiting: Callable[[], bool] = bool) -> Job:
        """This job as a reader should see it: a running job without heartbeat, none of
        whose pieces waits in the queue for a worker, is lost."""
        if self.state == RUNNING and (self.heartbeat_at or 0.0) < now - stale_s and not waiting():
            return replace(
                self,
                state=FAILED,
                error="the worker running this job stopped (no heartbeat); "
                "the previous index is still serving",
            )
        return self


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore(Protocol):
    def create(
        self, kind: str, source: str, job_id: str | None = None, since_id: int | None = None
    ) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def update(self, job_id: str, **fields: Any) -> None: ...
    def add_failure(self, job_id: str, file: str, error: str) -> None: ...
    def increment(self, job_id: str, name: str) -> None: ...
    def request_cancel(self, job_id: str) -> None: ...
    def cancel_requested(self, job_id: str) -> bool: ...
    def recent(self, limit: int = 50) -> list[Job]: ...


class MemoryJobStore:
    """Jobs of this process (no Redis): forgotten on restart, like the threads running them."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(
        self, kind: str, source: str, job_id: str | None = None, since_id: int | None = None
    ) -> Job:
        job = Job(id=job_id or new_job_id(), kind=kind, source=source, since_id=since_id)
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

    def increment(self, job_id: str, name: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            setattr(job, name, getattr(job, name) + 1)

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

    def create(
        self, kind: str, source: str, job_id: str | None = None, since_id: int | None = None
    ) -> Job:
        job = Job(id=job_id or new_job_id(), kind=kind, source=source, since_id=since_id)
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

    def increment(self, job_id: str, name: str) -> None:
        # JSON of an integer is the integer's decimal string: HINCRBY works on it.
        self.redis.hincrby(self._key(job_id), name, 1)

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
#
# A reindex runs in three kinds of pieces: `plan` lists the files and cuts them into
# chunks; each `chunk` renders and embeds its files into a part file under the job's folder
# (DATA_DIR/jobs/<id>/); `commit` adds every part to a new index generation and swaps it
# in. In-process they run one after the other on one thread; on RQ each chunk is its own
# RQ job, so every worker that is free takes one, and the commit runs after the last.


class Cancelled(Exception):
    pass


@dataclass
class ReindexTarget:
    """What a reindex uses: settings, the model, the index (shared with other processes)."""

    settings: Settings
    embedder: Any  # gmvit.Embedder
    index: Any  # index.ShapeIndex
    threads: int = 1


def job_folder(settings: Settings, job_id: str) -> Path:
    return settings.jobs_dir / job_id


def _describe_file(path: Path, target: ReindexTarget, inside: list[Path]):
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in inside):
        raise renderer.MeshError("a link to a file outside the allowed folders: refused")
    described = pipeline.describe(real, target.embedder, target.settings, filename=path.name)
    return described, pipeline.sha256_of(real)


def _describe_all(
    files: list[tuple[Path, str | None]], target: ReindexTarget, inside: list[Path]
) -> Iterator[tuple[Path, str | None, Any]]:
    """Describe files on `target.threads` threads, yielding (path, label, result) in order;
    the result is (Described, sha256), or the file's MeshError. Few files are in flight
    at once, so a cancel is quick."""
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


def _finish(store: JobStore, job_id: str, settings: Settings, root: Path, cleanup: bool, **fields):
    # Files first: a job reads as ended only once nothing of it is left on disk.
    shutil.rmtree(job_folder(settings, job_id), ignore_errors=True)
    if cleanup:
        shutil.rmtree(root, ignore_errors=True)
    store.update(job_id, finished_at=time.time(), **fields)


class _Piece:
    """`with _Piece(...) as piece:` runs one piece of a job. A thread beats the job's
    heartbeat meanwhile; a Cancelled or an error ends the job (state, message, its files
    removed) and is not raised further. `piece.ok` says the block ran to its end."""

    def __init__(
        self, store: JobStore, job_id: str, settings: Settings, root: Path, cleanup: bool
    ) -> None:
        self.store, self.job_id, self.settings = store, job_id, settings
        self.root, self.cleanup = root, cleanup
        self.ok = False
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beat_until_stopped, daemon=True)

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(max(0.2, self.settings.job_stale_s / 5)):
            self.store.update(self.job_id, heartbeat_at=time.time())

    def __enter__(self) -> _Piece:
        self.store.update(self.job_id, heartbeat_at=time.time())
        self._beat.start()
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        self._stop.set()
        self._beat.join()
        if kind is None:
            self.ok = True
            return False
        ending = (self.store, self.job_id, self.settings, self.root, self.cleanup)
        if issubclass(kind, Cancelled):
            _finish(*ending, state=CANCELLED)
        elif issubclass(kind, Exception):
            message = str(exc) if isinstance(exc, FolderRefused) else f"{kind.__name__}: {exc}"
            _finish(*ending, state=FAILED, error=message)
        else:
            return False
        return True


def _check_cancel(store: JobStore, job_id: str) -> None:
    if store.cancel_requested(job_id):
        raise Cancelled


def plan(
    store: JobStore, job_id: str, root: Path, settings: Settings, chunk_size: int
) -> list[list[tuple[str, str | None]]]:
    """Mark the job running and cut its files into chunks of (path, label)."""
    _check_cancel(store, job_id)
    store.update(job_id, state=RUNNING, started_at=time.time())
    files = mesh_files(root)
    if not files:
        raise FolderRefused(
            f"no mesh files ({', '.join(sorted(FORMATS_BY_EXTENSION))}) found in the folder"
        )
    store.update(job_id, total=len(files))
    items = [(str(path), label) for path, label in files]
    return [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]


def run_chunk(
    store: JobStore,
    job_id: str,
    number: int,
    root: Path,
    files: list[tuple[str, str | None]],
    target: ReindexTarget,
    inside: list[Path],
) -> None:
    """Render and embed `files` into part `number` of the job: descriptors, names, labels,
    hashes and thumbnails under the job's folder, written whole or not at all."""
    folder = job_folder(target.settings, job_id)
    thumbs = folder / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    vectors = []
    _check_cancel(store, job_id)
    paths = [(Path(path), label) for path, label in files]
    for path, label, result in _describe_all(paths, target, inside):
        name = path.relative_to(root).as_posix()
        if isinstance(result, Exception):
            store.add_failure(job_id, name, str(result))
        else:
            described, sha256 = result
            thumb = thumbs / f"{number}-{len(rows)}.png"
            pipeline.write_atomic(thumb, pipeline.grid_png(described.views))
            rows.append({"name": name, "label": label, "sha256": sha256, "thumb": thumb.name})
            vectors.append(described.descriptor)
        store.increment(job_id, "done")
        _check_cancel(store, job_id)
    part = {"rows": rows, "vectors": np.stack(vectors).tolist() if vectors else []}
    pipeline.write_atomic(folder / f"part-{number:05d}.json", json.dumps(part).encode())


def commit_parts(
    store: JobStore, job_id: str, chunks: int, target: ReindexTarget, source: str
) -> int:
    """Add every part to a new index generation and swap it in; returns how many shapes.
    Identical files are indexed once (the first, in file order)."""
    _check_cancel(store, job_id)
    folder = job_folder(target.settings, job_id)
    thumbs_dir = target.settings.thumbs_dir
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    # Thumbnails of shapes the new generation drops are removed after the swap; only
    # files that exist now (ids are never reused: later files belong to later adds).
    earlier_thumbs = list(thumbs_dir.glob("*.png"))
    job = store.get(job_id)
    builder = target.index.rebuild(since=job.since_id if job is not None else None)
    try:
        seen: dict[str, str] = {}
        indexed = 0
        for number in range(chunks):
            path = folder / f"part-{number:05d}.json"
            if not path.is_file():
                raise RuntimeError(f"part {number} of the job is missing (its worker stopped)")
            part = json.loads(path.read_text())
            for row, vector in zip(part["rows"], part["vectors"], strict=True):
                if row["sha256"] in seen:
                    store.add_failure(
                        job_id, row["name"], f"identical to {seen[row['sha256']]}: skipped"
                    )
                    continue
                seen[row["sha256"]] = row["name"]
                record_id = builder.add(
                    np.asarray(vector, dtype=np.float32),
                    name=row["name"],
                    sha256=row["sha256"],
                    source=source,
                    label=row["label"],
                )
                os.replace(
                    folder / "thumbs" / row["thumb"],
                    target.settings.thumbs_dir / f"{record_id}.png",
                )
                indexed += 1
        if indexed == 0:
            raise FolderRefused("no file could be indexed (see failures)")
        _check_cancel(store, job_id)
        builder.commit()
    finally:
        builder.abort()  # a no-op once committed
    _remove_dropped_thumbnails(target.index, earlier_thumbs)
    return indexed


def _remove_dropped_thumbnails(index: Any, candidates: list[Path]) -> None:
    live: set[int] = set()
    while page := index.list(offset=len(live), limit=10_000):
        live.update(record.id for record in page)
    for path in candidates:
        if path.stem.isdigit() and int(path.stem) not in live:
            path.unlink(missing_ok=True)


def _source(store: JobStore, job_id: str) -> str:
    job = store.get(job_id)
    return "demo" if job is not None and job.kind == "demo" else "reindex"


def _committed(
    store: JobStore, job_id: str, root: Path, target: ReindexTarget, indexed: int, cleanup: bool
) -> None:
    if _source(store, job_id) == "demo":
        demo_marker(root, target.embedder.model_id).touch()
    _finish(store, job_id, target.settings, root, cleanup, state=SUCCEEDED, indexed=indexed)


def run_reindex(
    store: JobStore,
    job_id: str,
    root: Path,
    target: ReindexTarget,
    *,
    inside: list[Path] | None = None,
    cleanup: bool = False,
) -> None:
    """The whole job in this thread: plan, every chunk, commit. Never raises: the outcome
    is in the job's state. `inside`: folders every file's real path must stay in (symlinks
    out are refused); `cleanup`: delete `root` afterwards (uploaded files)."""
    settings = target.settings
    inside = [root] if inside is None else inside
    with _Piece(store, job_id, settings, root, cleanup) as piece:
        chunks = plan(store, job_id, root, settings, settings.reindex_chunk)
        for number, files in enumerate(chunks):
            run_chunk(store, job_id, number, root, files, target, inside)
        indexed = commit_parts(store, job_id, len(chunks), target, _source(store, job_id))
    if piece.ok:
        _committed(store, job_id, root, target, indexed, cleanup)


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
        self,
        kind: str,
        source: str,
        root: Path,
        *,
        inside: list[Path],
        cleanup: bool,
        since_id: int,
        job_id: str | None = None,
    ) -> Job:
        job = self.store.create(kind, source, job_id, since_id)
        self._executor.submit(
            run_reindex, self.store, job.id, root, self.target, inside=inside, cleanup=cleanup
        )
        return job

    def waiting(self, job: Job) -> bool:
        """A job of this process runs until it ends (its heartbeat never stops early)."""
        return True

    def ping(self) -> None:
        """Nothing to reach: always ready."""

    def close(self) -> None:
        for job in self.store.recent(limit=1000):
            if job.state not in FINISHED:
                self.store.request_cancel(job.id)
        self._executor.shutdown(wait=True, cancel_futures=True)


class RQJobs:
    """Jobs in Redis through RQ, run by `gmvit worker` processes sharing the data dir.

    A job is a plan piece, which enqueues one RQ job per chunk of files and a commit piece
    that depends on all of them: any number of workers share the chunks of one reindex."""

    def __init__(self, redis_url: str) -> None:
        import redis
        import rq

        self.redis = redis.Redis.from_url(redis_url)
        self.store: JobStore = RedisJobStore(self.redis)
        self.queue = rq.Queue(RQ_QUEUE, connection=self.redis)

    def submit(
        self,
        kind: str,
        source: str,
        root: Path,
        *,
        inside: list[Path],
        cleanup: bool,
        since_id: int,
        job_id: str | None = None,
    ) -> Job:
        job = self.store.create(kind, source, job_id, since_id)
        piece = f"{job.id}-plan"
        self.store.update(job.id, pieces=[piece])
        self.queue.enqueue(
            rq_plan,
            job.id,
            str(root),
            [str(path) for path in inside],
            cleanup,
            job_id=piece,
            job_timeout=-1,
        )
        return job

    def waiting(self, job: Job) -> bool:
        """Whether a piece of the job still waits in the queue for a free worker."""
        from rq.job import Job as RQJob
        from rq.job import JobStatus

        pieces = RQJob.fetch_many(job.pieces, connection=self.redis)
        return any(p is not None and p.get_status() == JobStatus.QUEUED for p in pieces)

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


def _rq_store() -> RedisJobStore:
    import rq

    return RedisJobStore(rq.get_current_job().connection)


def _finished(store: JobStore, job_id: str) -> bool:
    job = store.get(job_id)
    return job is None or job.state in FINISHED


def rq_plan(job_id: str, root: str, inside: list[str], cleanup: bool) -> None:
    """RQ piece 1: list the files, enqueue a chunk piece per chunk and the commit piece."""
    import rq
    from rq.job import Dependency

    store, target = _rq_store(), worker_target()
    settings = target.settings
    with _Piece(store, job_id, settings, Path(root), cleanup):
        chunks = plan(store, job_id, Path(root), settings, settings.reindex_chunk)
        queue = rq.Queue(RQ_QUEUE, connection=store.redis)
        ids = [f"{job_id}-chunk-{number}" for number in range(len(chunks))]
        store.update(job_id, pieces=[*ids, f"{job_id}-commit"])
        chunk_jobs = [
            queue.enqueue(
                rq_chunk,
                job_id,
                number,
                root,
                files,
                inside,
                cleanup,
                job_id=piece,
                job_timeout=-1,
            )
            for number, (piece, files) in enumerate(zip(ids, chunks, strict=True))
        ]
        queue.enqueue(
            rq_commit,
            job_id,
            root,
            len(chunks),
            cleanup,
            job_id=f"{job_id}-commit",
            job_timeout=-1,
            # A chunk that crashed leaves its part missing: the commit says so.
            depends_on=Dependency(jobs=chunk_jobs, allow_failure=True),
        )


def rq_chunk(
    job_id: str,
    number: int,
    root: str,
    files: list[list],
    inside: list[str],
    cleanup: bool,
) -> None:
    """RQ piece 2, one per chunk, on whichever worker is free."""
    store, target = _rq_store(), worker_target()
    if _finished(store, job_id):
        return
    with _Piece(store, job_id, target.settings, Path(root), cleanup):
        run_chunk(
            store,
            job_id,
            number,
            Path(root),
            [(path, label) for path, label in files],
            target,
            [Path(path) for path in inside],
        )


def rq_commit(job_id: str, root: str, chunks: int, cleanup: bool) -> None:
    """RQ piece 3: after every chunk, build the new generation and swap it in."""
    store, target = _rq_store(), worker_target()
    if _finished(store, job_id):
        return
    with _Piece(store, job_id, target.settings, Path(root), cleanup) as piece:
        indexed = commit_parts(store, job_id, chunks, target, _source(store, job_id))
    if piece.ok:
        _committed(store, job_id, Path(root), target, indexed, cleanup)
