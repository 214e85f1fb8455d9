"""A job's record, where it is kept, and every change of its state, in one place.

    queued --start--> running --finish--> succeeded | failed | cancelled
    queued --cancel--> cancelled
    running --cancel--> running with cancel_requested (its runner ends it at its next step)
    running --give_up--> failed (a piece died more often than it may be retried)

A transition applies only from the states it names (compare-and-set in the store), so a
late piece cannot overwrite a job that was cancelled or given up meanwhile, and reading a
job never changes it.

Progress is kept per piece ("plan", "chunk-<n>", "commit"): a piece sets how many files it
has done and appends its failures, and a retried piece starts its own counts over, so a
piece run twice (its first worker died) counts once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
MAX_REPORTED_FAILURES = 1000


@dataclass
class Job:
    id: str
    kind: str  # "reindex" or "demo"
    source: str  # the folder, or "upload"
    state: str = QUEUED
    total: int = 0
    chunks: int = 0
    indexed: int = 0
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    # The index's next shape id when the job was submitted: its commit keeps every shape
    # added since (acknowledged while the job ran), see ShapeIndex.rebuild.
    since_id: int | None = None
    # Read from the per-piece progress, never written as such:
    done: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


# Fields a store keeps as the job's own (the rest is derived from the pieces' progress).
RECORD_FIELDS = tuple(
    name for name in Job.__dataclass_fields__ if name not in {"done", "failed", "failures"}
)


def new_job_id() -> str:
    return uuid.uuid4().hex


def chunk_piece(number: int) -> str:
    return f"chunk-{number}"


class JobStore(Protocol):
    """Where job records live; the transitions below are the only writers of `state`."""

    def create(self, job: Job) -> None: ...
    def get(self, job_id: str) -> Job | None: ...
    def update(self, job_id: str, **fields: Any) -> None: ...
    def update_if(self, job_id: str, states: tuple[str, ...], **fields: Any) -> bool: ...
    def start_piece(self, job_id: str, piece: str) -> None: ...
    def progress(self, job_id: str, piece: str, done: int) -> None: ...
    def add_failure(self, job_id: str, piece: str, file: str, error: str) -> None: ...
    def part_done(self, job_id: str, number: int) -> int: ...
    def claim(self, job_id: str, what: str) -> bool: ...
    def recent(self, limit: int = 50) -> list[Job]: ...


# ------------------------------------------------------------------ transitions


def start(store: JobStore, job_id: str) -> bool:
    """queued -> running; False if the job was cancelled (or started) meanwhile."""
    return store.update_if(job_id, (QUEUED,), state=RUNNING, started_at=time.time())


def finish(store: JobStore, job_id: str, state: str, **fields: Any) -> bool:
    """Any unfinished state -> `state` (succeeded, failed or cancelled)."""
    if state not in FINISHED:
        raise ValueError(f"{state!r} does not end a job")
    return store.update_if(
        job_id, (QUEUED, RUNNING), state=state, finished_at=time.time(), **fields
    )


def cancel(store: JobStore, job_id: str) -> Job | None:
    """A queued job ends cancelled at once; a running one is asked to stop (its runner
    ends it at its next step). Returns the job as it is now (None: no such job)."""
    if store.update_if(job_id, (QUEUED, RUNNING), cancel_requested=True):
        store.update_if(job_id, (QUEUED,), state=CANCELLED, finished_at=time.time())
    return store.get(job_id)


def cancel_requested(store: JobStore, job_id: str) -> bool:
    job = store.get(job_id)
    return job is None or job.cancel_requested or job.finished


def give_up(store: JobStore, job_id: str, error: str) -> bool:
    """running -> failed, for a job whose piece died too often."""
    return store.update_if(job_id, (RUNNING,), state=FAILED, error=error, finished_at=time.time())


# ------------------------------------------------------------------ stores


@dataclass
class _Progress:
    done: dict[str, int] = field(default_factory=dict)
    failures: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    parts: set[int] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)


def _merge(
    job: Job, done: dict[str, int], failures: dict[str, list[dict[str, str]]], failed: int
) -> Job:
    """The job with its pieces' progress folded in (pieces in plan, chunk, commit order)."""

    def order(piece: str) -> tuple[int, int]:
        kind, _, number = piece.partition("-")
        return ({"plan": 0, "chunk": 1}.get(kind, 2), int(number or 0))

    merged = [f for piece in sorted(failures, key=order) for f in failures[piece]]
    return replace(
        job, done=sum(done.values()), failed=failed, failures=merged[:MAX_REPORTED_FAILURES]
    )


class MemoryJobStore:
    """Jobs of this process (no Redis): forgotten on restart, like the threads running them."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._progress: dict[str, _Progress] = {}
        self._lock = threading.Lock()

    def create(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = replace(job)
            self._progress[job.id] = _Progress()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._read(job_id)

    def _read(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        progress = self._progress[job_id]
        failures = {piece: list(items) for piece, items in progress.failures.items()}
        failed = sum(len(items) for items in failures.values())
        return _merge(job, dict(progress.done), failures, failed)

    def update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            for name, value in fields.items():
                setattr(job, name, value)

    def update_if(self, job_id: str, states: tuple[str, ...], **fields: Any) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in states:
                return False
            for name, value in fields.items():
                setattr(job, name, value)
            return True

    def start_piece(self, job_id: str, piece: str) -> None:
        with self._lock:
            progress = self._progress[job_id]
            progress.done.pop(piece, None)
            progress.failures.pop(piece, None)

    def progress(self, job_id: str, piece: str, done: int) -> None:
        with self._lock:
            self._progress[job_id].done[piece] = done

    def add_failure(self, job_id: str, piece: str, file: str, error: str) -> None:
        with self._lock:
            failures = self._progress[job_id].failures.setdefault(piece, [])
            failures.append({"file": file, "error": error})

    def part_done(self, job_id: str, number: int) -> int:
        with self._lock:
            parts = self._progress[job_id].parts
            parts.add(number)
            return len(parts)

    def claim(self, job_id: str, what: str) -> bool:
        with self._lock:
            claimed = self._progress[job_id].claimed
            if what in claimed:
                return False
            claimed.add(what)
            return True

    def recent(self, limit: int = 50) -> list[Job]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)
            return [self._read(job.id) for job in jobs[:limit]]


class RedisJobStore:
    """Jobs in Redis, under `gmvit:job:<id>`: the record (a hash of JSON scalars), `:done`
    (piece -> files done), `:failures:<piece>` (lists of JSON), `:parts` (a set of chunk
    numbers), `:claims`; and `gmvit:jobs` (ids by creation time). A finished job's keys
    expire after a week."""

    KEEP_S = 7 * 24 * 3600

    def __init__(self, redis) -> None:
        self.redis = redis

    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"gmvit:job:{job_id}" + (f":{part}" if part else "")

    def create(self, job: Job) -> None:
        record = asdict(job)
        fields = {name: json.dumps(record[name]) for name in RECORD_FIELDS}
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key(job.id), mapping=fields)
            pipe.zadd("gmvit:jobs", {job.id: job.created_at})
            pipe.execute()

    def get(self, job_id: str) -> Job | None:
        with self.redis.pipeline() as pipe:
            pipe.hgetall(self.key(job_id))
            pipe.hgetall(self.key(job_id, "done"))
            pipe.smembers(self.key(job_id, "failing"))
            raw, done, failing = pipe.execute()
        if not raw:
            return None
        fields = {k.decode(): json.loads(v) for k, v in raw.items()}
        job = Job(**{name: value for name, value in fields.items() if name in RECORD_FIELDS})
        pieces = sorted(piece.decode() for piece in failing)
        with self.redis.pipeline() as pipe:
            for piece in pieces:
                key = self.key(job_id, f"failures:{piece}")
                pipe.lrange(key, 0, MAX_REPORTED_FAILURES - 1)
                pipe.llen(key)
            replies = pipe.execute()
        failures = {
            piece: [json.loads(item) for item in items]
            for piece, items in zip(pieces, replies[0::2], strict=True)
        }
        done_by_piece = {k.decode(): int(v) for k, v in done.items()}
        return _merge(job, done_by_piece, failures, sum(replies[1::2]))

    def _write(self, pipe, job_id: str, fields: dict[str, Any]) -> None:
        pipe.hset(self.key(job_id), mapping={k: json.dumps(v) for k, v in fields.items()})
        if fields.get("state") in FINISHED:
            for key in self._keys(job_id):
                pipe.expire(key, self.KEEP_S)

    def _keys(self, job_id: str) -> list[str]:
        pieces = [p.decode() for p in self.redis.smembers(self.key(job_id, "failing"))]
        return [
            self.key(job_id),
            *(self.key(job_id, part) for part in ("done", "failing", "parts", "claims")),
            *(self.key(job_id, f"failures:{piece}") for piece in pieces),
        ]

    def update(self, job_id: str, **fields: Any) -> None:
        with self.redis.pipeline() as pipe:
            self._write(pipe, job_id, fields)
            pipe.execute()

    def update_if(self, job_id: str, states: tuple[str, ...], **fields: Any) -> bool:
        import redis

        key = self.key(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    current = pipe.hget(key, "state")
                    if current is None or json.loads(current) not in states:
                        return False
                    pipe.multi()
                    self._write(pipe, job_id, fields)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # another writer changed the job: look again

    def start_piece(self, job_id: str, piece: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.key(job_id, "done"), piece)
            pipe.delete(self.key(job_id, f"failures:{piece}"))
            pipe.execute()

    def progress(self, job_id: str, piece: str, done: int) -> None:
        self.redis.hset(self.key(job_id, "done"), piece, done)

    def add_failure(self, job_id: str, piece: str, file: str, error: str) -> None:
        key = self.key(job_id, f"failures:{piece}")
        with self.redis.pipeline() as pipe:
            pipe.sadd(self.key(job_id, "failing"), piece)
            pipe.rpush(key, json.dumps({"file": file, "error": error}))
            pipe.execute()

    def part_done(self, job_id: str, number: int) -> int:
        with self.redis.pipeline() as pipe:
            pipe.sadd(self.key(job_id, "parts"), number)
            pipe.scard(self.key(job_id, "parts"))
            return int(pipe.execute()[1])

    def claim(self, job_id: str, what: str) -> bool:
        return bool(self.redis.sadd(self.key(job_id, "claims"), what))

    def recent(self, limit: int = 50) -> list[Job]:
        ids = self.redis.zrevrange("gmvit:jobs", 0, limit - 1)
        jobs = [self.get(job_id.decode()) for job_id in ids]
        return [job for job in jobs if job is not None]
