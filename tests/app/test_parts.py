"""The small parts of the service on their own: settings, the pool, job helpers."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from app import jobs
from app.pool import PoolFull, RenderPool
from app.server import upload_path
from app.settings import Settings


def test_settings_come_from_gmvit_variables(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GMVIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GMVIT_ALLOWED_ROOTS", f"/data/a:{tmp_path}/b")
    monkeypatch.setenv("GMVIT_REDIS_URL", "")
    monkeypatch.setenv("GMVIT_WORKERS", "3")
    settings = Settings()
    assert settings.data_path == tmp_path
    assert settings.allowed_roots == [Path("/data/a"), tmp_path / "b"]
    assert settings.redis_url is None and settings.workers == 3
    monkeypatch.setenv("GMVIT_ALLOWED_ROOTS", '["/x", "/y"]')
    assert Settings().allowed_roots == [Path("/x"), Path("/y")]


def test_settings_refuse_nonsense(monkeypatch) -> None:
    monkeypatch.setenv("GMVIT_WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        Settings()


def test_the_pool_refuses_beyond_workers_plus_queue() -> None:
    pool = RenderPool(workers=1, queue=1)
    release = threading.Event()
    started = threading.Event()

    def blocked() -> str:
        started.set()
        release.wait(10)
        return "done"

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(blocked))
        second = asyncio.ensure_future(pool.run(lambda: "queued"))
        await asyncio.sleep(0)
        await asyncio.to_thread(started.wait, 10)
        assert pool.admitted == 2
        with pytest.raises(PoolFull) as refused:
            await pool.run(lambda: "third")
        assert refused.value.retry_after_s >= 1
        release.set()
        assert await first == "done" and await second == "queued"
        assert pool.admitted == 0
        assert await pool.run(lambda: "again") == "again"

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool.shutdown()


def test_a_cancelled_request_holds_its_place_until_its_thread_is_done() -> None:
    pool = RenderPool(workers=1, queue=0)
    release = threading.Event()

    async def scenario() -> None:
        task = asyncio.ensure_future(pool.run(lambda: release.wait(10)))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.05)
        with pytest.raises(PoolFull):
            await pool.run(lambda: None)  # the thread is still busy
        release.set()
        for _ in range(100):
            if pool.admitted == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.admitted == 0

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool.shutdown()


def test_labels_follow_the_modelnet_layout(tmp_path) -> None:
    assert jobs.label_for(tmp_path / "chair" / "train" / "chair_0001.off", tmp_path) == "chair"
    assert jobs.label_for(tmp_path / "chair" / "test" / "x.off", tmp_path) == "chair"
    assert jobs.label_for(tmp_path / "sofa" / "x.off", tmp_path) == "sofa"
    assert jobs.label_for(tmp_path / "x.off", tmp_path) is None
    assert jobs.label_for(tmp_path / "train" / "x.off", tmp_path) is None


def test_folders_are_resolved_before_the_roots_check(tmp_path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "set").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    assert jobs.resolve_folder(allowed / "set" / ".." / "set", [allowed]) == allowed / "set"
    with pytest.raises(jobs.FolderRefused, match="outside"):
        jobs.resolve_folder(allowed / ".." / "other", [allowed])
    with pytest.raises(jobs.FolderRefused, match="GMVIT_ALLOWED_ROOTS"):
        jobs.resolve_folder(allowed / "set", [])


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("chair/train/a.off", "chair/train/a.off"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x.off", "abs/x.off"),
        ("C:\\models\\chair\\a.off", "C:/models/chair/a.off"),
        ("..", "file-00007"),
        (None, "file-00007"),
    ],
)
def test_uploaded_names_become_safe_relative_paths(filename, expected) -> None:
    assert str(upload_path(7, filename)) == expected


def test_a_running_job_without_heartbeat_is_reported_failed() -> None:
    job = jobs.Job(id="j", kind="reindex", source="x", state=jobs.RUNNING, heartbeat_at=100.0)
    assert job.seen_at(105.0, stale_s=10).state == jobs.RUNNING
    lost = job.seen_at(120.0, stale_s=10)
    assert lost.state == jobs.FAILED and "no heartbeat" in lost.error
    assert jobs.Job(id="j", kind="reindex", source="x").seen_at(1e12, 10).state == jobs.QUEUED


def test_the_memory_store_keeps_a_bounded_failure_list() -> None:
    store = jobs.MemoryJobStore()
    job = store.create("reindex", "x")
    for i in range(jobs.MAX_REPORTED_FAILURES + 5):
        store.add_failure(job.id, f"f{i}", "bad")
    seen = store.get(job.id)
    assert seen.failed == jobs.MAX_REPORTED_FAILURES + 5
    assert len(seen.failures) == jobs.MAX_REPORTED_FAILURES
    store.request_cancel(job.id)
    assert store.cancel_requested(job.id)
    assert time.time() - seen.created_at < 60
