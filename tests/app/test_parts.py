"""The small parts of the service on their own: settings, the pool, job helpers."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from app import jobs
from app.jobs import state
from app.pool import PoolFull, RenderPool
from app.settings import Settings
from app.uploads import format_bytes
from renderer import layout
from tests.polling import wait_until


def test_settings_come_from_gmvit_variables(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GMVIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GMVIT_ALLOWED_ROOTS", f"/data/a:{tmp_path}/b")
    monkeypatch.setenv("GMVIT_REDIS_URL", "")
    monkeypatch.setenv("GMVIT_WORKERS", "3")
    settings = Settings()
    assert settings.data_path == tmp_path
    assert settings.allowed_roots == [Path("/data/a"), tmp_path / "b"]
    assert settings.redis_url is None and settings.workers == 3
    assert settings.reindex_render_threads == 6  # twice the workers unless set
    monkeypatch.setenv("GMVIT_REINDEX_THREADS", "5")
    assert Settings().reindex_render_threads == 5
    monkeypatch.setenv("GMVIT_ALLOWED_ROOTS", '["/x", "/y"]')
    assert Settings().allowed_roots == [Path("/x"), Path("/y")]


def test_settings_refuse_nonsense(monkeypatch) -> None:
    monkeypatch.setenv("GMVIT_WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        Settings()


def finished(result: str) -> tuple[str, Future]:
    """Work that hands nothing on: its result, and a handed-on part already done."""
    done: Future = Future()
    done.set_result(None)
    return result, done


def test_the_pool_admits_workers_plus_queue_at_the_door() -> None:
    pool = RenderPool(workers=1, queue=1)
    release = threading.Event()
    started = threading.Event()

    def blocked() -> tuple[str, Future]:
        started.set()
        release.wait(10)
        return finished("done")

    async def scenario() -> None:
        first, second = pool.admit(), pool.admit()
        with pytest.raises(PoolFull) as refused:
            pool.admit()  # before any work runs: a request refused before its body is read
        assert refused.value.retry_after_s >= 1
        running = asyncio.ensure_future(pool.run(first, blocked))
        queued = asyncio.ensure_future(pool.run(second, lambda: finished("queued")))
        await asyncio.to_thread(started.wait, 10)
        assert pool.admitted == 2
        release.set()
        assert (await running)[0] == "done" and (await queued)[0] == "queued"
        assert pool.admitted == 0
        assert (await pool.run(pool.admit(), lambda: finished("again")))[0] == "again"

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool.shutdown()


def test_an_admission_ends_once_whether_its_work_ran_or_not() -> None:
    pool = RenderPool(workers=1, queue=0)
    unused = pool.admit()
    unused.close()
    unused.close()
    assert pool.admitted == 0
    pool.shutdown()


def test_a_cancelled_request_holds_its_place_until_its_thread_is_done() -> None:
    pool = RenderPool(workers=1, queue=0)
    release = threading.Event()
    started = threading.Event()

    def blocked() -> tuple[str, Future]:
        started.set()
        release.wait(10)
        return finished("done")

    async def scenario() -> None:
        task = asyncio.ensure_future(pool.run(pool.admit(), blocked))
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(PoolFull):
            pool.admit()  # the thread is still busy
        release.set()
        await asyncio.to_thread(wait_until, lambda: pool.admitted == 0, 10, "the place freed")

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool.shutdown()


def test_work_handed_on_frees_the_thread_and_keeps_the_place_until_it_is_done() -> None:
    """A request's pool thread draws its views and hands the forward pass on: the next
    request's thread work runs meanwhile, while both places stay taken until the handed-on
    work ends."""
    pool = RenderPool(workers=1, queue=1)
    handed_on: list[Future] = []

    def draw(name: str) -> tuple[str, Future]:
        handed_on.append(Future())
        return name, handed_on[-1]

    async def scenario() -> None:
        first, second = pool.admit(), pool.admit()
        one, later_one = await pool.run(first, lambda: draw("one"))
        # the only thread is free again, though the first request's work is not done
        two, later_two = await asyncio.wait_for(pool.run(second, lambda: draw("two")), timeout=60)
        assert (one, two) == ("one", "two") and pool.admitted == 2
        with pytest.raises(PoolFull):
            pool.admit()
        later_one.set_result("embedded")
        assert pool.admitted == 1
        later_two.set_exception(RuntimeError("a forward failed"))
        assert pool.admitted == 0

    try:
        asyncio.run(scenario())
    finally:
        pool.shutdown()


def test_work_that_fails_before_handing_on_gives_its_place_back() -> None:
    pool = RenderPool(workers=1, queue=0)

    def broken() -> tuple[str, Future]:
        raise ValueError("not a mesh")

    async def scenario() -> None:
        with pytest.raises(ValueError, match="not a mesh"):
            await pool.run(pool.admit(), broken)
        assert pool.admitted == 0

    try:
        asyncio.run(scenario())
    finally:
        pool.shutdown()


def test_labels_follow_the_modelnet_layout(tmp_path) -> None:
    def place(*parts: str) -> tuple[str | None, str | None]:
        entry = layout.place(tmp_path.joinpath(*parts), tmp_path)
        return entry.label, entry.split

    assert place("chair", "train", "chair_0001.off") == ("chair", "train")
    assert place("chair", "test", "x.off") == ("chair", "test")
    assert place("sofa", "x.off") == ("sofa", None)
    assert place("x.off") == (None, None)
    assert place("train", "x.off") == (None, "train")
    assert place("set", "a", "chair", "train", "x.off") == ("chair", "train")


def test_folders_are_resolved_before_the_roots_check(tmp_path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "set").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    assert jobs.resolve_folder(allowed / "set" / ".." / "set", [allowed]) == allowed / "set"
    with pytest.raises(jobs.FolderRefused, match="outside"):
        jobs.resolve_folder(allowed / ".." / "other", [allowed])
    with pytest.raises(jobs.FolderRefused, match="GMVIT_ALLOWED_ROOTS"):
        jobs.resolve_folder(allowed / "set", [])
    with pytest.raises(jobs.FolderRefused, match="NUL"):
        jobs.resolve_folder(f"{allowed}/set\x00x", [allowed])


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
    assert str(jobs.upload_path(7, filename)) == expected


@pytest.mark.parametrize("filename", ["a\x00b.off", "x" * 256 + ".off", "dir/" + "é" * 128])
def test_names_no_filesystem_can_store_are_refused(filename) -> None:
    with pytest.raises(ValueError, match="file 3"):
        jobs.upload_path(3, filename)


def test_a_file_and_a_folder_of_the_same_name_both_keep_their_bytes(tmp_path) -> None:
    jobs.save_upload(tmp_path, 0, "a", b"first")
    jobs.save_upload(tmp_path, 1, "a/x.off", b"second")
    jobs.save_upload(tmp_path, 2, "a", b"third")
    stored = sorted(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert stored == [b"first", b"second", b"third"]


def test_transitions_apply_only_from_their_states() -> None:
    store = state.MemoryJobStore()
    job = state.Job(id=state.new_job_id(), kind="reindex", source="x")
    store.create(job)
    assert state.cancel(store, job.id).state == state.CANCELLED  # queued: at once
    assert not state.start(store, job.id)  # a cancelled job never runs
    assert not state.finish(store, job.id, state.SUCCEEDED)
    running = state.Job(id=state.new_job_id(), kind="reindex", source="x")
    store.create(running)
    assert state.start(store, running.id)
    after = state.cancel(store, running.id)
    assert after.state == state.RUNNING and after.cancel_requested  # its runner ends it
    assert state.finish(store, running.id, state.CANCELLED)
    assert not state.give_up(store, running.id, "too late")
    assert store.get(running.id).state == state.CANCELLED


def test_a_piece_run_again_counts_its_files_once() -> None:
    store = state.MemoryJobStore()
    job = state.Job(id=state.new_job_id(), kind="reindex", source="x")
    store.create(job)
    for _attempt in range(2):  # its first worker died half-way
        store.start_piece(job.id, "chunk-0")
        store.progress(job.id, "chunk-0", 3)
        store.add_failure(job.id, "chunk-0", "bad.off", "broken")
    store.add_failure(job.id, "plan", "notes.txt", "not a mesh file")
    seen = store.get(job.id)
    assert seen.done == 3 and seen.failed == 2
    assert [f["file"] for f in seen.failures] == ["notes.txt", "bad.off"]
    assert store.part_done(job.id, 0) == store.part_done(job.id, 0) == 1
    assert store.claim(job.id, "commit") and not store.claim(job.id, "commit")


def test_the_readme_lists_every_setting_with_its_default() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("### Settings (environment, prefix `GMVIT_`)") :]
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
        for line in table.splitlines()
        if line.startswith("| `")
    }
    for name, field in Settings.model_fields.items():
        assert name.upper() in rows, f"GMVIT_{name.upper()} is not in the README's table"
        default = field.default
        if isinstance(default, int | float) and not isinstance(default, bool):
            spelled = {f"{default:g}", str(int(default)), format_bytes(int(default))}
            assert any(form in rows[name.upper()] for form in spelled), (name, default)
