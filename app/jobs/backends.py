"""Where jobs run: on a thread of the server (no Redis), or on RQ workers (GMVIT_REDIS_URL).

Both implement `JobBackend`. On RQ a reindex is a plan piece, one piece per chunk of files
and a commit piece: any number of `gmvit worker` processes (on any machine that mounts the
data dir) share the chunks, and the last chunk to finish enqueues the commit. A running
piece keeps a liveness key alive in Redis; the server's reaper re-enqueues a piece whose
key expired (its worker was killed, its machine lost, or Redis went away under it), up to
`MAX_ATTEMPTS` times, and fails the job after that. A piece a worker took out of the queue
but never started (it died, or lost Redis, in between) counts as lost after the same
`stale_s`. The reaper also enqueues the commit that a
last chunk whose worker died between writing its part and enqueueing the commit left
behind. Pieces are idempotent: a chunk run twice writes the same part and counts its files
once.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.jobs import runner, state
from app.jobs.layout import JobFolders
from app.jobs.runner import ReindexTarget
from app.jobs.state import Job, JobStore, MemoryJobStore, RedisJobStore

if TYPE_CHECKING:  # rq is imported where a piece runs: the threads backend needs none
    import rq

log = logging.getLogger("gmvit.jobs")

RQ_QUEUE = "gmvit"
MAX_ATTEMPTS = 3


class JobBackend(Protocol):
    name: str  # "in-process" or "redis"
    store: JobStore
    folders: JobFolders

    def new_folder(self, job_id: str) -> Path:
        """The job's working folder, made before it is submitted (uploads go there)."""
        ...

    def submit(self, job: Job, root: Path, *, inside: list[Path], uploaded: bool) -> Job: ...

    def workers(self) -> int | None:
        """Live workers that can run jobs (None: jobs run in this process)."""
        ...

    def reap(self) -> None:
        """Retry the pieces of running jobs whose worker died; give up on those that died
        too often. Called periodically by the server."""
        ...

    def close(self) -> None: ...


class InProcessJobs:
    """Jobs on one thread of the server: one at a time, in submission order, gone with the
    process (a restart removes the folders they left)."""

    name = "in-process"

    def __init__(self, target: ReindexTarget) -> None:
        self.target = target
        self.store: JobStore = MemoryJobStore()
        self.folders = target.folders
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="job")
        for job_id in self.folders.sweep_dead_in_process():
            log.info("removed the files of job %s, which died with its process", job_id)

    def new_folder(self, job_id: str) -> Path:
        return self.folders.create(job_id, in_process=True)

    def submit(self, job: Job, root: Path, *, inside: list[Path], uploaded: bool) -> Job:
        self.store.create(job)
        self.new_folder(job.id)
        self._executor.submit(
            runner.run_reindex,
            self.store,
            job.id,
            root,
            self.target,
            inside=inside,
            uploaded=uploaded,
        )
        return job

    def workers(self) -> None:
        return None

    def reap(self) -> None:
        """A job of this process runs until it ends: nothing to reap."""

    def close(self) -> None:
        for job in self.store.recent(limit=1000):
            if not job.finished:
                state.cancel(self.store, job.id)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.target.close()


class RQJobs:
    """Jobs in Redis through RQ, run by `gmvit worker` processes sharing the data dir."""

    name = "redis"

    def __init__(self, redis_url: str, folders: JobFolders, stale_s: float) -> None:
        import redis
        import rq

        self.redis = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
        self.store: RedisJobStore = RedisJobStore(self.redis)
        self.folders = folders
        self.stale_s = stale_s
        self.queue = rq.Queue(RQ_QUEUE, connection=self.redis)
        # RQ job id -> when the reaper first saw it out of the queue, not yet started.
        self._taken_at: dict[str, float] = {}

    def new_folder(self, job_id: str) -> Path:
        return self.folders.create(job_id, in_process=False)

    def submit(self, job: Job, root: Path, *, inside: list[Path], uploaded: bool) -> Job:
        self.store.create(job)
        self.new_folder(job.id)
        self.queue.enqueue(
            rq_plan,
            job.id,
            str(root),
            [str(path) for path in inside],
            uploaded,
            job_id=f"{job.id}-plan",
            job_timeout=-1,
        )
        return job

    def workers(self) -> int:
        return live_workers(self.redis)

    def reap(self) -> None:
        for job in self.store.recent(limit=200):
            if job.state == state.RUNNING:
                self._reap_job(job)

    def _reap_job(self, job: Job) -> None:
        parts = {int(n) for n in self.redis.smembers(self.store.key(job.id, "parts"))}
        if not job.chunks:
            pieces = ["plan"]
        else:
            pieces = [state.chunk_piece(n) for n in range(job.chunks) if n not in parts]
            if self.redis.sismember(self.store.key(job.id, "claims"), "commit"):
                pieces.append("commit")
            elif not pieces and self.store.claim(job.id, "commit"):
                # Every part is written and no chunk claimed the commit: the last one's
                # worker died between the two. (A chunk claiming it now loses the claim.)
                self._enqueue_lost_commit(job)
                return
        for piece in pieces:
            attempt = int(self.redis.hget(self.store.key(job.id, "attempts"), piece) or 0)
            rq_job = self._rq_job(job.id, piece, attempt)
            if self._alive(job.id, piece) or self._waiting(rq_job):
                continue
            if piece == "commit" and rq_job is None and attempt == 0:
                # Claimed but never enqueued: wait for the chunk that claimed it, unless
                # its worker died between the claim and the enqueue.
                if not any(self._alive(job.id, state.chunk_piece(n)) for n in range(job.chunks)):
                    self._enqueue_lost_commit(job)
                continue
            if rq_job is None or attempt + 1 >= MAX_ATTEMPTS:
                if rq_job is None:
                    why = "was lost from the queue"
                else:
                    why = f"stopped {attempt + 1} times (its worker died each time)"
                error = f"{piece} of the job {why}; the previous index is still serving"
                state.give_up(self.store, job.id, error)
                self.folders.remove(job.id)
                return
            log.warning("job %s: %s lost its worker; running it again", job.id, piece)
            self._taken_at.pop(rq_job.id, None)
            self.redis.hset(self.store.key(job.id, "attempts"), piece, attempt + 1)
            self.queue.enqueue(
                rq_job.func,
                *rq_job.args,
                job_id=f"{job.id}-{piece}-try{attempt + 1}",
                job_timeout=-1,
            )

    def _enqueue_lost_commit(self, job: Job) -> None:
        """The commit piece, with the folder its chunks were given."""
        chunk = state.chunk_piece(0)
        attempt = int(self.redis.hget(self.store.key(job.id, "attempts"), chunk) or 0)
        rq_chunk_job = self._rq_job(job.id, chunk, attempt)
        if rq_chunk_job is None:
            state.give_up(self.store, job.id, "its chunks were lost from the queue")
            self.folders.remove(job.id)
            return
        log.warning("job %s: the commit was never enqueued; enqueueing it", job.id)
        enqueue_commit(self.queue, job.id, rq_chunk_job.args[2])

    def _rq_job(self, job_id: str, piece: str, attempt: int):
        """The RQ job of the piece's latest attempt (None if Redis lost it)."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RQJob

        suffix = f"-try{attempt}" if attempt else ""
        try:
            return RQJob.fetch(f"{job_id}-{piece}{suffix}", connection=self.redis)
        except NoSuchJobError:
            return None

    def _waiting(self, rq_job) -> bool:
        """Queued for a worker, or taken so recently that it has not beaten yet."""
        from rq.job import JobStatus

        if rq_job is None:
            return False
        status = rq_job.get_status()
        queued = status == JobStatus.QUEUED
        in_queue = queued and self.redis.lpos(self.queue.key, rq_job.id) is not None
        if not queued or in_queue:
            self._taken_at.pop(rq_job.id, None)  # started, or still in the queue
        if status in (JobStatus.DEFERRED, JobStatus.SCHEDULED) or in_queue:
            return True
        if queued:
            # Out of the queue but never started: a worker took it and died (or lost Redis)
            # before marking it started, and RQ gives it up only after minutes. A live
            # worker marks it within moments, so give that stale_s.
            taken = self._taken_at.setdefault(rq_job.id, time.monotonic())
            return time.monotonic() - taken < self.stale_s
        started = rq_job.started_at
        return (
            status == JobStatus.STARTED
            and started is not None
            and (datetime.now(timezone.utc) - started.replace(tzinfo=timezone.utc)).total_seconds()
            < self.stale_s
        )

    def _alive(self, job_id: str, piece: str) -> bool:
        return bool(self.redis.exists(self.store.key(job_id, f"alive:{piece}")))

    def close(self) -> None:
        self.redis.close()


# ------------------------------------------------------------------ the RQ pieces
#
# They run in `gmvit worker` (`run_worker` below), which opens the model and the index
# once and hands them to every piece through `_target`.

_target: contextvars.ContextVar[ReindexTarget] = contextvars.ContextVar("gmvit_worker_target")


def _current() -> tuple[RedisJobStore, ReindexTarget]:
    import rq

    try:
        target = _target.get()
    except LookupError:
        raise RuntimeError("gmvit job pieces run only in `gmvit worker`") from None
    return RedisJobStore(rq.get_current_job().connection), target


@contextmanager
def _piece(store: RedisJobStore, job_id: str, piece: str, stale_s: float) -> Iterator[None]:
    """Keep the piece's liveness key alive while it runs (it expires `stale_s` after the
    worker stops beating it)."""
    alive = store.key(job_id, f"alive:{piece}")
    ttl_ms = max(1000, int(stale_s * 1000))
    store.redis.set(alive, "1", px=ttl_ms)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(0.2, stale_s / 5)):
            try:
                store.redis.set(alive, "1", px=ttl_ms)
            except Exception:  # Redis away: the piece fails on its own next call
                log.warning("job %s: cannot reach Redis to beat %s", job_id, piece)

    thread = threading.Thread(target=beat, name=f"beat-{piece}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        store.redis.delete(alive)


def _run(
    job_id: str, piece: str, root: str, work: Callable[[RedisJobStore, ReindexTarget], None]
) -> None:
    """Run a piece; its errors end the job, except a lost Redis, after which the piece is
    run again (the reaper re-enqueues it once its liveness key has expired)."""
    import redis

    store, target = _current()
    job = store.get(job_id)
    if job is None or job.finished:
        return
    try:
        with _piece(store, job_id, piece, target.settings.job_stale_s):
            work(store, target)
    except (redis.ConnectionError, redis.TimeoutError):
        raise
    except Exception as exc:
        runner.end_on_error(store, job_id, target, Path(root), exc)


def rq_plan(job_id: str, root: str, inside: list[str], uploaded: bool) -> None:
    """RQ piece 1: list the files, enqueue a piece per chunk."""

    def work(store: RedisJobStore, target: ReindexTarget) -> None:
        import rq

        chunks = runner.plan(
            store, job_id, Path(root), chunk_size=target.settings.reindex_chunk, uploaded=uploaded
        )
        queue = rq.Queue(RQ_QUEUE, connection=store.redis)
        for number, files in enumerate(chunks):
            piece = state.chunk_piece(number)
            queue.enqueue(
                rq_chunk,
                job_id,
                number,
                root,
                files,
                inside,
                job_id=f"{job_id}-{piece}",
                job_timeout=-1,
            )

    _run(job_id, "plan", root, work)


def rq_chunk(job_id: str, number: int, root: str, files: list[list], inside: list[str]) -> None:
    """RQ piece 2, one per chunk, on whichever worker is free; the last one to finish
    enqueues the commit."""

    def work(store: RedisJobStore, target: ReindexTarget) -> None:
        import rq

        runner.run_chunk(
            store,
            job_id,
            number,
            Path(root),
            [(path, label) for path, label in files],
            target,
            [Path(path) for path in inside],
        )
        job = store.get(job_id)
        if store.part_done(job_id, number) == job.chunks and store.claim(job_id, "commit"):
            enqueue_commit(rq.Queue(RQ_QUEUE, connection=store.redis), job_id, root)

    _run(job_id, state.chunk_piece(number), root, work)


def enqueue_commit(queue: rq.Queue, job_id: str, root: str) -> None:
    """The commit piece of a job whose chunks were given `root`: enqueued by the chunk that
    claims it, or by the reaper when that chunk's worker died before enqueueing it."""
    queue.enqueue(rq_commit, job_id, root, job_id=f"{job_id}-commit", job_timeout=-1)


def rq_commit(job_id: str, root: str) -> None:
    """RQ piece 3: after every chunk, build the new generation and swap it in."""

    def work(store: RedisJobStore, target: ReindexTarget) -> None:
        job = store.get(job_id)
        indexed = runner.commit_parts(store, job_id, job.chunks, target)
        runner.committed(store, job_id, Path(root), target, indexed)

    _run(job_id, "commit", root, work)


WORKER_KEY = "gmvit:worker:"
WORKER_TTL_S = 15


def live_workers(connection) -> int:
    """`gmvit worker` processes that announced themselves in the last WORKER_TTL_S."""
    return sum(1 for _ in connection.scan_iter(match=f"{WORKER_KEY}*", count=1000))


@contextmanager
def _announced(connection, name: str) -> Iterator[None]:
    """Keep `gmvit:worker:<name>` alive (TTL WORKER_TTL_S) while the block runs, whatever
    the worker is doing: a killed worker disappears from the count within the TTL."""
    stop = threading.Event()

    def announce() -> None:
        while True:
            try:
                connection.set(WORKER_KEY + name, "1", ex=WORKER_TTL_S)
            except Exception:  # Redis away: announce again when it is back
                pass
            if stop.wait(WORKER_TTL_S / 3):
                return

    thread = threading.Thread(target=announce, name="announce", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        try:
            connection.delete(WORKER_KEY + name)
        except Exception:
            pass


def run_worker(target: ReindexTarget, redis_url: str, *, burst: bool = False) -> None:
    """Run RQ pieces with this worker's model and index until stopped (SIGTERM, SIGINT).
    A lost Redis does not end the worker: it waits and reconnects, pausing longer each
    time (at most 30 s); the pieces it was running are run again by the reaper."""
    import uuid

    import redis
    import rq

    _target.set(target)
    name = uuid.uuid4().hex
    pause = 1.0
    announcer = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    with _announced(announcer, name):
        while True:
            connection = redis.Redis.from_url(
                redis_url, socket_timeout=30, socket_connect_timeout=5
            )
            try:
                connection.ping()
                # Pieces run in this process (no fork per piece): the model stays loaded.
                # A new RQ name each time: the registration of the last one may outlive an
                # outage (Redis' append-only file keeps it).
                worker = rq.SimpleWorker(
                    [rq.Queue(RQ_QUEUE, connection=connection)],
                    connection=connection,
                    worker_ttl=WORKER_TTL_S + 15,
                )
                pause = 1.0
                worker.work(burst=burst, with_scheduler=False)
                # Asked to stop (SIGTERM, SIGINT: RQ notes when), or done in burst mode.
                if burst or worker._shutdown_requested_date is not None:
                    return
                reason = "the RQ worker loop ended"
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                reason = f"Redis at {redis_url} is unreachable ({exc})"
            finally:
                connection.close()
            log.warning("%s; reconnecting in %.0f s", reason, pause)
            time.sleep(pause)
            pause = min(30.0, pause * 2)
