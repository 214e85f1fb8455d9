"""Reindex jobs through Redis and a real RQ worker process (`gmvit worker`)."""

from __future__ import annotations

import math
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from gmvit.data import synth
from tests.app.conftest import off_bytes
from tests.e2e.conftest import (
    E2E_CLASSES,
    GMVIT,
    KEY,
    TRAINED_WEIGHTS,
    Process,
    Server,
    held_out,
    service_env,
    train_only,
)
from tests.polling import wait_job, wait_until

pytestmark = pytest.mark.slow


class Stack:
    def __init__(self, root: Path, redis_url: str) -> None:
        self.root = root
        self.allowed = root / "allowed"
        self.allowed.mkdir()
        self.env = service_env(
            root / "var",
            redis_url=redis_url,
            allowed_roots=self.allowed,
            # Long beside the seconds that a test freezes the workers for (SIGSTOP) or that a
            # loaded machine starves their heartbeats: at 3 s, a reindex under load lost
            # its pieces to the reaper until it failed.
            job_stale_s=30,
            reindex_chunk=4,
        )
        # Workers first: a server on Redis is ready only once a worker can run its jobs.
        self.started = 0
        self.workers = [self.start_worker(), self.start_worker()]
        self.server = Server(self.env, root / "server.log")

    def start_worker(self) -> Process:
        self.started += 1
        worker = Process(
            [*GMVIT, "worker"],
            self.env,
            self.root / f"worker-{self.started}.log",
        )
        wait_until(
            lambda: "Listening on" in worker.output() or not worker.alive(),
            180,
            "the worker listening",
        )
        assert worker.alive(), worker.tail()
        return worker

    def shapes(self) -> list[dict]:
        return self.server.http.get("/shapes", params={"limit": 1000}).json()["shapes"]

    def chunk_workers(self, job: dict) -> set[str]:
        """The names of the RQ workers that ran the job's chunk pieces."""
        import redis
        from rq.job import Job as RQJob

        pieces = [f"{job['id']}-chunk-{n}" for n in range(math.ceil(job["total"] / 4))]
        with redis.Redis.from_url(self.env["GMVIT_REDIS_URL"]) as connection:
            ran = RQJob.fetch_many(pieces, connection=connection)
        return {piece.worker_name for piece in ran if piece is not None}

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every worker stopped (SIGSTOP) inside the block, so a job cannot move on."""
        for worker in self.workers:
            worker.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for worker in self.workers:
                if worker.alive():
                    worker.signal(signal.SIGCONT)

    def kill_a_worker_running_a_chunk(self, job: dict) -> None:
        """kill -9 a worker while it runs one of the job's chunks (with every worker frozen,
        so the one chosen cannot finish its chunk first)."""
        import redis
        from rq import Worker

        def killed() -> bool:
            with self.frozen(), redis.Redis.from_url(self.env["GMVIT_REDIS_URL"]) as connection:
                busy = {
                    worker.pid
                    for worker in Worker.all(connection=connection)
                    if (worker.get_current_job_id() or "").startswith(f"{job['id']}-chunk-")
                }
                victim = next((w for w in self.workers if w.popen.pid in busy), None)
                if victim is not None:
                    victim.kill9()
            return victim is not None

        wait_until(killed, 120, "a worker running a chunk")

    def wait_under_way(self, job: dict, done: int) -> None:
        wait_until(
            lambda: self.server.http.get(f"/jobs/{job['id']}").json()["done"] >= done,
            120,
            "the reindex under way",
        )

    def reindex(self, folder: Path) -> dict:
        response = self.server.http.post("/reindex", data={"folder": str(folder)}, headers=KEY)
        assert response.status_code == 202, response.text
        return response.json()


def bigger_set(stack: Stack, synthetic_set: Path) -> Path:
    """Four copies of the synthetic set under the allowed root (made once)."""
    folder = stack.allowed / "bigger"
    if not folder.exists():
        for copy in range(4):
            shutil.copytree(synthetic_set, folder / f"copy{copy}")
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("redis-stack"), redis_url)
    yield stack
    for worker in stack.workers:
        worker.stop()
    stack.server.stop()


def test_readiness_reports_redis(stack: Stack) -> None:
    ready = stack.server.http.get("/readyz").json()
    assert ready["jobs_backend"] == "redis" and ready["redis_reachable"] is True


def test_workers_share_a_reindex_and_held_out_shapes_get_their_classes(
    stack, synthetic_set
) -> None:
    folder = train_only(synthetic_set, stack.allowed / "train")
    job = wait_job(stack.server.http, stack.reindex(folder)["id"])
    assert job["state"] == "succeeded", (job, [w.tail() for w in stack.workers])
    assert job["indexed"] == job["total"] == len(list(folder.glob("*/train/*.off")))
    # Chunks of 4 files: both workers took some (the server ran none).
    assert len(stack.chunk_workers(job)) == 2

    for label, path in held_out(synthetic_set):
        with path.open("rb") as mesh:
            classify = stack.server.http.post(
                "/classify", files={"file": (path.name, mesh)}, data={"top_k": 1}
            )
        assert classify.status_code == 200, classify.text
        assert classify.json()["neighbors"]["label"] == label, (path, classify.json()["neighbors"])
        if TRAINED_WEIGHTS:  # the head was trained on these classes; random weights' was not
            # Its top class; whether /classify then commits to it is the open-set thresholds'
            # call (tests/app), which may answer "unknown" for a shape it is unsure of.
            top = classify.json()["probabilities"][0]["label"]
            assert top == label, (path, classify.json()["probabilities"])
        with path.open("rb") as mesh:
            search = stack.server.http.post(
                "/search", files={"file": (path.name, mesh)}, data={"top_k": 3}
            )
        results = search.json()["results"]
        assert len(results) == 3 and results[0]["label"] == label, results
        assert stack.server.http.get(results[0]["thumbnail_url"]).status_code == 200


def test_shapes_acknowledged_during_a_reindex_are_kept(stack, synthetic_set) -> None:
    job = stack.reindex(bigger_set(stack, synthetic_set))
    stack.wait_under_way(job, done=1)
    # Frozen, the workers cannot commit before these adds are acknowledged.
    with stack.frozen():
        acknowledged = []
        for i, label in enumerate(E2E_CLASSES):
            data = off_bytes(synth.make_shape(label, np.random.default_rng(9000 + i)))
            added = stack.server.http.post(
                "/shapes",
                files={"file": (f"during-{i}.off", data)},
                data={"label": label},
                headers=KEY,
            )
            assert added.status_code == 201, added.text
            acknowledged.append(added.json()["shape"])
    job = wait_job(stack.server.http, job["id"])
    assert job["state"] == "succeeded", (job, [w.tail() for w in stack.workers])
    present = {shape["id"]: shape for shape in stack.shapes()}
    for shape in acknowledged:
        assert present.get(shape["id"]) == shape
        assert stack.server.http.get(shape["thumbnail_url"]).status_code == 200
        found = stack.server.http.post("/search", data={"shape_id": shape["id"], "top_k": 1})
        assert found.status_code == 200 and found.json()["results"]


def test_cancelling_a_running_reindex_keeps_the_old_index(stack, synthetic_set) -> None:
    before = stack.shapes()
    assert before
    job = stack.reindex(bigger_set(stack, synthetic_set))
    stack.wait_under_way(job, done=1)
    # Frozen, the workers cannot finish the job before the cancel lands, however slow
    # this machine is; thawed, they see the cancel at their next file.
    with stack.frozen():
        cancelled = stack.server.http.delete(f"/jobs/{job['id']}", headers=KEY)
    assert cancelled.status_code == 200
    final = wait_job(stack.server.http, job["id"])
    assert final["state"] == "cancelled" and final["done"] < final["total"]
    assert stack.shapes() == before


def test_a_chunk_whose_worker_is_killed_runs_again_on_another(stack, synthetic_set) -> None:
    before = stack.shapes()
    job = stack.reindex(bigger_set(stack, synthetic_set))
    stack.wait_under_way(job, done=4)
    stack.kill_a_worker_running_a_chunk(job)
    assert stack.shapes() == before  # the old index serves until the commit
    ready = stack.server.http.get("/readyz").json()
    wait_until(
        lambda: stack.server.http.get("/readyz").json()["workers"] == 1,
        60,
        "the dead worker dropping out of the count",
    )
    # The lost chunk runs again on the other worker: the job ends as if nothing happened.
    done = wait_job(stack.server.http, job["id"], timeout_s=300)
    assert done["state"] == "succeeded", (done, [w.tail() for w in stack.workers])
    assert done["done"] == done["total"] == done["indexed"] + done["failed"]
    names = {shape["name"] for shape in stack.shapes()}
    assert len(names) == done["indexed"] and ready["ready"]

    # Restarted, the worker takes jobs again.
    stack.workers = [w if w.alive() else stack.start_worker() for w in stack.workers]
    again = wait_job(stack.server.http, stack.reindex(stack.allowed / "train")["id"])
    assert again["state"] == "succeeded", (again, [w.tail() for w in stack.workers])
    # A reindex replaces the collection with the folder's shapes.
    names = sorted(shape["name"] for shape in stack.shapes())
    assert names == sorted(
        p.relative_to(stack.allowed / "train").as_posix()
        for p in (stack.allowed / "train").glob("*/train/*.off")
    )


@contextmanager
def _one_chunk_job(tmp_path: Path, redis_url: str) -> Iterator[tuple]:
    """(backend, job, its one chunk's RQ job): a running job on a Redis database no
    worker listens to, its chunk queued; the reaper's view of it is up to the test."""
    from app.jobs import JobFolders, RQJobs, state
    from app.jobs.backends import rq_chunk

    other_db = redis_url.rsplit("/", 1)[0] + "/7"
    backend = RQJobs(other_db, JobFolders(tmp_path / "jobs"), stale_s=1)
    try:
        backend.redis.flushdb()
        job = state.Job(id=state.new_job_id(), kind="reindex", source="x", chunks=1)
        backend.store.create(job)
        assert state.start(backend.store, job.id)
        queued = backend.queue.enqueue(
            rq_chunk, job.id, 0, "/the/folder", [], [], job_id=f"{job.id}-chunk-0"
        )
        yield backend, job, queued
    finally:
        backend.redis.flushdb()
        backend.close()


def test_a_piece_that_keeps_dying_fails_its_job_after_three_tries(tmp_path, redis_url) -> None:
    from rq.job import JobStatus

    from app.jobs import state
    from app.jobs.backends import MAX_ATTEMPTS

    with _one_chunk_job(tmp_path, redis_url) as (backend, job, queued):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            backend.reap()  # queued: waiting for a worker, nothing to do
            assert backend.store.get(job.id).state == state.RUNNING
            # Taken by a worker that died (RQ recorded the failure; no liveness key).
            queued.set_status(JobStatus.FAILED)
            backend.reap()
            seen = backend.store.get(job.id)
            if attempt < MAX_ATTEMPTS:
                assert seen.state == state.RUNNING
                queued = backend.queue.fetch_job(f"{job.id}-chunk-0-try{attempt}")
                assert queued is not None and queued.get_status() == JobStatus.QUEUED
        assert seen.state == state.FAILED and "stopped 3 times" in seen.error


def test_a_piece_taken_by_a_worker_that_died_before_starting_it_runs_again(
    tmp_path, redis_url
) -> None:
    # RQ moves a job from its queue to an intermediate list, then marks it started; a
    # worker that loses Redis (or dies) in between leaves it "queued" in no queue, which
    # RQ itself gives up only minutes later. Seen in CI: a reindex that never ended.
    from app.jobs import state

    with _one_chunk_job(tmp_path, redis_url) as (backend, job, queued):
        backend.reap()  # in the queue: waiting for a worker
        assert backend.queue.job_ids == [queued.id]
        backend.redis.lmove(backend.queue.key, backend.queue.intermediate_queue_key)
        assert backend.queue.job_ids == [] and queued.get_status() == "queued"
        backend.reap()  # just taken: a live worker marks it started within moments
        assert backend.queue.job_ids == []
        wait_until(
            lambda: (backend.reap(), backend.queue.job_ids)[1] == [f"{job.id}-chunk-0-try1"],
            30,
            "the piece enqueued again",
        )
        assert backend.store.get(job.id).state == state.RUNNING


def test_a_commit_whose_chunk_died_before_enqueueing_it_is_enqueued(tmp_path, redis_url) -> None:
    # The last chunk to finish writes its part, claims the commit, then enqueues it; a
    # worker killed between two of those steps must not leave the job running for ever.
    from app.jobs import JobFolders, RQJobs, state
    from app.jobs.backends import rq_chunk

    other_db = redis_url.rsplit("/", 1)[0] + "/6"  # no worker listens there
    backend = RQJobs(other_db, JobFolders(tmp_path / "jobs"), stale_s=1)
    try:
        for claimed in (False, True):
            backend.redis.flushdb()
            job = state.Job(id=state.new_job_id(), kind="reindex", source="x", chunks=2)
            backend.store.create(job)
            assert state.start(backend.store, job.id)
            for number in range(2):
                backend.queue.enqueue(
                    rq_chunk, job.id, number, "/the/folder", [], [],
                    job_id=f"{job.id}-chunk-{number}",
                )  # fmt: skip
                backend.store.part_done(job.id, number)
            if claimed:
                assert backend.store.claim(job.id, "commit")
            if claimed:  # while the chunk that claimed it is alive, it enqueues it itself
                backend.redis.set(backend.store.key(job.id, "alive:chunk-1"), "1")
                backend.reap()
                assert backend.queue.fetch_job(f"{job.id}-commit") is None
                backend.redis.delete(backend.store.key(job.id, "alive:chunk-1"))
            # Unclaimed, the reaper claims it at once (a chunk claiming it now loses).
            backend.reap()
            commit = backend.queue.fetch_job(f"{job.id}-commit")
            assert commit is not None and commit.args == (job.id, "/the/folder"), claimed
            assert backend.store.get(job.id).state == state.RUNNING
            assert not backend.store.claim(job.id, "commit")  # no chunk enqueues it again
            backend.reap()  # queued: nothing more to do
            assert backend.queue.count == 3  # the two chunks and one commit
    finally:
        backend.redis.flushdb()
        backend.close()
